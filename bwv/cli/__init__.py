"""The `bwv` command line: parses options, calls one library function, formats the result.

Catalogue commands live here; compliance, voice and custody commands live in their own
`cli_*` modules and are registered on the same group. Nothing heavy is imported at the
top so `bwv --help` starts instantly.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path
from typing import Any

import click

from bwv.cli import compliance as cli_compliance
from bwv.cli import custody as cli_custody
from bwv.cli import queue as cli_queue
from bwv.cli import redact as cli_redact
from bwv.cli import voice as cli_voice
from bwv.cli import web as cli_web
from bwv.cli.common import (
    AppContext,
    BwvGroup,
    child_threshold,
    emit_json,
    json_option,
    pass_app,
    policy_option,
    time_range_options,
)


@click.group(cls=BwvGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="PATH_OR_URL",
    help="Catalogue file or SQLAlchemy URL (default: $BWV_DATABASE_URL or ./bwv.db).",
)
@click.option("--actor", help="Who is acting, for the audit trail (default: $BWV_ACTOR or user).")
@click.version_option(package_name="bwv")
@click.pass_context
def main(ctx: click.Context, db: str | None, actor: str | None) -> None:
    """Offline body-worn video evidence catalogue and voice-of-the-child checker."""
    ctx.obj = AppContext(db=db, actor_option=actor)


def run() -> None:
    """The `bwv` command: `main`, ending without a final sweep of the heap.

    Python's last garbage collection at exit walks every object the libraries made (a
    quarter of a second for a quick command); the connections are closed first, then the
    heap is frozen so that sweep is skipped. Only here, not in `main`: tests and other
    callers of `main` keep a normal collector.
    """
    atexit.register(_end_quickly)
    main()


def _end_quickly() -> None:
    db = sys.modules.get("bwv.core.db")  # never imported just to close nothing
    if db is not None:
        db.dispose_engines()
    gc.freeze()


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="number of cores",
    help="Files processed in parallel, each worker loading the model once.",
)
@click.option(
    "--model",
    default="tiny.en",
    show_default=True,
    metavar="NAME_OR_DIR",
    help="Embedded model name or a local CTranslate2 Whisper model folder.",
)
@click.option("--language", default="en", show_default=True, help="Spoken language.")
@click.option("--no-transcribe", is_flag=True, help="Skip transcription and voice attribution.")
@click.option(
    "--no-child-voice", is_flag=True, help="Transcribe, but skip child-voice attribution."
)
@click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy each original into this content-addressed evidence store.",
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Follow symbolic links that lead out of a folder being ingested (else reported).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Process clips recorded as failed again (they keep their ids).",
)
@click.option(
    "--queue",
    "queue",
    is_flag=True,
    help="Only enqueue one job per file for `bwv worker` (PostgreSQL catalogue).",
)
@pass_app
def ingest(app: AppContext, paths: tuple[Path, ...], queue: bool, **options: Any) -> None:
    """Catalogue body-worn video files and folders (walked recursively)."""
    from bwv.cli.output import print_ingest_summary
    from bwv.cli.progress import IngestProgress
    from bwv.services.ingesting import ingest as ingest_files
    from ingest.worker import IngestOptions

    ingest_options = IngestOptions(
        workers=options["workers"],
        model=options["model"],
        language=options["language"],
        transcribe=not options["no_transcribe"],
        child_voice=not options["no_child_voice"],
        store=options["store"],
        follow_symlinks=options["follow_symlinks"],
        retry_failed=options["retry_failed"],
    )
    if queue:
        _enqueue(app, list(paths), ingest_options)
        return
    with IngestProgress(enabled=True) as progress:
        summary = ingest_files(
            list(paths),
            engine=app.engine,
            actor=app.actor,
            options=ingest_options,
            on_progress=progress,
        )
    print_ingest_summary(summary)
    raise SystemExit(0 if summary.complete else 1)


def _enqueue(app: AppContext, paths: list[Path], options: Any) -> None:
    from bwv.cli.queue import print_enqueue_summary
    from bwv.services.queue import enqueue

    summary = enqueue(paths, engine=app.engine, actor=app.actor, options=options)
    print_enqueue_summary(summary)
    raise SystemExit(1 if summary.rejected else 0)


@main.command()
@click.option("--device", help="Only clips from this camera serial.")
@click.option("--officer", help="Only clips of this officer.")
@time_range_options
@click.option("--failed", is_flag=True, help="Only clips that failed ingest.")
@json_option
@policy_option
@pass_app
def clips(app: AppContext, as_json: bool, policy_path: Path | None, **filters: Any) -> None:
    """List catalogued clips (child seconds at the policy's threshold)."""
    from bwv.cli.output import print_clips
    from bwv.services.catalogue import ClipFilter, list_clips

    rows = list_clips(
        engine=app.engine,
        actor=app.actor,
        clip_filter=ClipFilter(**filters),
        threshold=child_threshold(policy_path),
    )
    emit_json(rows) if as_json else print_clips(rows)


@main.command()
@click.argument("clip")
@json_option
@policy_option
@pass_app
def show(app: AppContext, clip: str, as_json: bool, policy_path: Path | None) -> None:
    """Show a clip: metadata with provenance, audio facts, transcript (child speech marked)."""
    from bwv.cli.output import print_clip_detail
    from bwv.services.catalogue import clip_detail

    threshold = child_threshold(policy_path)
    detail = clip_detail(clip, engine=app.engine, actor=app.actor, threshold=threshold)
    emit_json(detail) if as_json else print_clip_detail(detail)


@main.command()
@click.argument("text")
@click.option("--child", "child_only", is_flag=True, help="Only speech attributed to a child.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@policy_option
@pass_app
def search(
    app: AppContext,
    text: str,
    child_only: bool,
    limit: int,
    as_json: bool,
    policy_path: Path | None,
) -> None:
    """Full-text search over transcripts."""
    from bwv.cli.output import print_hits
    from bwv.services.catalogue import search_transcripts

    threshold = child_threshold(policy_path)
    hits = search_transcripts(
        text,
        engine=app.engine,
        actor=app.actor,
        threshold=threshold,
        child_only=child_only,
        limit=limit,
    )
    emit_json(hits) if as_json else print_hits(hits, threshold)


@main.command()
@click.argument("clip")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["txt", "srt", "vtt", "json"]),
    default="txt",
    show_default=True,
)
@policy_option
@pass_app
def transcript(app: AppContext, clip: str, fmt: str, policy_path: Path | None) -> None:
    """Print a clip's time-coded transcript."""
    from bwv.services.catalogue import render_transcript

    click.echo(
        render_transcript(
            clip, fmt, engine=app.engine, actor=app.actor, threshold=child_threshold(policy_path)
        ),
        nl=False,
    )


for _module in (cli_compliance, cli_voice, cli_custody, cli_web, cli_redact, cli_queue):
    for _command in _module.COMMANDS:
        main.add_command(_command)

"""`bwv redact detect|plan|render`: redacted copies of a clip; registered by bwv.cli.

Thin on purpose: options become a `Choices`, one call into `bwv.services.redaction`
does the work (imported inside each command so `bwv --help` stays instant), and the
result is printed as text or JSON. Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bwv.cli.common import AppContext, BwvGroup, emit_json, json_option, pass_app

store_option = click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Content-addressed store to write to (default: the one holding the clip's copy).",
)


def choice_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The redaction choices, shared by `plan` (to check them) and `render`."""
    options = [
        click.option(
            "--faces",
            default="none",
            show_default=True,
            help="Face tracks to hide: all, none, or labels such as T1,T4.",
        ),
        click.option(
            "--mute-speaker",
            "mute_speakers",
            multiple=True,
            metavar="S2",
            help="Silence a speaker group (repeatable, or S1,S3).",
        ),
        click.option(
            "--mute-words",
            metavar="'Jayden,14 Elm Road'",
            help="Silence these words or phrases wherever said (comma-separated).",
        ),
        click.option(
            "--mute",
            "mute_spans",
            multiple=True,
            metavar="FROM-TO",
            help="Silence a span in seconds, e.g. 12.5-14 (repeatable).",
        ),
        click.option("--bleep", is_flag=True, help="A 1 kHz tone instead of silence."),
        click.option("--solid", is_flag=True, help="Black boxes instead of blur."),
        click.option("--reason", default="", help="Why (required to render; audited)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _choices(options: dict[str, Any]) -> Any:
    from redact.plan import Choices, parse_list, parse_span

    speakers = tuple(s for item in options["mute_speakers"] for s in parse_list(item))
    return Choices(
        faces=options["faces"],
        mute_speakers=speakers,
        mute_words=parse_list(options["mute_words"] or ""),
        mute=tuple(parse_span(text) for text in options["mute_spans"]),
        bleep=options["bleep"],
        solid=options["solid"],
        reason=options["reason"],
    )


@click.group(cls=BwvGroup)
def redact() -> None:
    """Redacted copies: find faces, choose whom and what to hide, render a new copy."""


@redact.command()
@click.argument("clip")
@store_option
@json_option
@pass_app
def detect(app: AppContext, clip: str, store: Path | None, as_json: bool) -> None:
    """Find the faces in CLIP and group them into tracks (T1, T2, ...) with thumbnails."""
    from bwv.services.redaction import detect_faces

    result = detect_faces(
        clip, engine=app.engine, actor=app.actor, store=store, progress=_progress()
    )
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(
        f"clip {result.clip_id} {result.file_name}: {len(result.tracks)} face tracks "
        f"in {result.frames} frames ({result.seconds:.1f} s)"
    )
    _print_tracks(result.tracks)


@redact.command()
@click.argument("clip")
@choice_options
@store_option
@json_option
@pass_app
def plan(app: AppContext, clip: str, store: Path | None, as_json: bool, **options: Any) -> None:
    """List CLIP's face tracks and speaker groups, and check what the choices would hide."""
    from bwv.services.redaction import plan_redaction

    view = plan_redaction(clip, _choices(options), engine=app.engine, store=store)
    if as_json:
        emit_json(view.to_dict())
        return
    click.echo(f"clip {view.clip_id} {view.file_name}")
    if not view.has_video:
        click.echo("no video stream: only audio can be redacted")
    elif not view.scanned:
        click.echo("no face scan yet: run `bwv redact detect CLIP`")
    _print_tracks(view.tracks)
    for speaker in view.speakers:
        click.echo(
            f"{speaker.label:<4} {speaker.segments:>3} segments {speaker.seconds:7.1f} s"
            f"  {speaker.first_words!r}"
        )
    click.echo(f"hide faces: {', '.join(view.hidden) or 'none'}")
    _print_spans(view.spans)


@redact.command()
@click.argument("clip")
@choice_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the copy to FILE (never over an existing file).",
)
@store_option
@json_option
@pass_app
def render(
    app: AppContext,
    clip: str,
    out: Path | None,
    store: Path | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Render a redacted copy of CLIP into the store, with its log, and audit it."""
    from bwv.services.redaction import render_redaction

    result = render_redaction(
        clip,
        _choices(options),
        engine=app.engine,
        actor=app.actor,
        out=out,
        store=store,
        progress=_progress(),
    )
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"redaction {result.redaction_id} of clip {result.clip_id}: {result.path}")
    click.echo(f"sha256 {result.sha256}  log {result.log_path}")
    if result.out:
        click.echo(f"written to {result.out}")
    click.echo(f"hidden faces: {', '.join(result.hidden) or 'none'}")
    _print_spans(result.spans)


def _print_tracks(tracks: list[Any]) -> None:
    for t in tracks:
        click.echo(
            f"{t.label:<4} {t.start_s:8.2f}-{t.end_s:<8.2f} s  {t.frames:>6} frames  "
            f"up to {t.max_width_px:.0f} px  score {t.score:.2f}"
        )


def _print_spans(spans: list[Any]) -> None:
    for s in spans:
        click.echo(f"mute {s.start_s:8.2f}-{s.end_s:<8.2f} s  ({s.why})")
    if not spans:
        click.echo("mute: nothing")


def _progress() -> Callable[[str, float], None]:
    shown = {"": -1}

    def report(stage: str, fraction: float) -> None:
        percent = int(fraction * 100)
        if sys.stderr.isatty() and percent != shown.get(stage):
            shown[stage] = percent
            click.echo(f"\r{stage} {percent:3d}%", err=True, nl=percent >= 100)

    return report


COMMANDS: list[click.Command] = [redact]

"""`bwv` commands for chain of custody: verify, audit verify/log, export.

Each command parses options, calls one function from `bwv.custody.files` or
`bwv.custody.chain`, and formats the result; those functions do the auditing. A
failed integrity check is an answer, not an error: it prints what it found and exits 1.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from bwv.cli.common import (
    AppContext,
    echo,
    emit_json,
    json_option,
    pass_app,
    time_range_options,
    writing_output,
)


@click.command()
@click.argument("clips", nargs=-1)
@click.option("--all", "all_clips", is_flag=True, help="Verify every clip in the catalogue.")
@json_option
@pass_app
def verify(app: AppContext, clips: tuple[str, ...], all_clips: bool, as_json: bool) -> None:
    """Re-hash originals and store copies; exit 1 on any mismatch.

    Reports ok, modified, missing, unreadable or catalogue_altered (the catalogued hash is
    not the one its ingest audit event recorded) for each clip (id, SHA-256 or file name).
    """
    from bwv.services.custody import verify_clips

    if clips and all_clips:
        raise click.UsageError("name clips or use --all, not both")
    report = verify_clips(list(clips), engine=app.engine, actor=app.actor, all_clips=all_clips)
    with writing_output():
        if as_json:
            emit_json({"ok": report.ok, "counts": report.counts(), "clips": report.checks})
        else:
            _print_verify(report)
    raise SystemExit(0 if report.ok else 1)


def _print_verify(report: Any) -> None:
    for check in report.checks:
        original = check.original
        echo(f"{check.status:<10} {check.clip_id:>6}  {check.file_name}")
        if check.status == "catalogue_altered":
            echo(f"{'':<18}{_catalogue_problem(check)}")
        if original.status != "ok":
            echo(f"{'':<18}{_file_problem(original, check.expected_sha256)}")
        for copy in check.store_copies:
            if copy.status != "ok":
                echo(f"{'':<18}store copy {copy.status}: {_file_problem(copy, '')}")
    counts = ", ".join(f"{n} {_label(status)}" for status, n in report.counts().items() if n)
    echo(f"{len(report.checks)} clips verified" + (f": {counts}" if counts else ""))


def _label(status: str) -> str:
    """`store_modified` -> `store copy modified`, `catalogue_altered` -> `catalogue altered`."""
    return status.replace("store_", "store copy ", 1).replace("_", " ")


def _catalogue_problem(check: Any) -> str:
    if check.recorded_sha256 is None:
        return f"catalogued SHA-256 {check.expected_sha256}: no ingest audit event records it"
    return (
        f"catalogued SHA-256 {check.expected_sha256} is not the one recorded at ingest, "
        f"{check.recorded_sha256}: the catalogue was changed"
    )


def _file_problem(check: Any, expected: str) -> str:
    if check.status == "modified":
        wanted = f", catalogued {expected}" if expected else ""
        return f"{check.path}: SHA-256 now {check.actual_sha256}{wanted}"
    return f"{check.path}: {check.reason}"


@click.group()
def audit() -> None:
    """Check and export the tamper-evident audit trail."""


@audit.command(name="verify")
@click.option(
    "--anchor",
    metavar="HASH",
    help="An event hash noted earlier (e.g. from an export); fail if it is no longer there.",
)
@json_option
@pass_app
def audit_verify(app: AppContext, anchor: str | None, as_json: bool) -> None:
    """Check the hash chain; exit 1 naming the first tampered event.

    Altered, deleted, reordered or re-hashed events are found; a cut tail or a chain
    rewritten from some point on only with --anchor (a hash noted earlier).
    """
    from bwv.services.custody import verify_chain

    report = verify_chain(engine=app.engine, actor=app.actor, anchor=anchor)
    with writing_output():
        if as_json:
            emit_json(report)
        else:
            _print_chain(report)
    raise SystemExit(0 if report.ok else 1)


def _print_chain(report: Any) -> None:
    for warning in report.warnings:
        echo(f"warning: {warning}")
    if report.problem is None:
        head = f"; head event {report.head_id} {report.head_hash}" if report.head_id else ""
        echo(f"audit chain intact: {report.events} events{head}")
        return
    problem = report.problem
    echo(f"audit chain BROKEN at event {problem.event_id} ({problem.kind}): {problem.message}")
    echo(f"{report.events} events verified before the break")


@audit.command(name="log")
@time_range_options
@click.option("--actor", "actor_filter", help="Only events by this actor.")
@click.option("--object", "object_id", help="Only events about this object (clip:12, or 12).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@pass_app
def audit_log(app: AppContext, fmt: str, actor_filter: str | None, **options: Any) -> None:
    """Export audit events (the export is itself audited)."""
    from bwv.custody.chain import LogFilter
    from bwv.services.custody import export_log

    log_filter = LogFilter(actor=actor_filter, **options)
    text, _count = export_log(log_filter, fmt, engine=app.engine, actor=app.actor)
    with writing_output():
        click.echo(text, nl=False)


@click.command()
@click.argument("incident")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(path_type=Path),
    help="New (or empty) folder to write the disclosure into.",
)
@click.option("--derivatives-only", is_flag=True, help="Leave out the original recordings.")
@json_option
@pass_app
def export(app: AppContext, incident: str, to: Path, derivatives_only: bool, as_json: bool) -> None:
    """Write an incident's disclosure folder (audited).

    Originals (or only derivatives), transcripts, findings and the audit excerpt, with a
    MANIFEST.sha256 that `sha256sum -c` checks. DIR must be new or empty.
    """
    from bwv.services.custody import export as export_disclosure

    result = export_disclosure(
        incident, to=to, engine=app.engine, actor=app.actor, derivatives_only=derivatives_only
    )
    with writing_output(f" (the export to {result.folder} is complete and recorded)"):
        _print_export(result, as_json)


def _print_export(result: Any, as_json: bool) -> None:
    for note in result.settled:
        echo(f"note: {note}", err=True)
    if as_json:
        emit_json(result)
        return
    echo(
        f"exported incident {result.incident_ref}: {len(result.clip_ids)} clips, "
        f"{len(result.files) + 1} files to {result.folder}"
    )
    echo(f"MANIFEST.sha256 SHA-256 {result.manifest_sha256}")
    # Quoted (and absolute, so never read as an option) to paste into a shell as it is.
    folder = shlex.quote(str(Path(result.folder).absolute()))
    echo(f"check with: cd {folder} && sha256sum -c MANIFEST.sha256")
    if not result.audit_chain_ok:
        echo("warning: the audit chain is broken; see `bwv audit verify`", err=True)


COMMANDS: list[click.Command] = [verify, audit, export]

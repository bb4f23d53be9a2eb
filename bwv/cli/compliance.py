"""`bwv` commands for compliance; registered on the main group by bwv.cli.

Each command parses its options, calls one function in `compliance/`, and formats the
result. The library is imported inside each command so `bwv --help` stays instant.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from bwv.cli.common import (
    AppContext,
    echo,
    emit_json,
    fail,
    json_option,
    pass_app,
    policy_option,
    time_range_options,
)
from bwv.core.errors import ImportRejected

KINDS = ("officers", "assignments", "incidents", "attendance")
GROUPINGS = ("officer", "team", "station", "type", "month")


@click.command("import", short_help="Import officers, assignments, incidents or attendance.")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("file", type=click.Path(path_type=Path))
@pass_app
def import_command(app: AppContext, kind: str, file: Path) -> None:
    """Import officers, assignments, incidents or attendance (CSV or JSON array).

    All or nothing: any bad row rejects the file and nothing is written. Rows are
    upserted by key, so importing a corrected file again never duplicates.
    """
    from bwv.core.textsafe import printable
    from bwv.services.compliance import import_file

    try:
        result = import_file(kind, file, engine=app.engine, actor=app.actor)
    except ImportRejected as exc:
        more = exc.total - len(exc.problems)
        tail = [f"... and {more} more"] if more > 0 else []
        ending = f"{exc.total} problem(s) in {file}; nothing was imported"
        fail("\n".join([*exc.problems, *tail, ending]), exc.exit_code)
    links = result.links
    click.echo(
        f"Imported {result.rows} {kind} from {file}: {result.inserted} new, "
        f"{result.updated} updated. Links: {links.links} ({links.added} added, "
        f"{links.removed} removed), {links.unassigned} unassigned clips."
    )
    for warning in result.warnings:
        click.echo(f"Warning: {printable(warning)}", err=True)


def _decision_command(action: str) -> click.Command:
    @click.command(action, short_help=f"Record a manual {action} of a clip and an incident.")
    @click.argument("clip")
    @click.argument("incident")
    @click.option("--reason", required=True, help="Why (recorded with your name in the audit).")
    @pass_app
    def command(app: AppContext, clip: str, incident: str, reason: str) -> None:
        from bwv.services.compliance import decide_link

        result = decide_link(
            clip, incident, action=action, reason=reason, engine=app.engine, actor=app.actor
        )
        state = "linked to" if result.now_linked else "not linked to"
        echo(
            f"Recorded {action} by {app.actor}: clip {result.clip_id} ({result.file_name}) "
            f"is now {state} {result.incident_ref}."
        )
        for ref, source in result.other_links:
            echo(f"Clip {result.clip_id} is also linked to {ref} ({source}).")

    command.help = (
        f"{'Link' if action == 'link' else 'Unlink'} a clip (id, file name or SHA-256) "
        f"{'to' if action == 'link' else 'from'} an incident; the decision survives relinking."
    )
    return command


@click.command("review", short_help="Record whether a child's voice is heard in a clip.")
@click.argument("clip")
@click.argument("decision", type=click.Choice(["heard", "not_heard"]))
@click.option("--start", type=float, metavar="SECONDS", help="Where the child is heard (heard).")
@click.option("--end", type=float, metavar="SECONDS", help="Where the child stops (heard).")
@click.option("--reason", required=True, help="Why (recorded with your name in the audit).")
@pass_app
def review_command(
    app: AppContext,
    clip: str,
    decision: str,
    start: float | None,
    end: float | None,
    reason: str,
) -> None:
    """Record that a child's voice is heard in CLIP (with --start and --end) or not_heard.

    The review overrides the classifier for the clip in every verdict and report, replaces
    any earlier review of the clip, and survives re-ingest and relinking.
    """
    from bwv.services.reviewing import record_review

    result = record_review(
        clip, decision, span=(start, end), reason=reason, engine=app.engine, actor=app.actor
    )
    span = f" at {start:g}-{end:g} s" if start is not None and end is not None else ""
    replaced = f" (replacing {result.previous})" if result.previous else ""
    click.echo(
        f"Recorded review by {app.actor}: clip {result.clip_id} ({result.file_name}) "
        f"{decision}{span}{replaced}."
    )
    if result.incident_refs:
        click.echo(f"Verdicts of {', '.join(result.incident_refs)} now follow it.")


@click.command("incident", short_help="Show an incident's attendance, clips and verdict.")
@click.argument("ref")
@json_option
@policy_option
@pass_app
def incident_command(app: AppContext, ref: str, as_json: bool, policy_path: Path | None) -> None:
    """Show an incident: attendance, linked clips, verdict and officer findings."""
    from bwv.services.compliance import incident_detail
    from compliance.render import render_incident
    from compliance.report import incident_detail_json

    detail = incident_detail(ref, engine=app.engine, actor=app.actor, policy_path=policy_path)
    if as_json:
        emit_json(incident_detail_json(detail))
    else:
        click.echo(render_incident(detail), nl=False)


@click.command("report", short_help="Voice-of-the-child verdicts and consistency view.")
@time_range_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option("--by", type=click.Choice(GROUPINGS), help="Consistency view grouped this way.")
@policy_option
@pass_app
def report_command(
    app: AppContext,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
    output: Path | None,
    by: str | None,
    policy_path: Path | None,
) -> None:
    """Voice-of-the-child verdicts per incident, worst first (or per group with --by).

    Incidents reported from --since (inclusive) until --until (exclusive). Exits 1 when
    any incident is non-compliant, 0 otherwise, 2 on error.
    """
    from bwv.services.compliance import report as take_report
    from compliance.output import ReportRequest, write_output

    request = ReportRequest(since, until, fmt, by, policy_path)
    report, rendered = take_report(request, engine=app.engine, actor=app.actor)
    if output is None:
        click.echo(rendered, nl=not rendered.endswith(b"\n"))
    else:
        write_output(rendered, output)
        click.echo(f"Wrote {fmt} report to {output}", err=True)
    raise SystemExit(1 if report.non_compliant else 0)


@click.command("child-record", short_help="Write what the child said at an incident (audited).")
@click.argument("incident")
@click.option("--reason", required=True, help="Why it is disclosed (recorded in the audit).")
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@pass_app
def child_record_command(
    app: AppContext, incident: str, reason: str, fmt: str, out: Path | None
) -> None:
    """Write the child's-voice record of INCIDENT for a partner agency.

    The incident, the officers present, each linked clip's segments attributed to the
    child (clip, times, words, probability, speaker group), people's link decisions, and
    the verdict with its reasons; or, when there is no child speech, why. Marked with the
    policy's protective_marking. Writing it is an audited disclosure.
    """
    from bwv.core.textsafe import printable
    from bwv.services.child_record import write_child_record

    record, rendered = write_child_record(
        incident, engine=app.engine, actor=app.actor, reason=reason, fmt=fmt, out=out
    )
    if out is None:
        click.echo(rendered, nl=False)
    else:
        click.echo(
            f"Wrote {fmt} child record of {printable(incident)} to {printable(out)} "
            f"({record.segment_count} child segments; disclosure audited).",
            err=True,
        )


@click.command("demo", short_help="Run the whole pipeline on sample_media/ (start here).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the demo catalogue and report (default: a new temporary folder).",
)
@click.option("--workers", type=click.IntRange(min=1), help="Ingest workers (default: up to 4).")
@pass_app
def demo_command(app: AppContext, out: Path | None, workers: int | None) -> None:
    """Build a catalogue from sample_media/, check it, and write the HTML report."""
    from bwv.services.demo import run_demo
    from compliance.render import summary_line

    result = run_demo(out, actor=app.actor, workers=workers)
    _print_demo(result, summary_line(result.report))


def _print_demo(result: Any, summary: str) -> None:
    click.echo(f"Catalogue: {result.database}")
    click.echo(
        f"Catalogued {result.ingested + result.failed} clips ({result.failed} unreadable, "
        f"{result.skipped} already catalogued); imported "
        + ", ".join(f"{r.rows} {r.kind}" for r in result.imports)
        + "."
    )
    click.echo(summary)
    click.echo(f"JSON report: {result.json_path}")
    click.echo(f"HTML report: {result.report_path}")
    click.echo(f"Child record: {result.record_path}")
    if result.admin_password:
        click.echo(f"Web app user: admin, password {result.admin_password} (shown only now)")
    click.echo(f"Web app: bwv --db {result.database} serve   (then open http://127.0.0.1:8000/)")
    click.echo(
        f"The admin manages users only; to review: bwv --db {result.database} "
        "user add NAME --role inspector"
    )


COMMANDS: list[click.Command] = [
    import_command,
    _decision_command("link"),
    _decision_command("unlink"),
    review_command,
    incident_command,
    report_command,
    child_record_command,
    demo_command,
]

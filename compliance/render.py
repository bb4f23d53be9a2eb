"""Plain renderings of the report: a text table for the terminal, CSV for spreadsheets.

Reasons and findings are put into words here once (with local times, as officers and
inspectors read them), and reused by the HTML report. CSV cells that a spreadsheet
would run as a formula (starting with = + - @, tab or CR) are prefixed with a single
quote, because incident notes and locations come from outside systems; for the same
reason the text table and incident view show control characters as escapes
(`bwv.cli.output.printable`), so no escape sequence reaches the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bwv.core.csvsafe import write_csv
from bwv.core.textsafe import printable
from bwv.core.timeutil import as_utc, iso_z, local_zone
from compliance.consistency import ConsistencyView, GroupStats
from compliance.facts import ReviewFacts
from compliance.report import IncidentDetail, Report, reviewed_clips, summary
from compliance.response import IncidentFinding, Response
from compliance.verdicts import FINDINGS, REVIEW_CODES, Finding, IncidentVerdict, Reason


def _local(moment: datetime | str) -> datetime:
    """A naive-UTC or aware datetime, or an ISO string from evidence, in local time."""
    parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return as_utc(parsed).astimezone(local_zone())


def local_time(moment: datetime | str | None, seconds: bool = True) -> str:
    if moment is None:
        return "unknown"
    shape = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    return _local(moment).strftime(shape)


def _clock(moment: datetime | str | None) -> str:
    return _local(moment).strftime("%H:%M:%S") if moment else "unknown"


def _clips(ids: Iterable[int]) -> str:
    listed = ", ".join(str(i) for i in ids)
    return f"clip {listed}" if "," not in listed else f"clips {listed}"


def describe_reason(reason: Reason) -> str:
    e = reason.evidence
    if reason.code == "NO_FOOTAGE":
        who = "; ".join(
            f"{a['officer_id']} {_clock(a['arrived_at'])}-{_clock(a['left_at'])}"
            for a in e["attending"]
        )
        return f"No clip linked to the incident. Attending: {who or 'no attendance recorded'}."
    if reason.code == "FOOTAGE_UNREADABLE":
        failed = "; ".join(f"clip {f['clip_id']} {f['file_name']}" for f in e["failures"])
        return f"Every linked clip is unreadable: {failed}."
    if reason.code == "NO_AUDIO":
        states = "; ".join(f"clip {a['clip_id']} audio {a['audio_state']}" for a in e["audio"])
        return f"No usable audio: {states}."
    if reason.code == "NO_SPEECH":
        return f"Audio present but no speech detected in {_clips(e['clip_ids'])}."
    return (
        f"{e['speech_seconds']:g} s of speech, {e['child_speech_seconds']:g} s attributed to a "
        f"child (needs {e['min_child_speech_s']:g} s) in {_clips(e['clip_ids'])}."
    )


def describe_finding(finding: Finding) -> str:
    e = finding.evidence
    who = finding.officer_id
    if finding.code in ("NOT_RECORDING", "NO_CAMERA"):
        span = f"{local_time(e['arrived_at'])} to {_clock(e['left_at'])}"
        if finding.code == "NO_CAMERA":
            return f"{who} attended {span} with no camera assigned."
        return f"{who} attended {span} with camera {', '.join(e['cameras'])}; no clip linked."
    if finding.code == "LATE_START":
        return (
            f"{who}: clip {e['clip_id']} started {_clock(e['first_clip_started_at'])}, "
            f"{e['delay_s']:g} s after arrival at {_clock(e['arrived_at'])} "
            f"(grace {e['start_grace_s']:g} s)."
        )
    return (
        f"{who}: clip {e['clip_id']} ended {_clock(e['last_clip_ended_at'])}, "
        f"{e['gap_s']:g} s before leaving at {_clock(e['left_at'])} "
        f"(grace {e['stop_grace_s']:g} s)."
    )


def describe_review(clip_id: int, review: ReviewFacts) -> str:
    """A person's review in words: what they heard, where, who, when and why."""
    span = ""
    if review.start_s is not None and review.end_s is not None:
        span = f" at {review.start_s:g}-{review.end_s:g} s"
    what = "child's voice heard" if review.decision == "heard" else "no child's voice"
    return (
        f"clip {clip_id}: {what}{span} (reviewed by {review.actor}, "
        f"{local_time(review.decided_at, seconds=False)}: {review.reason})"
    )


def review_items(v: IncidentVerdict) -> list[tuple[str, str]]:
    """(evidence code, words) for each reviewed clip of the incident."""
    return [
        (REVIEW_CODES[review.decision], describe_review(clip_id, review))
        for clip_id, review in reviewed_clips(v)
    ]


def describe_incident_finding(finding: IncidentFinding) -> str:
    e = finding.evidence
    grade = f"{e['priority']} target" if e["priority"] else "default target"
    if finding.code == "NOT_ATTENDED":
        return (
            f"No officer's attendance recorded for the incident reported "
            f"{local_time(e['reported_at'])} ({grade} {duration(e['target_s'])})."
        )
    return (
        f"First officer {e['officer_id']} arrived {_clock(e['first_arrived_at'])}, "
        f"{duration(e['time_to_first_arrival_s'])} after the report at "
        f"{_clock(e['reported_at'])} ({grade} {duration(e['target_s'])}, "
        f"over by {duration(e['over_by_s'])})."
    )


def duration(value: float | None) -> str:
    """Seconds as a person reads a response time: `42 s`, `25 min`, `4 h 10 min`."""
    if value is None:
        return "-"
    sign, whole = ("-" if value < 0 else ""), round(abs(value))
    if whole < 60:
        return f"{sign}{whole} s"
    hours, minutes = divmod(round(whole / 60), 60)
    if not hours:
        return f"{sign}{minutes} min"
    return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"


def seen_text(response: Response | None) -> str:
    """An incident's time to first arrival against its target, in a few words."""
    if response is None:
        return "-"
    if response.first_arrival_s is None:
        return "not attended"
    grade = response.priority or "default"
    return f"{duration(response.first_arrival_s)} ({grade} {duration(response.target_s)})"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _columns(rows: list[list[str]]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]  # before widths: escapes widen
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def render_table(report: Report) -> str:
    rows = [["VERDICT", "INCIDENT", "TYPE", "REPORTED", "REASON", "OFFICER FINDINGS", "SEEN IN"]]
    rows += [_table_row(v) for v in report.verdicts]
    return _columns(rows) + "\n\n" + summary_line(report) + "\n"


def _table_row(v: IncidentVerdict) -> list[str]:
    reasons = ",".join(r.code for r in v.reasons) or ("-" if v.applicable else v.applicability)
    reviewed = [f"{code}(clip {clip_id})" for code, clip_id in _review_codes(v)]
    reasons = " ".join([reasons, *reviewed])
    findings = ", ".join(f"{f.officer_id} {f.code}" for f in v.findings) or "-"
    return [
        v.verdict,
        v.incident.incident_ref,
        v.incident.type,
        local_time(v.incident.reported_at, seconds=False),
        reasons,
        findings,
        " ".join([seen_text(v.response), *_incident_codes(v)]),
    ]


def _incident_codes(v: IncidentVerdict) -> list[str]:
    return [f.code for f in v.response.findings] if v.response else []


def summary_line(report: Report) -> str:
    figures = summary(report)
    counts = ", ".join(f"{n} {name}" for name, n in figures["verdicts"].items())
    return (
        f"{figures['incidents']} incidents: {counts}. "
        f"Activation {percent(figures['activation_rate'])}, child voice captured "
        f"{percent(figures['child_voice_capture_rate'])} of "
        f"{figures['applicable_attendances']} applicable attendances. "
        f"First arrival: median {duration(figures['median_first_arrival_s'])}, "
        f"90% within {duration(figures['p90_first_arrival_s'])}, "
        f"{percent(figures['over_target_rate'])} over target; "
        f"{figures['incident_findings']['NOT_ATTENDED']} not attended. "
        f"Unassigned clips: {figures['unassigned_clips']}."
    )


def _review_codes(v: IncidentVerdict) -> list[tuple[str, int]]:
    return [(REVIEW_CODES[review.decision], clip_id) for clip_id, review in reviewed_clips(v)]


CSV_HEADER = [
    "incident_ref", "type", "reported_at", "location", "child_contact", "child_ages",
    "verdict", "reasons", "officer_findings", "clip_ids", "evidence", "notes",
    "priority", "first_arrival_target_s", "time_to_first_arrival_s", "incident_findings",
    "reviews",
]  # fmt: skip


def render_csv(report: Report) -> str:
    return write_csv([CSV_HEADER, *(_csv_row(v) for v in report.verdicts)])


def _csv_row(v: IncidentVerdict) -> list[Any]:
    incident = v.incident
    evidence = [describe_reason(r) for r in v.reasons] + [describe_finding(f) for f in v.findings]
    evidence += [describe_incident_finding(f) for f in v.response.findings] if v.response else []
    return [
        incident.incident_ref,
        incident.type,
        iso_z(incident.reported_at),
        incident.location,
        "yes" if incident.child_contact else "no",
        incident.child_ages,
        v.verdict,
        ";".join(r.code for r in v.reasons),
        ";".join(f"{f.officer_id}:{f.code}" for f in v.findings),
        ";".join(str(link.clip.clip_id) for link in v.evidence.links),
        " ".join(evidence) if v.applicable else v.applicability,
        incident.notes,
        incident.priority,
        "" if v.response is None else v.response.target_s,
        _blank(v.response.first_arrival_s if v.response else None),
        ";".join(_incident_codes(v)),
        " ".join(f"{code}: {words}" for code, words in review_items(v)),
    ]


def _blank(value: float | None) -> Any:
    return "" if value is None else value


GROUP_HEADER = [
    "group", "label", "incidents", "applicable_attendances", "recorded", "activation_rate",
    "child_voice_captured", "child_voice_rate", "median_start_delay_s", *FINDINGS, "flags",
    "arrivals_measured", "median_first_arrival_s", "p90_first_arrival_s", "over_target",
    "over_target_rate", "not_attended",
]  # fmt: skip


def render_groups_csv(view: ConsistencyView) -> str:
    rows = [GROUP_HEADER] + [_group_cells(g) for g in [view.force, *view.groups]]
    return write_csv(rows)


def _group_cells(g: GroupStats) -> list[Any]:
    return [
        g.group,
        g.label,
        g.incidents,
        g.applicable_attendances,
        g.recorded,
        "" if g.activation_rate is None else g.activation_rate,
        g.child_voice_captured,
        "" if g.child_voice_rate is None else g.child_voice_rate,
        "" if g.median_start_delay_s is None else g.median_start_delay_s,
        *(g.findings[code] for code in FINDINGS),
        ";".join(g.flags),
        g.arrivals_measured,
        _blank(g.median_first_arrival_s),
        _blank(g.p90_first_arrival_s),
        g.over_target,
        _blank(g.over_target_rate),
        g.not_attended,
    ]


def render_groups_table(view: ConsistencyView) -> str:
    rows = [[view.by.upper(), "ATTENDED", "RECORDED", "CHILD VOICE", "MEDIAN START", *FINDINGS]]
    rows[0] += ["FLAG", "FIRST ARRIVAL MEDIAN", "90TH PCT", "OVER TARGET", "NOT ATTENDED"]
    rows += [_group_row(g) for g in [view.force, *view.groups]]
    return _columns(rows) + f"\n\nFlag rule: {view.rule}.\n"


def _group_row(g: GroupStats) -> list[str]:
    return [
        g.label,
        str(g.applicable_attendances),
        percent(g.activation_rate),
        percent(g.child_voice_rate),
        seconds(g.median_start_delay_s),
        *(str(g.findings[code]) for code in FINDINGS),
        " ".join(g.flags) or "-",
        duration(g.median_first_arrival_s),
        duration(g.p90_first_arrival_s),
        percent(g.over_target_rate),
        str(g.not_attended),
    ]


def render_incident(detail: IncidentDetail) -> str:
    v = detail.verdict
    incident = v.incident
    lines = [
        f"Incident {incident.incident_ref}: {incident.type}",
        f"Reported: {local_time(incident.reported_at)}   Location: {incident.location or '-'}",
        f"Child contact: {'yes' if incident.child_contact else 'no'}   "
        f"Ages: {incident.child_ages or 'unknown'}   ({v.applicability})",
        f"Verdict: {v.verdict}",
    ]
    lines += [f"  {r.code}: {describe_reason(r)}" for r in v.reasons]
    lines += [f"  {code}: {words}" for code, words in review_items(v)]
    lines += [f"Priority: {incident.priority or '-'}   Seen in: {seen_text(v.response)}"]
    if v.response:
        lines += [f"  {f.code}: {describe_incident_finding(f)}" for f in v.response.findings]
    lines += ["", "Attendance:", *_attendance_lines(detail)]
    lines += ["", "Linked clips:", *_clip_lines(v)]
    lines += ["", "Officer findings:"]
    lines += [f"  {f.code}: {describe_finding(f)}" for f in v.findings] or ["  none"]
    if incident.notes:
        lines += ["", f"Notes: {incident.notes}"]
    return "\n".join(printable(line) for line in lines) + "\n"


def _attendance_lines(detail: IncidentDetail) -> list[str]:
    outcomes = {o.officer_id: o for o in detail.verdict.attendances}
    lines = []
    for att in detail.verdict.evidence.attendance:
        officer = detail.officers.get(att.officer_id)
        name = f" {officer.name} ({officer.team}, {officer.station})" if officer else ""
        outcome = outcomes.get(att.officer_id)
        cameras = ", ".join(outcome.cameras) if outcome and outcome.cameras else "none"
        lines.append(
            f"  {att.officer_id}{name}: {local_time(att.arrived_at)} to {_clock(att.left_at)}"
            + (f", camera {cameras}" if outcome else "")
        )
    return lines or ["  none recorded"]


def _clip_lines(v: IncidentVerdict) -> list[str]:
    lines = []
    for link in v.evidence.links:
        clip = link.clip
        marks = [link.source] + (["ambiguous"] if link.ambiguous else [])
        lines.append(
            f"  clip {clip.clip_id} {clip.file_name}  officer {link.officer_id or 'unknown'}  "
            f"{local_time(clip.started_at)} to {_clock(clip.ended_at)}  {clip.status}, "
            f"audio {clip.audio_state or '-'}, speech {clip.speech_seconds:g} s, "
            f"child {clip.child_speech_seconds:g} s  [{', '.join(marks)}]"
        )
    return lines or ["  none"]

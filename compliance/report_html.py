"""The HTML report: one self-contained file an inspector can open offline or attach.

No scripts, fonts or images are fetched (the page's content security policy forbids
it); charts are inline SVG. Every piece of catalogue text (incident notes, locations,
names, file names) is HTML-escaped through `esc`, because it comes from outside
systems and must never become markup in the inspector's browser.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from compliance.consistency import (
    ACTIVATION_FLAG,
    CHILD_VOICE_FLAG,
    GROUPINGS,
    ConsistencyView,
    GroupStats,
)
from compliance.render import (
    describe_finding,
    describe_incident_finding,
    describe_reason,
    duration,
    local_time,
    percent,
    review_items,
    seconds,
    seen_text,
    summary_line,
)
from compliance.report import Report, summary
from compliance.verdicts import FINDINGS, VERDICTS, IncidentVerdict

TEMPLATE = Path(__file__).with_name("templates") / "report.html"
CHART_GROUPINGS = (("team", "By team"), ("month", "By month"))
BAR_WIDTH = 300
ROW_HEIGHT = 34
LABEL_WIDTH = 150
FLAG_WORDS = {
    ACTIVATION_FLAG: "activation well below force",
    CHILD_VOICE_FLAG: "child voice well below force",
}


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_html(report: Report) -> str:
    views = {by: report.view(by) for by in GROUPINGS}
    fields = {
        "title": esc(f"BWV voice-of-the-child report {_period(report)}"),
        "subtitle": esc(f"{_period(report)}. Generated {local_time(report.generated_at)}."),
        "cards": _cards(report),
        "summary_text": esc(summary_line(report)),
        "charts": "".join(rate_chart(views[by], title) for by, title in CHART_GROUPINGS),
        "arrival_charts": "".join(arrival_chart(views[by], title) for by, title in CHART_GROUPINGS),
        "incident_table": _incident_table(report.verdicts),
        "flag_rule": esc(views["team"].rule.capitalize()),
        "consistency": "".join(group_table(views[by]) for by in GROUPINGS),
        "unassigned": _unassigned(report),
        "policy": _policy(report),
        "footer": esc(
            "Produced offline by bwv. Times are local (Europe/London unless BWV_TIMEZONE says "
            "otherwise); the JSON report gives them in UTC."
        ),
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(fields)


def _period(report: Report) -> str:
    since, until = report.period.since, report.period.until
    if since is None and until is None:
        return "all incidents"
    start = local_time(since, seconds=False) if since else "the first incident"
    end = local_time(until, seconds=False) if until else "now"
    return f"incidents reported from {start} to {end}"


def _cards(report: Report) -> str:
    figures = summary(report)
    cards = [("", figures["incidents"], "incidents"), ("", figures["applicable"], "applicable")]
    cards += [(name, figures["verdicts"][name], name.replace("_", " ")) for name in VERDICTS]
    cards += [
        ("", percent(figures["activation_rate"]), "activation"),
        ("", percent(figures["child_voice_capture_rate"]), "child voice captured"),
        ("", figures["unassigned_clips"], "unassigned clips"),
        ("", duration(figures["median_first_arrival_s"]), "median time to first arrival"),
        ("", percent(figures["over_target_rate"]), "first arrival over target"),
        ("", figures["incident_findings"]["NOT_ATTENDED"], "not attended"),
    ]
    return "".join(
        f'<div class="card {esc(kind)}"><div class="n">{esc(n)}</div>'
        f'<div class="l">{esc(label)}</div></div>'
        for kind, n, label in cards
    )


def rate_chart(view: ConsistencyView, title: str) -> str:
    groups = view.groups
    if not groups:
        return f"<div><h3>{esc(title)}</h3><p class='muted'>No applicable attendances.</p></div>"
    height = ROW_HEIGHT * len(groups) + 30
    width = LABEL_WIDTH + BAR_WIDTH + 60
    parts = [_bars(group, index) for index, group in enumerate(groups)]
    parts += _force_lines(view.force, height)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f"{_axis(height)}{''.join(parts)}</svg>"
    )
    return f"<div><h3>{esc(title)}</h3>{svg}</div>"


def _axis(height: int) -> str:
    ticks = []
    for share in (0, 0.25, 0.5, 0.75, 1.0):
        x = LABEL_WIDTH + share * BAR_WIDTH
        ticks.append(
            f'<line x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height - 20}" stroke="#e4e7ec"/>'
            f'<text x="{x:.0f}" y="{height - 6}" font-size="11" fill="#5b6475" '
            f'text-anchor="middle">{share * 100:.0f}%</text>'
        )
    return "".join(ticks)


def _bars(group: GroupStats, index: int) -> str:
    top = index * ROW_HEIGHT + 4
    label = group.label if len(group.label) <= 20 else group.label[:19] + "…"
    colour = "#b42318" if group.flags else "#1d2330"
    mark = "⚑ " if group.flags else ""
    parts = [
        f'<text x="{LABEL_WIDTH - 8}" y="{top + 17}" font-size="12" text-anchor="end" '
        f'fill="{colour}">{esc(mark + label)}<title>{esc(group.label)}: '
        f"{group.applicable_attendances} applicable attendances</title></text>"
    ]
    for offset, rate, colour in ((0, group.activation_rate, "#1f4e99"),
                                 (13, group.child_voice_rate, "#d97706")):  # fmt: skip
        length = (rate or 0.0) * BAR_WIDTH
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{top + offset}" width="{length:.1f}" height="11" '
            f'fill="{colour}"/><text x="{LABEL_WIDTH + length + 4:.1f}" y="{top + offset + 10}" '
            f'font-size="10" fill="#1d2330">{esc(percent(rate))}</text>'
        )
    return "".join(parts)


def arrival_chart(view: ConsistencyView, title: str) -> str:
    """Median and 90th-percentile time to first arrival per group, with the share over target."""
    groups = [g for g in view.groups if g.arrivals_measured]
    if not groups:
        return f"<div><h3>{esc(title)}</h3><p class='muted'>No attended incidents.</p></div>"
    scale = max(g.p90_first_arrival_s or 0.0 for g in groups) or 1.0
    height = ROW_HEIGHT * len(groups) + 10
    width = LABEL_WIDTH + BAR_WIDTH + 170
    bars = "".join(_arrival_bars(group, index, scale) for index, group in enumerate(groups))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">{bars}</svg>'
    )
    return f"<div><h3>{esc(title)}</h3>{svg}</div>"


def _arrival_bars(group: GroupStats, index: int, scale: float) -> str:
    top = index * ROW_HEIGHT + 4
    label = group.label if len(group.label) <= 20 else group.label[:19] + "…"
    parts = [
        f'<text x="{LABEL_WIDTH - 8}" y="{top + 17}" font-size="12" text-anchor="end" '
        f'fill="#1d2330">{esc(label)}<title>{esc(group.label)}: {group.arrivals_measured} '
        f"incidents reached first</title></text>"
    ]
    bars = ((0, group.median_first_arrival_s, "#1f4e99", "median"),
            (13, group.p90_first_arrival_s, "#9bb3dc", "90%"))  # fmt: skip
    for offset, value, colour, name in bars:
        length = max(value or 0.0, 0.0) / scale * BAR_WIDTH
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{top + offset}" width="{length:.1f}" height="11" '
            f'fill="{colour}"/><text x="{LABEL_WIDTH + length + 4:.1f}" y="{top + offset + 10}" '
            f'font-size="10" fill="#1d2330">{esc(name)} {esc(duration(value))}</text>'
        )
    over = f"{percent(group.over_target_rate)} over target"
    parts.append(
        f'<text x="{LABEL_WIDTH + BAR_WIDTH + 90}" y="{top + 17}" font-size="11" '
        f'fill="{"#b42318" if group.over_target else "#5b6475"}">{esc(over)}</text>'
    )
    return "".join(parts)


def _force_lines(force: GroupStats, height: int) -> list[str]:
    lines = []
    for rate, colour in ((force.activation_rate, "#1f4e99"), (force.child_voice_rate, "#d97706")):
        if rate is None:
            continue
        x = LABEL_WIDTH + rate * BAR_WIDTH
        lines.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="4 3"/>'
        )
    return lines


def _incident_table(verdicts: list[IncidentVerdict]) -> str:
    if not verdicts:
        return "<p class='muted'>No incidents in this period.</p>"
    head = "".join(
        f"<th>{name}</th>"
        for name in ("Incident", "Reported", "Verdict", "Reasons", "Findings", "Clips")
    )
    rows = "".join(_incident_row(v) for v in verdicts)
    return (
        f"<div class='scroll'><table class='incidents'><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _incident_row(v: IncidentVerdict) -> str:
    incident = v.incident
    about = [incident.type, incident.location, f"ages {incident.child_ages or 'unknown'}"]
    notes = f"<div class='muted'>{esc(incident.notes)}</div>" if incident.notes else ""
    reasons = [(r.code, describe_reason(r)) for r in v.reasons]
    if not v.applicable:
        reasons = [("", v.applicability)]
    reasons += review_items(v)
    findings = [(f.code, describe_finding(f)) for f in v.findings]
    if v.response:
        findings += [(f.code, describe_incident_finding(f)) for f in v.response.findings]
    seen = f"<div class='muted'>seen in {esc(seen_text(v.response))}</div>" if v.response else ""
    return (
        f"<tr><td><strong>{esc(incident.incident_ref)}</strong>"
        f"<div class='muted'>{esc(' · '.join(part for part in about if part))}</div>{notes}</td>"
        f"<td>{esc(local_time(incident.reported_at, seconds=False))}{seen}</td>"
        f"<td><span class='badge {esc(v.verdict)}'>{esc(v.verdict.replace('_', ' '))}</span></td>"
        f"<td>{_evidence_list(reasons)}</td><td>{_evidence_list(findings)}</td>"
        f"<td>{_clip_list(v)}</td></tr>"
    )


def _evidence_list(items: Iterable[tuple[str, str]]) -> str:
    entries = [
        f"<li><span class='code'>{esc(code)}</span> {esc(text)}</li>" if code else esc(text)
        for code, text in items
    ]
    return f"<ul class='ev'>{''.join(entries)}</ul>" if entries else "<span class='muted'>-</span>"


def _clip_list(v: IncidentVerdict) -> str:
    if not v.evidence.links:
        return "<span class='muted'>none</span>"
    items = []
    for link in v.evidence.links:
        clip = link.clip
        marks = ", ".join([link.source] + (["ambiguous"] if link.ambiguous else []))
        items.append(
            f"<li>{esc(clip.clip_id)} {esc(clip.file_name)} "
            f"<span class='muted'>({esc(link.officer_id or 'officer unknown')}; "
            f"{esc(clip.status)}; audio {esc(clip.audio_state or '-')}; "
            f"child {esc(f'{clip.child_speech_seconds:g}')} s; {esc(marks)})</span></li>"
        )
    return f"<ul class='ev'>{''.join(items)}</ul>"


def group_table(view: ConsistencyView) -> str:
    head = ["By " + view.by, "Incidents", "Attendances", "Activation", "Child voice"]
    head += ["Median start", *(code.replace("_", " ").lower() for code in FINDINGS), "Flag"]
    head += ["First arrival median", "90th pct", "Over target", "Not attended"]
    cells = "".join(
        f"<th class='num'>{esc(name)}</th>" if i else f"<th>{esc(name)}</th>"
        for i, name in enumerate(head)
    )
    rows = "".join(_group_row(g, force=True) for g in [view.force])
    rows += "".join(_group_row(g) for g in view.groups)
    return (
        f"<h3>By {esc(view.by)}</h3><div class='scroll'><table><thead><tr>{cells}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _group_row(g: GroupStats, force: bool = False) -> str:
    values = [g.incidents, g.applicable_attendances, percent(g.activation_rate)]
    values += [percent(g.child_voice_rate), seconds(g.median_start_delay_s)]
    values += [g.findings[code] for code in FINDINGS]
    flag = "; ".join(FLAG_WORDS.get(code, code) for code in g.flags)
    label = f"<strong>{esc(g.label)}</strong>" if force else esc(g.label)
    numbers = "".join(f"<td class='num'>{esc(v)}</td>" for v in values)
    arrival = [duration(g.median_first_arrival_s), duration(g.p90_first_arrival_s)]
    arrival += [percent(g.over_target_rate), str(g.not_attended)]
    seen = "".join(f"<td class='num'>{esc(v)}</td>" for v in arrival)
    css = " class='flagged'" if g.flags else ""
    return f"<tr{css}><td>{label}</td>{numbers}<td class='flag'>{esc(flag)}</td>{seen}</tr>"


def _unassigned(report: Report) -> str:
    if not report.unassigned:
        return "<p>None.</p>"
    rows = "".join(
        f"<tr><td class='num'>{esc(c.clip_id)}</td><td>{esc(c.file_name)}</td>"
        f"<td>{esc(c.device_serial or '-')}</td><td>{esc(local_time(c.started_at))}</td></tr>"
        for c in report.unassigned
    )
    return (
        "<div class='scroll'><table><thead><tr><th class='num'>Clip</th><th>File</th>"
        f"<th>Camera</th><th>Started</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _policy(report: Report) -> str:
    settings = report.policy.as_dict().items()
    items = "".join(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>" for key, value in settings)
    return f"<dl class='policy'>{items}</dl>"

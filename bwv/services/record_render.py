"""The child record written out: Markdown, self-contained HTML for A4 paper, or JSON.

A partner agency may open the record in a browser, print it, or paste it into its own
case system, so every piece of catalogue text (transcripts, names, notes, reasons) is
escaped for the format it lands in: HTML-escaped in HTML, Markdown punctuation and
markup neutralised in Markdown, and encoded by orjson in JSON. The HTML fetches nothing
(its content security policy forbids it) and repeats the protective marking on every
printed page.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from typing import Any

import orjson

from bwv.core.child_speech import speaker_label
from bwv.core.textsafe import printable
from bwv.services.child_record import ChildRecord, ChildSegment, RecordClip
from compliance.render import describe_reason, describe_review, local_time, review_items, seen_text
from compliance.report import report_incident_json, review_json, reviews_json

JSON_TIMES = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_INDENT_2
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~])")


def render_record(record: ChildRecord, fmt: str) -> bytes:
    if fmt == "json":
        return orjson.dumps(record_json(record), option=JSON_TIMES) + b"\n"
    if fmt == "html":
        return record_html(record).encode("utf-8")
    return record_markdown(record).encode("utf-8")


def record_json(record: ChildRecord) -> dict[str, Any]:
    """The record as data; the Markdown and HTML forms show exactly these facts."""
    v = record.detail.verdict
    none = record.no_child_speech
    return {
        "protective_marking": record.marking,
        "generated_at": record.generated_at,
        "generated_by": record.actor,
        "reason": record.reason,
        "child_probability_threshold": record.threshold,
        "incident": _incident(record),
        "officers_present": _officers(record),
        "child_speech": none is None,
        "no_child_speech": None if none is None else {"kind": none[0], "explanation": none[1]},
        "clips": [_clip(clip) for clip in record.clips],
        "reviews": reviews_json(v),
        "decisions": [
            {
                "clip_id": d.clip_id,
                "action": d.action,
                "actor": d.actor,
                "reason": d.reason,
                "decided_at": d.decided_at,
            }
            for d in record.decisions
        ],
        "verdict": {
            "verdict": v.verdict,
            "applicable": v.applicable,
            "applicability": v.applicability,
            "reasons": [
                {"code": r.code, "description": describe_reason(r), **r.evidence} for r in v.reasons
            ],
        },
    }


# The incident's facts, as the report's JSON contract gives them (one definition).
INCIDENT_KEYS = (
    "incident_ref", "type", "reported_at", "location", "priority", "child_contact",
    "child_ages", "notes", "time_to_first_arrival_s",
)  # fmt: skip


def _incident(record: ChildRecord) -> dict[str, Any]:
    entry = report_incident_json(record.detail.verdict)
    return {key: entry[key] for key in INCIDENT_KEYS}


def _officers(record: ChildRecord) -> list[dict[str, Any]]:
    officers = record.detail.officers
    rows = []
    for att in record.detail.verdict.evidence.attendance:
        known = officers.get(att.officer_id)
        rows.append(
            {
                "officer_id": att.officer_id,
                "name": known.name if known else None,
                "team": known.team if known else None,
                "station": known.station if known else None,
                "arrived_at": att.arrived_at,
                "left_at": att.left_at,
            }
        )
    return rows


def _clip(clip: RecordClip) -> dict[str, Any]:
    return {
        "clip_id": clip.clip_id,
        "file_name": clip.file_name,
        "officer_id": clip.officer_id,
        "started_at": clip.started_at,
        "status": clip.status,
        "audio_state": clip.audio_state,
        "transcribed": clip.transcribed,
        "review": review_json(clip.review),
        "child_segments": [
            {
                "start_s": s.start_s,
                "end_s": s.end_s,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "text": s.text,
                "probability": s.probability,
                "segment_probability": s.segment_probability,
                "speaker": s.speaker,
                "source": s.source,
            }
            for s in clip.segments
        ],
    }


# Markdown ------------------------------------------------------------------------------


def md(value: object) -> str:
    """Catalogue text as inert Markdown: one line, punctuation and markup escaped."""
    return _MD_SPECIAL.sub(r"\\\1", printable(value if value is not None else "-"))


def record_markdown(record: ChildRecord) -> str:
    data = record_json(record)
    incident = data["incident"]
    lines = [
        f"**{md(record.marking)}**",
        "",
        f"# The child's voice: incident {md(incident['incident_ref'])}",
        "",
        f"Written {md(_when(record.generated_at))} by {md(record.actor)}. "
        f"Reason for disclosure: {md(record.reason)}",
        "",
        "## Incident",
        "",
        *_md_facts(record),
        "",
        "## Officers present",
        "",
        *([_md_officer(o) for o in data["officers_present"]] or ["- none recorded"]),
        "",
        "## What the child said",
        "",
        *_md_speech(record),
        "",
        "## Human decisions",
        "",
        *(_md_decisions(record, data) or ["- none"]),
        "",
        "## Verdict",
        "",
        *_md_verdict(data["verdict"]),
        "",
        f"**{md(record.marking)}**",
    ]
    return "\n".join(lines) + "\n"


def _md_facts(record: ChildRecord) -> list[str]:
    return [f"- {md(key)}: {md(value)}" for key, value in _facts(record)]


def _md_officer(o: dict[str, Any]) -> str:
    who = " ".join(md(part) for part in (o["officer_id"], o["name"]) if part)
    unit = f" ({md(o['team'])}, {md(o['station'])})" if o["team"] else ""
    return f"- {who}{unit}: {md(_when(o['arrived_at']))} to {md(_when(o['left_at']))}"


def _md_speech(record: ChildRecord) -> list[str]:
    if record.no_child_speech is not None:
        kind, sentence = record.no_child_speech
        return [f"**No child speech ({md(kind)}).** {md(sentence)}"]
    lines = [f"A person heard the child: {md(heard)}" for heard in _heard(record)]
    if not any(clip.segments for clip in record.clips):
        return lines
    lines += [
        f"Segments whose speaker is judged a child (probability at least "
        f"{record.threshold:g}), or inside a span where a person heard the child (marked "
        f"{SOURCE_WORDS['review']}). Times are local; offsets are seconds into the clip.",
        "",
        "| clip | start | end | said | probability | speaker |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for clip in record.clips:
        lines += [_md_segment(clip, s) for s in clip.segments]
    return lines


def _md_segment(clip: RecordClip, s: ChildSegment) -> str:
    cells = [
        f"{clip.clip_id} {md(clip.file_name)}",
        f"{md(_when(s.started_at))} ({s.start_s:.1f} s)",
        f"{md(_when(s.ended_at))} ({s.end_s:.1f} s)",
        md(s.text.strip()),
        _probability(s.probability) + SOURCE_WORDS[s.source],
        speaker_label(s.speaker),
    ]
    return "| " + " | ".join(cells) + " |"


# How a segment came to be the child's, after its probability.
SOURCE_WORDS = {"classifier": "", "review": " (heard by a person)"}


def _heard(record: ChildRecord) -> list[str]:
    return [describe_review(clip_id, review) for clip_id, review in record.heard]


def _md_decisions(record: ChildRecord, data: dict[str, Any]) -> list[str]:
    """People's review of each clip's child voice, then their link decisions."""
    reviews = [f"- {md(code)}: {md(words)}" for code, words in review_items(record.detail.verdict)]
    return reviews + [_md_decision(d) for d in data["decisions"]]


def _md_decision(d: dict[str, Any]) -> str:
    return (
        f"- {md(d['action'])} clip {d['clip_id']} by {md(d['actor'])} on "
        f"{md(_when(d['decided_at']))}: {md(d['reason'])}"
    )


def _md_verdict(verdict: dict[str, Any]) -> list[str]:
    lines = [f"**{md(verdict['verdict'].replace('_', ' '))}** ({md(verdict['applicability'])})"]
    return lines + [f"- {md(r['code'])}: {md(r['description'])}" for r in verdict["reasons"]]


def _when(moment: datetime | None) -> str:
    return local_time(moment) if moment is not None else "unknown"


def _probability(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# HTML ----------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return escape(printable("" if value is None else value), quote=True)


_STYLE = """
@page { size: A4; margin: 18mm 15mm 20mm 15mm; }
body { font: 11pt/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
  max-width: 180mm; margin: 0 auto; padding: 12mm 0; }
.marking { text-align: center; font-weight: 700; letter-spacing: .08em; }
.marking.top { border-bottom: 2px solid #1d2330; padding-bottom: 4px; }
.marking.bottom { border-top: 2px solid #1d2330; padding-top: 4px; margin-top: 24px; }
h1 { font-size: 17pt; margin: 14px 0 4px; } h2 { font-size: 13pt; margin: 18px 0 6px; }
table { width: 100%; border-collapse: collapse; font-size: 9.5pt; }
th, td { border: 1px solid #c9ced8; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef1f6; } td.num { text-align: right; white-space: nowrap; }
tr, li { break-inside: avoid; } thead { display: table-header-group; }
.said { font-size: 10.5pt; } .muted { color: #5b6475; } .none { font-weight: 600; }
dl { display: grid; grid-template-columns: 38mm 1fr; gap: 2px 8px; margin: 0; }
dt { color: #5b6475; }
@media print { body { padding: 0; max-width: none; }
  .marking.top { position: fixed; top: -12mm; left: 0; right: 0; border: none; }
  .marking.bottom { position: fixed; bottom: -14mm; left: 0; right: 0; border: none; } }
"""


def record_html(record: ChildRecord) -> str:
    data = record_json(record)
    ref = data["incident"]["incident_ref"]
    marking = f"{esc(record.marking)}"
    body = "".join(
        [
            f"<div class='marking top'>{marking}</div>",
            f"<h1>The child's voice: incident {esc(ref)}</h1>",
            f"<p class='muted'>Written {esc(_when(record.generated_at))} by "
            f"{esc(record.actor)}. Reason for disclosure: {esc(record.reason)}</p>",
            *_html_sections(record, data),
            f"<div class='marking bottom'>{marking}</div>",
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>{marking}: child record {esc(ref)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def record_panel(record: ChildRecord) -> str:
    """The record's sections as an HTML fragment (escaped here), for the web's incident page:
    the same facts as the written record, without the disclosure line it has not had."""
    marking = f"<p class='marking'>{esc(record.marking)}</p>"
    return marking + "".join(_html_sections(record, record_json(record))) + marking


def _html_sections(record: ChildRecord, data: dict[str, Any]) -> list[str]:
    return [
        "<h2>Incident</h2>",
        _html_facts(record),
        "<h2>Officers present</h2>",
        _html_officers(data["officers_present"]),
        "<h2>What the child said</h2>",
        _html_speech(record),
        "<h2>Human decisions</h2>",
        _html_reviews(record),
        _html_decisions(data["decisions"]),
        "<h2>Verdict</h2>",
        _html_verdict(data["verdict"]),
    ]


def _html_facts(record: ChildRecord) -> str:
    items = "".join(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>" for key, value in _facts(record))
    return f"<dl>{items}</dl>"


def _facts(record: ChildRecord) -> list[tuple[str, str]]:
    """The incident's facts as (label, text) pairs, for both Markdown and HTML."""
    incident = record.detail.verdict.incident
    return [
        ("Type", incident.type),
        ("Reported", _when(incident.reported_at)),
        ("Location", incident.location or "-"),
        ("Priority", incident.priority or "-"),
        ("Seen in", seen_text(record.detail.verdict.response)),
        ("Child contact", "yes" if incident.child_contact else "no"),
        ("Child ages", incident.child_ages or "unknown"),
        ("Notes", incident.notes or "-"),
    ]


def _html_table(head: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class='muted'>{esc(empty)}</p>"
    cells = "".join(f"<th>{esc(name)}</th>" for name in head)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: Any, css: str = "") -> str:
    return f"<td class='{css}'>{esc(value)}</td>" if css else f"<td>{esc(value)}</td>"


def _html_officers(officers: list[dict[str, Any]]) -> str:
    rows = [
        [
            _td(o["officer_id"]),
            _td(o["name"] or "-"),
            _td(f"{o['team']}, {o['station']}" if o["team"] else "-"),
            _td(_when(o["arrived_at"])),
            _td(_when(o["left_at"])),
        ]
        for o in officers
    ]
    head = ["Officer", "Name", "Team, station", "Arrived", "Left"]
    return _html_table(head, rows, "No attendance recorded.")


def _html_speech(record: ChildRecord) -> str:
    if record.no_child_speech is not None:
        kind, sentence = record.no_child_speech
        return f"<p><span class='none'>No child speech ({esc(kind)}).</span> {esc(sentence)}</p>"
    heard = "".join(f"<p>A person heard the child: {esc(words)}</p>" for words in _heard(record))
    if not any(clip.segments for clip in record.clips):
        return heard
    rows = [
        [
            _td(f"{clip.clip_id} {clip.file_name}"),
            _td(f"{_when(s.started_at)} ({s.start_s:.1f} s)"),
            _td(f"{_when(s.ended_at)} ({s.end_s:.1f} s)"),
            f"<td class='said'>{esc(s.text.strip())}</td>",
            _td(_probability(s.probability) + SOURCE_WORDS[s.source], "num"),
            _td(speaker_label(s.speaker), "num"),
        ]
        for clip in record.clips
        for s in clip.segments
    ]
    note = (
        f"<p class='muted'>Segments whose speaker is judged a child (probability at least "
        f"{record.threshold:g}), or inside a span where a person heard the child (marked "
        f"{esc(SOURCE_WORDS['review'])}). Times are local; seconds into the clip in brackets.</p>"
    )
    head = ["Clip", "Start", "End", "Said", "Probability", "Speaker"]
    return heard + note + _html_table(head, rows, "")


def _html_reviews(record: ChildRecord) -> str:
    items = review_items(record.detail.verdict)
    listed = "".join(f"<li>{esc(code)}: {esc(words)}</li>" for code, words in items)
    return f"<ul class='reviews'>{listed}</ul>" if items else ""


def _html_decisions(decisions: list[dict[str, Any]]) -> str:
    rows = [
        [
            _td(d["action"]),
            _td(d["clip_id"]),
            _td(d["actor"]),
            _td(_when(d["decided_at"])),
            _td(d["reason"]),
        ]
        for d in decisions
    ]
    return _html_table(["Decision", "Clip", "By", "When", "Reason"], rows, "None.")


def _html_verdict(verdict: dict[str, Any]) -> str:
    reasons = "".join(
        f"<li>{esc(r['code'])}: {esc(r['description'])}</li>" for r in verdict["reasons"]
    )
    return (
        f"<p><strong>{esc(verdict['verdict'].replace('_', ' '))}</strong> "
        f"({esc(verdict['applicability'])})</p>" + (f"<ul>{reasons}</ul>" if reasons else "")
    )

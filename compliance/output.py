"""Choosing a report rendering and writing it where the user asked.

Kept apart from the renderers so that the CLI (and the demo and benchmark) make one call
for any `--format` and `--by` combination, and so that a file that cannot be written is
a clear error rather than a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from bwv.core.errors import BwvError
from bwv.core.timeutil import json_time
from compliance.bulk import paused_gc
from compliance.consistency import GROUPINGS
from compliance.facts import Period
from compliance.render import render_csv, render_groups_csv, render_groups_table, render_table
from compliance.report import (
    ENTRY_SEPARATOR,
    JSON_TIMES,
    Encoded,
    Report,
    build_report,
    consistency_json,
    report_json,
)
from compliance.report_html import render_html

FORMATS = ("table", "csv", "json", "html")


@dataclass(frozen=True)
class ReportRequest:
    since: datetime | None = None
    until: datetime | None = None
    fmt: str = "table"
    by: str | None = None
    policy_path: Path | None = None


def produce_report(request: ReportRequest, *, engine: Engine) -> tuple[Report, bytes]:
    """The report `bwv report` asks for, built keeping only what its rendering needs."""
    keep, groupings = _needed(request.fmt, request.by)
    report = build_report(
        engine=engine,
        period=Period(request.since, request.until),
        policy_path=request.policy_path,
        keep=keep,
        groupings=groupings,
    )
    return report, render_report(report, fmt=request.fmt, by=request.by)


def _needed(fmt: str, by: str | None) -> tuple[str, tuple[str, ...]]:
    """What of the judged incidents a rendering uses, and which `--by` views."""
    if fmt == "html":
        return "verdicts", GROUPINGS
    if by:
        return "tally", (by,)
    return ("json" if fmt == "json" else "verdicts"), ()


def render_report(report: Report, *, fmt: str, by: str | None = None) -> bytes:
    """The report as UTF-8 in `fmt`; with `by`, the consistency view (HTML has both).

    Bytes rather than text: a force's JSON report is 150 MB, and each decode, encode or
    copy of it costs a noticeable share of the whole run.
    """
    with paused_gc():
        if fmt == "json":
            return contract_json(consistency_json(report, by) if by else report_json(report))
        return _rendered_text(report, fmt, by).encode()


def _rendered_text(report: Report, fmt: str, by: str | None) -> str:
    if not by and report.tally.incidents and not report.verdicts:
        raise ValueError(f"a {fmt} report needs the verdicts; build it with keep='verdicts'")
    if fmt == "html":
        return render_html(report)
    if by:
        view = report.view(by)
        return render_groups_csv(view) if fmt == "csv" else render_groups_table(view)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "table":
        return render_table(report)
    raise BwvError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


LISTS = ("incidents", "unassigned_clips", "groups")


def contract_json(data: dict[str, Any]) -> bytes:
    """Indented JSON with one line per incident (or group, or clip).

    Python's indenting encoder is pure Python and takes tens of seconds on a force's
    year; each list item is encoded compactly by orjson instead (or arrives `Encoded`),
    which also keeps the file greppable one incident per line.
    """
    pieces: list[bytes] = []
    for key, value in data.items():
        pieces.append(b",\n  " if pieces else b"{\n  ")
        pieces.append(orjson.dumps(key) + b": ")
        if key in LISTS and isinstance(value, list) and value:
            items = value if isinstance(value, Encoded) else (_dumps(item) for item in value)
            # Items and separators go into the one final join: no copy of a 150 MB list.
            pieces.append(b"[\n    ")
            pieces += [piece for item in items for piece in (item, ENTRY_SEPARATOR)]
            pieces[-1] = b"\n  ]"
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=json_time)
            text = text.replace("\n", "\n  ")
            pieces.append(text.encode())
    pieces.append(b"\n}\n")
    return b"".join(pieces)


def _dumps(item: Any) -> bytes:
    return orjson.dumps(item, option=JSON_TIMES)


def write_output(data: bytes, path: Path) -> None:
    """Writes the rendered report as it is (CSV keeps its CRLF rows)."""
    try:
        with path.open("wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise BwvError(f"cannot write report to {path}: {exc.strerror}") from None

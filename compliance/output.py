"""Choosing a report rendering and writing it where the user asked.

Kept apart from the renderers so that the CLI (and the demo and benchmark) make one call
for any `--format` and `--by` combination, and so that a file that cannot be written is
a clear error rather than a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from bwv.errors import BwvError
from compliance.render import render_csv, render_groups_csv, render_groups_table, render_table
from compliance.report import Report, consistency_json, report_json
from compliance.report_html import render_html

FORMATS = ("table", "csv", "json", "html")


def render_report(report: Report, *, fmt: str, by: str | None = None) -> str:
    """The report as text in `fmt`; with `by`, the consistency view (HTML always has both)."""
    if fmt == "html":
        return render_html(report)
    if fmt == "json":
        data = consistency_json(report, by) if by else report_json(report)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if by:
        view = report.view(by)
        return render_groups_csv(view) if fmt == "csv" else render_groups_table(view)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "table":
        return render_table(report)
    raise BwvError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_output(text: str, path: Path) -> None:
    """Writes `text` as UTF-8 (CSV keeps its CRLF rows exactly as rendered)."""
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise BwvError(f"cannot write report to {path}: {exc.strerror}") from None

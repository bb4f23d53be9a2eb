"""The one spreadsheet-safe CSV writer: no cell a spreadsheet would run as a formula.

Reports and audit exports are opened in Excel or LibreOffice by inspectors. A cell from
the catalogue (an officer's name, a note, a file name) starting with `=`, `+`, `-` or `@`,
or their full-width forms that spreadsheets also accept, or a tab or line break before
them, would be evaluated (CSV injection). Such cells get a leading apostrophe, which the
spreadsheet shows as text. Every CSV that bwv writes goes through `write_csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text, never evaluates as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV text with CRLF line ends (RFC 4180), every cell made safe."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()

"""Reading an import file (CSV or a JSON array) into rows that remember their line.

Import errors must point at `FILE:LINE`, so every row carries the line it starts on,
for CSV (a quoted field may span lines) and for JSON (found while decoding the array
item by item). Text-level problems, such as a file that is not UTF-8, are refused here
with one clear message before any row is looked at. Only regular files up to
`MAX_IMPORT_BYTES` are read (a device such as /dev/zero or a pipe would never end), and
JSON nested deeper than Python can decode is refused rather than crashing.
"""

from __future__ import annotations

import csv
import io
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bwv.core.errors import BwvError, ImportRejected

HEADER_LINE = 1
MAX_IMPORT_BYTES = 200 * 1024 * 1024  # far above any force export; refuses runaway input


@dataclass(frozen=True)
class RawRow:
    line: int
    values: dict[str, str]
    field_count: int


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[RawRow]
    header_line: int
    has_header: bool = True  # a JSON array has no header; each object names its fields


def read_table(path: Path) -> Table:
    """The rows of `path`: a JSON array when it ends in .json or starts with `[`, else CSV."""
    text = _read_text(path)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        return _json_table(text, path)
    return _csv_table(text, path)


def _read_text(path: Path) -> str:
    try:
        data = _read_bytes(path)
    except FileNotFoundError:
        raise BwvError(f"{path}: file does not exist") from None
    except IsADirectoryError:
        raise BwvError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise BwvError(f"{path}: cannot read: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BwvError(f"{path}: is UTF-16 text; save it as UTF-8 (CSV UTF-8) and import again")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BwvError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8 (CSV UTF-8) and import again"
        ) from None
    if not text.strip():
        raise BwvError(f"{path}: the file is empty; expected a header row")
    return text


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most `MAX_IMPORT_BYTES`, read no further than that."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(mode):
        raise BwvError(f"{path}: not a regular file (a device, pipe or socket); give a file")
    with path.open("rb") as handle:
        data = handle.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise BwvError(
            f"{path}: larger than the import limit of {MAX_IMPORT_BYTES // (1024 * 1024)} MB; "
            "split the file"
        )
    return data


def _csv_table(text: str, path: Path) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        columns = [name.strip().lower() for name in header]
        _refuse_repeated_columns(columns, path)
        rows = _csv_rows(reader, columns)
    except csv.Error as exc:
        raise rejected([f"{path}:{reader.line_num}: unreadable CSV: {exc}"]) from None
    return Table(columns=columns, rows=rows, header_line=HEADER_LINE)


def _refuse_repeated_columns(columns: list[str], path: Path) -> None:
    """Two columns of one name would leave it to chance which value is imported."""
    problems = [
        f"{path}:{HEADER_LINE}: {name}: column appears more than once in the header "
        f"(columns {columns.index(name) + 1} and {position + 1})"
        for position, name in enumerate(columns)
        if name and columns.index(name) != position
    ]
    if problems:
        raise rejected(problems)


def _csv_rows(reader: Any, columns: list[str]) -> list[RawRow]:
    rows: list[RawRow] = []
    start = reader.line_num + 1
    for record in reader:
        if any(cell.strip() for cell in record):
            values = {name: cell for name, cell in zip(columns, record, strict=False)}
            rows.append(RawRow(line=start, values=values, field_count=len(record)))
        start = reader.line_num + 1
    return rows


def _json_table(text: str, path: Path) -> Table:
    items = _json_items(text, path)
    rows: list[RawRow] = []
    problems: list[str] = []
    columns: list[str] = []
    for line, item in items:
        if not isinstance(item, dict):
            problems.append(f"{path}:{line}: expected an object, found {type(item).__name__}")
            continue
        values, bad = _json_values(item)
        repeated = item.repeated if isinstance(item, _Object) else []
        bad += [(name, "appears more than once in this object") for name in repeated]
        problems.extend(f"{path}:{line}: {name}: {what}" for name, what in bad)
        columns.extend(name for name in values if name not in columns)
        rows.append(RawRow(line=line, values=values, field_count=-1))
    if problems:
        raise rejected(problems)
    return Table(columns=columns, rows=rows, header_line=HEADER_LINE, has_header=False)


def _json_values(item: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    values: dict[str, str] = {}
    bad: list[tuple[str, str]] = []
    for key, value in item.items():
        name = str(key).strip().lower()
        if isinstance(value, dict | list):
            bad.append((name, "must be a single value, not a list or object"))
        elif value is None:
            values[name] = ""
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        else:
            values[name] = str(value)
    return values, bad


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers keys given twice (plain dicts keep the last)."""

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    names = [str(key).strip().lower() for key, _ in pairs]
    found.repeated = sorted({name for name in names if names.count(name) > 1})
    return found


def _json_items(text: str, path: Path) -> list[tuple[int, Any]]:
    """Decodes a JSON array item by item so that each item knows its starting line."""
    decoder = json.JSONDecoder(object_pairs_hook=_object)
    position = _skip_space(text, 0)
    if text[position : position + 1] != "[":
        raise BwvError(f"{path}: expected a JSON array of objects")
    items: list[tuple[int, Any]] = []
    position = _skip_space(text, position + 1)
    while text[position : position + 1] != "]":
        line = text.count("\n", 0, position) + 1
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise BwvError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise BwvError(
                f"{path}:{line}: JSON nested too deeply; expected flat objects"
            ) from None
        items.append((line, item))
        position = _after_item(text, position, path)
    return items


def _after_item(text: str, position: int, path: Path) -> int:
    position = _skip_space(text, position)
    if text[position : position + 1] == ",":
        return _skip_space(text, position + 1)
    if text[position : position + 1] == "]":
        return position
    line = text.count("\n", 0, position) + 1
    raise BwvError(f"{path}:{line}: invalid JSON: expected ',' or ']' after an item")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


MAX_LISTED = 20


def rejected(problems: list[str]) -> ImportRejected:
    """The rejection for `problems`, listing the first few and counting them all."""
    return ImportRejected(problems[:MAX_LISTED], total=len(problems))

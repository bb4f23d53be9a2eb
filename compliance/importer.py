"""Importing officers, camera assignments, incidents and attendance from CSV or JSON.

These files come from other force systems (HR, kit store, command and control), so
they are checked hard: one bad row rejects the whole file, every bad row is named as
`FILE:LINE: column: what is wrong`, and nothing is written. A good file upserts by its
natural key, so importing a corrected or extended export again never duplicates. Links
are recomputed in the same transaction; the service that calls this audits the import.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlmodel import Session, SQLModel, col

from bwv.core.errors import BwvError
from bwv.core.models import Assignment, Attendance, Incident, Officer
from bwv.core.store import sha256_file
from bwv.core.timeutil import AmbiguousTimeWarning, checked_zone, iso_z, parse_time
from compliance.linking import LinkSummary, recompute_links
from compliance.policy import PRIORITY_PATTERN, load_policy
from compliance.tabular import RawRow, Table, read_table, rejected

KINDS = ("officers", "assignments", "incidents", "attendance")
MAX_CHILD_AGE = 17
MAX_NOTES = 20  # ambiguous local times listed one by one in the import's warnings
TRUE_WORDS = {"yes", "y", "true", "1"}
FALSE_WORDS = {"no", "n", "false", "0"}


@dataclass(frozen=True)
class Column:
    name: str
    parse: Callable[[str, ZoneInfo], Any]
    max_len: int = 64
    required: bool = True  # a value must be given
    in_header: bool = True  # the column must be present


@dataclass(frozen=True)
class Spec:
    kind: str
    model: type[SQLModel]
    columns: tuple[Column, ...]
    key: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, Any]

    def key(self, spec: Spec) -> tuple[Any, ...]:
        return tuple(self.values[name] for name in spec.key)


@dataclass(frozen=True)
class ImportResult:
    kind: str
    file: str
    rows: int
    inserted: int
    updated: int
    links: LinkSummary
    warnings: list[str] = field(default_factory=list)


def _text(value: str, _zone: ZoneInfo) -> str:
    return value.strip()


def _time(value: str, zone: ZoneInfo) -> datetime:
    return parse_time(value, zone)


def _optional_time(value: str, zone: ZoneInfo) -> datetime | None:
    return parse_time(value, zone) if value.strip() else None


def _yes_no(value: str, _zone: ZoneInfo) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected yes or no (or true/false, y/n, 1/0), not {value.strip()!r}")


def _ages(value: str, _zone: ZoneInfo) -> str:
    """Ages separated by ';' (empty when unknown), normalised to `7;9`."""
    parts = [part.strip() for part in value.split(";") if part.strip()]
    for part in parts:
        if not part.isdigit() or int(part) > MAX_CHILD_AGE:
            raise ValueError(
                f"{part!r} is not an age from 0 to {MAX_CHILD_AGE}; "
                "give whole years separated by ';', or leave empty when unknown"
            )
    return ";".join(str(int(part)) for part in parts)


def _priority(value: str, _zone: ZoneInfo) -> str:
    """A command-and-control priority such as P1, upper-cased; empty when not given."""
    word = value.strip().upper()
    if word and not PRIORITY_PATTERN.fullmatch(word):
        raise ValueError(f"{value.strip()!r} is not a priority such as P1 (letters and digits)")
    return word


SPECS = {
    "officers": Spec(
        "officers",
        Officer,
        (
            Column("officer_id", _text),
            Column("name", _text, max_len=200),
            Column("team", _text, max_len=100),
            Column("station", _text, max_len=100),
        ),
        key=("officer_id",),
    ),
    "assignments": Spec(
        "assignments",
        Assignment,
        (
            Column("device_serial", _text),
            Column("officer_id", _text),
            Column("issued_at", _time),
            Column("returned_at", _optional_time, required=False, in_header=False),
        ),
        key=("device_serial", "issued_at"),
    ),
    "incidents": Spec(
        "incidents",
        Incident,
        (
            Column("incident_ref", _text),
            Column("type", _text, max_len=100),
            Column("reported_at", _time),
            Column("location", _text, max_len=500, required=False, in_header=False),
            Column("child_contact", _yes_no),
            Column("child_ages", _ages, max_len=100, required=False, in_header=False),
            Column("notes", _text, max_len=5000, required=False, in_header=False),
            Column("priority", _priority, max_len=16, required=False, in_header=False),
        ),
        key=("incident_ref",),
    ),
    "attendance": Spec(
        "attendance",
        Attendance,
        (
            Column("incident_ref", _text),
            Column("officer_id", _text),
            Column("arrived_at", _time),
            Column("left_at", _time),
        ),
        key=("incident_ref", "officer_id"),
    ),
}


def read_import(kind: str, path: Path) -> Table:
    """The file read and checked as a table (before any transaction); the kind checked."""
    _spec(kind)
    checked_zone()
    return read_table(path)


def import_table(session: Session, kind: str, table: Table, path: Path) -> ImportResult:
    """Validates every row, then upserts them and relinks, in the caller's transaction.

    Any bad row raises ImportRejected listing every problem, and nothing is written.
    """
    return _import_table(_spec(kind), table, path, session=session, zone=checked_zone())


def _spec(kind: str) -> Spec:
    if kind not in SPECS:
        raise BwvError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    return SPECS[kind]


def _import_table(
    spec: Spec, table: Table, path: Path, *, session: Session, zone: ZoneInfo
) -> ImportResult:
    _check_header(spec, table, path)
    rows, problems, notes = _parse_rows(spec, table, path, zone)
    problems += _duplicate_keys(spec, rows, path)
    problems += _stored_conflicts(spec, rows, path, session=session)
    if problems:
        raise rejected(sorted(problems, key=lambda problem: _line_of(problem, path)))
    inserted, updated = _upsert(spec, rows, session=session)
    links = recompute_links(session)
    result = ImportResult(
        kind=spec.kind,
        file=str(path),
        rows=len(rows),
        inserted=inserted,
        updated=updated,
        links=links,
        warnings=_listed(notes) + _unknown_officers(spec, rows, session=session),
    )
    return result


def _line_of(problem: str, path: Path) -> int:
    """The LINE of `FILE:LINE: ...`, for listing problems in file order."""
    line = problem.removeprefix(f"{path}:").split(":", 1)[0]
    return int(line) if line.isdigit() else 0


def _check_header(spec: Spec, table: Table, path: Path) -> None:
    missing = [col.name for col in spec.columns if col.in_header and col.name not in table.columns]
    if not missing or not table.has_header:
        return
    expected = ",".join(col.name for col in spec.columns)
    raise rejected(
        [
            f"{path}:{table.header_line}: {name}: column missing from the header "
            f"(expected {expected})"
            for name in missing
        ]
    )


def _parse_rows(
    spec: Spec, table: Table, path: Path, zone: ZoneInfo
) -> tuple[list[Row], list[str], list[str]]:
    """The good rows, the problems (`FILE:LINE: ...`) and notes on ambiguous local times."""
    rows: list[Row] = []
    problems: list[str] = []
    notes: list[str] = []
    width = len(table.columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AmbiguousTimeWarning)
        for raw in table.rows:
            if raw.field_count > width:
                problems.append(
                    f"{path}:{raw.line}: row has {raw.field_count} fields, header {width}"
                )
                continue
            values, bad, noted = _parse_row(spec, raw, zone, caught)
            bad += _row_rules(spec.kind, values)
            problems.extend(f"{path}:{raw.line}: {name}: {what}" for name, what in bad)
            notes.extend(f"{path}:{raw.line}: {name}: {what}" for name, what in noted)
            if not bad:
                rows.append(Row(line=raw.line, values=values))
    return rows, problems, notes


def _listed(notes: list[str]) -> list[str]:
    """The first few notes, and how many more there are, so a big file stays readable."""
    more = len(notes) - MAX_NOTES
    return notes[:MAX_NOTES] + ([f"... and {more} more ambiguous local times"] if more > 0 else [])


def _parse_row(
    spec: Spec, raw: RawRow, zone: ZoneInfo, caught: list[warnings.WarningMessage]
) -> tuple[dict[str, Any], list[Any], list[tuple[str, str]]]:
    """The row's values, its bad columns, and the warnings (into `caught`) of each column."""
    values: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    noted: list[tuple[str, str]] = []
    for column in spec.columns:
        try:
            values[column.name] = _parse_value(column, raw, zone)
        except ValueError as exc:
            bad.append((column.name, str(exc)))
        noted.extend((column.name, str(warning.message)) for warning in caught)
        caught.clear()
    return values, bad, noted


def _parse_value(column: Column, raw: RawRow, zone: ZoneInfo) -> Any:
    if column.name not in raw.values and column.in_header and raw.field_count >= 0:
        raise ValueError("missing (the row has fewer fields than the header)")
    text = raw.values.get(column.name, "")
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    if len(text) > column.max_len:
        raise ValueError(f"too long ({len(text)} characters; at most {column.max_len})")
    if column.required and not text.strip():
        raise ValueError("missing value")
    return column.parse(text, zone)


def _row_rules(kind: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules across columns of one row: time spans must run forwards."""
    if kind == "attendance" and _both(values, "arrived_at", "left_at"):
        backwards = values["left_at"] < values["arrived_at"]
        return [("left_at", f"{_iso(values['left_at'])} is before arrived_at")] if backwards else []
    if kind == "assignments" and _both(values, "issued_at", "returned_at"):
        backwards = values["returned_at"] <= values["issued_at"]
        message = f"{_iso(values['returned_at'])} is not after issued_at"
        return [("returned_at", message)] if backwards else []
    return []


def _both(values: dict[str, Any], first: str, second: str) -> bool:
    return values.get(first) is not None and values.get(second) is not None


def _iso(moment: datetime | None) -> str:
    return iso_z(moment) or "never"


def _duplicate_keys(spec: Spec, rows: list[Row], path: Path) -> list[str]:
    first_line: dict[tuple[Any, ...], int] = {}
    problems: list[str] = []
    for row in rows:
        key = row.key(spec)
        if key in first_line:
            pairs = zip(spec.key, key, strict=True)
            shown = ", ".join(f"{name} {_shown(value)}" for name, value in pairs)
            problems.append(
                f"{path}:{row.line}: {spec.key[0]}: duplicate {shown} "
                f"(first on line {first_line[key]})"
            )
        else:
            first_line[key] = row.line
    return problems


def _shown(value: Any) -> str:
    return _iso(value) if isinstance(value, datetime) else str(value)


def _stored_conflicts(spec: Spec, rows: list[Row], path: Path, *, session: Session) -> list[str]:
    if spec.kind == "attendance":
        return _unknown_incidents(rows, path, session=session)
    if spec.kind == "assignments":
        return _overlapping_assignments(rows, path, session=session)
    if spec.kind == "incidents":
        return _unknown_priorities(rows, path)
    return []


def _unknown_priorities(rows: list[Row], path: Path) -> list[str]:
    """A priority the standing policy sets no target for is a typo or a foreign scheme."""
    known = load_policy().priorities
    listed = ", ".join(known)
    return [
        f"{path}:{row.line}: priority: unknown priority {row.values['priority']} "
        f"(the policy sets targets for {listed}; leave empty for the default)"
        for row in rows
        if row.values["priority"] and row.values["priority"] not in known
    ]


def _unknown_incidents(rows: list[Row], path: Path, *, session: Session) -> list[str]:
    known = set(session.scalars(select(col(Incident.incident_ref))))
    return [
        f"{path}:{row.line}: incident_ref: unknown incident {row.values['incident_ref']} "
        "(import incidents first)"
        for row in rows
        if row.values["incident_ref"] not in known
    ]


@dataclass(frozen=True)
class Span:
    issued: datetime
    returned: datetime | None
    officer: str
    line: int | None  # None for an assignment already stored


def _overlapping_assignments(rows: list[Row], path: Path, *, session: Session) -> list[str]:
    """One camera cannot be worn by two officers at once, in the file or with the catalogue."""
    replaced = {(row.values["device_serial"], row.values["issued_at"]) for row in rows}
    spans: dict[str, list[Span]] = defaultdict(list)
    for stored in session.scalars(select(Assignment)):
        if (stored.device_serial, stored.issued_at) not in replaced:
            spans[stored.device_serial].append(
                Span(stored.issued_at, stored.returned_at, stored.officer_id, None)
            )
    for row in rows:
        v = row.values
        spans[v["device_serial"]].append(
            Span(v["issued_at"], v["returned_at"], v["officer_id"], row.line)
        )
    return [
        problem for serial, items in spans.items() for problem in _overlaps(serial, items, path)
    ]


def _overlaps(serial: str, spans: list[Span], path: Path) -> list[str]:
    problems: list[str] = []
    latest: Span | None = None  # the span seen so far that ends last
    for span in sorted(spans, key=lambda item: item.issued):
        if latest is not None and span.issued.timestamp() < _end(latest):
            from_file = span.line is not None or latest.line is not None
            problems.extend([_overlap_problem(serial, span, latest, path)] if from_file else [])
        if latest is None or _end(span) > _end(latest):
            latest = span
    return problems


def _end(span: Span) -> float:
    return span.returned.timestamp() if span.returned is not None else float("inf")


def _overlap_problem(serial: str, span: Span, other: Span, path: Path) -> str:
    if span.line is None:  # a stored assignment starts inside the file's row
        span, other = other, span
    where = f"line {other.line}" if other.line is not None else "already imported"
    return (
        f"{path}:{span.line}: issued_at: camera {serial} is already assigned to "
        f"{other.officer} from {_iso(other.issued)} until {_iso(other.returned)} ({where})"
    )


def _upsert(spec: Spec, rows: list[Row], *, session: Session) -> tuple[int, int]:
    """Inserts new keys and updates existing ones in bulk; returns (inserted, updated)."""
    existing = _existing_keys(spec, session=session)
    new = [row.values for row in rows if row.key(spec) not in existing]
    changed = [_with_primary_key(spec, row, existing) for row in rows if row.key(spec) in existing]
    if new:
        session.execute(insert(spec.model), new)
    if changed:
        session.execute(update(spec.model), changed)
    return len(new), len(changed)


def _existing_keys(spec: Spec, *, session: Session) -> dict[tuple[Any, ...], Any]:
    """Natural key -> primary key of every stored row of this kind."""
    table = spec.model.__table__  # type: ignore[attr-defined]
    primary = next(iter(table.primary_key.columns))
    columns = [table.c[name] for name in spec.key]
    result = session.execute(select(primary, *columns))
    return {tuple(found[1:]): found[0] for found in result}


def _with_primary_key(spec: Spec, row: Row, existing: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    table = spec.model.__table__  # type: ignore[attr-defined]
    primary = next(iter(table.primary_key.columns)).name
    return {**row.values, primary: existing[row.key(spec)]}


def _unknown_officers(spec: Spec, rows: list[Row], *, session: Session) -> list[str]:
    """Rows naming officers not imported yet are allowed, but the inspector should know."""
    if spec.kind not in ("assignments", "attendance"):
        return []
    known = set(session.scalars(select(col(Officer.officer_id))))
    unknown = sorted({row.values["officer_id"] for row in rows} - known)
    if not unknown:
        return []
    shown = ", ".join(unknown[:10]) + (
        f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    )
    return [f"{len(unknown)} officer(s) not in the officers list yet: {shown}"]


def _file_digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def import_details(result: ImportResult, path: Path) -> dict[str, object]:
    """What the `import` audit event records about a file taken in."""
    return {
        "kind": result.kind,
        "file": str(path),
        "sha256": _file_digest(path),
        "rows": result.rows,
        "inserted": result.inserted,
        "updated": result.updated,
        "links_added": result.links.added,
        "links_removed": result.links.removed,
    }

"""Whose camera, which officer, and when: each value with the source it came from.

Precedence is sidecar JSON, then container tags, then the file name, then (for the
start time only, and marked low confidence) the file's modification time. Courts ask
where a time came from, so the source of every value is kept, not only the value.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bwv.core.timeutil import parse_time
from ingest.config import IngestConfig

SIDECAR, TAG, FILE_NAME, FILE_TIME = "sidecar", "container_tag", "file_name", "file_time"
# No body-worn camera recorded before this, and none records the future (a day's slack
# for clocks set to the wrong zone): a time outside is a broken clock or a hostile file.
EARLIEST_RECORDING = datetime(1990, 1, 1, tzinfo=UTC)
CLOCK_SLACK = timedelta(days=1)
# A sidecar is a few hundred bytes; reading more would let one file exhaust memory.
SIDECAR_MAX_BYTES = 1024 * 1024
TEXT_FIELDS = ("device_serial", "officer_id")
TEXT_MAX_CHARS = 200
COORDINATES = {"latitude": 90.0, "longitude": 180.0}


@dataclass(frozen=True)
class FieldValue:
    value: str
    source: str
    confidence: str = "high"


@dataclass(frozen=True)
class Provenance:
    """Resolved identity and time of a recording, and the origin of each value."""

    fields: dict[str, FieldValue]
    warnings: tuple[str, ...] = ()

    def text(self, name: str) -> str | None:
        found = self.fields.get(name)
        return found.value if found else None

    @property
    def started_at(self) -> datetime | None:
        found = self.fields.get("started_at")
        return parse_time(found.value) if found else None

    @property
    def time_confidence(self) -> str | None:
        found = self.fields.get("started_at")
        return found.confidence if found else None

    def number(self, name: str) -> float | None:
        found = self.fields.get(name)
        return float(found.value) if found else None


def resolve(path: Path, tags: dict[str, str], config: IngestConfig) -> Provenance:
    """Merges every source for `path`, highest precedence first; never raises.

    Everything here comes from the file (its sidecar, tags and name), so a hostile value
    must cost that value, with a warning, and never the file or the batch.
    """
    sidecar, warnings = read_sidecar(path)
    candidates = [
        (SIDECAR, sidecar),
        (TAG, _guarded(lambda: from_tags(tags, config), "container tags", warnings)),
        (FILE_NAME, _guarded(lambda: from_file_name(path, config), "file name", warnings)),
    ]
    fields: dict[str, FieldValue] = {}
    for source, values in candidates:
        for name, value in values.items():
            fields.setdefault(name, FieldValue(value, source))
    if "started_at" not in fields:
        file_time = _file_time(path)
        if file_time is not None:
            fields["started_at"] = FieldValue(file_time, FILE_TIME, "low")
    return Provenance(fields, tuple(warnings))


def _guarded(read: Any, what: str, warnings: list[str]) -> dict[str, str]:
    try:
        values: dict[str, str] = read()
    except Exception as exc:  # a hostile tag or name costs its values, never the file
        warnings.append(f"{what} ignored: {type(exc).__name__}: {exc}")
        return {}
    return values


def read_sidecar(path: Path) -> tuple[dict[str, str], list[str]]:
    """The same-stem `.json` sidecar's valid known keys, and a warning for each problem.

    A sidecar that cannot be read at all is one warning; a bad field is a warning of its
    own while the sidecar's good fields are kept.
    """
    try:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            return {}, []
        data = _load_sidecar(sidecar)
    except (OSError, ValueError, RecursionError) as exc:
        return {}, [f"sidecar {_sidecar_name(path)} ignored: {_reason(exc)}"]
    return sidecar_values(data, _sidecar_name(path))


def _sidecar_name(path: Path) -> str:
    return path_text(Path(path.stem + ".json"))


def _load_sidecar(sidecar: Path) -> dict[str, Any]:
    from bwv.core.store import open_regular  # never blocks on a FIFO named like a sidecar

    with open_regular(sidecar) as handle:
        raw = handle.read(SIDECAR_MAX_BYTES + 1)
    if len(raw) > SIDECAR_MAX_BYTES:
        raise ValueError(f"larger than {SIDECAR_MAX_BYTES} bytes")
    data = json.loads(raw.decode("utf-8-sig"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def sidecar_values(data: dict[str, Any], name: str) -> tuple[dict[str, str], list[str]]:
    """Each known key checked on its own: the valid ones, and a warning per rejected one."""
    checks = {
        **{key: _text_value for key in TEXT_FIELDS},
        "started_at": _time_value,
        **{key: _coordinate(limit) for key, limit in COORDINATES.items()},
    }
    values: dict[str, str] = {}
    warnings: list[str] = []
    for key, check in checks.items():
        if data.get(key) is None:
            continue
        try:
            value = check(data[key])
        except (ValueError, TypeError, OverflowError) as exc:
            warnings.append(f"sidecar {name}: {key} ignored: {exc}")
            continue
        if value:
            values[key] = value
    return values, warnings


def _text_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected text, got {_kind(value)}")
    text = str(value).strip()
    if len(text) > TEXT_MAX_CHARS:
        raise ValueError(f"longer than {TEXT_MAX_CHARS} characters")
    if any(not ch.isprintable() for ch in text):
        raise ValueError("contains control characters")
    return text


def _time_value(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 time, got {_kind(value)}")
    if not value.strip():
        return ""
    return _iso(recording_time(value))


def _coordinate(limit: float) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"expected a number, got {_kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {value!r}")
        if not -limit <= number <= limit:
            raise ValueError(f"{number:g} is outside -{limit:g}..{limit:g}")
        return str(number)

    return check


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "true/false", float: "a number"}
    return names.get(type(value), type(value).__name__)


def recording_time(text: str, zone: Any = None) -> datetime:
    """A recording's start parsed to UTC; ValueError for a time no camera can have recorded
    (parse_time refuses the calendar's edges, this the times before cameras or to come)."""
    return plausible_time(parse_time(text, zone))


def plausible_time(moment: datetime) -> datetime:
    """`moment` itself, or ValueError when it is before 1990 or in the future."""
    latest = datetime.now(UTC) + CLOCK_SLACK
    if not EARLIEST_RECORDING <= moment <= latest:
        raise ValueError(
            f"impossible recording time {moment.isoformat()}: "
            f"not between {EARLIEST_RECORDING.date()} and now"
        )
    return moment


def from_tags(tags: dict[str, str], config: IngestConfig) -> dict[str, str]:
    lowered = {k.lower().split(":", 1)[-1]: v for k, v in tags.items()}
    values: dict[str, str] = {}
    for name in config.serial_tags:
        if lowered.get(name.lower(), "").strip():
            values["device_serial"] = lowered[name.lower()].strip()
            break
    creation = lowered.get("creation_time", "").strip()
    if creation and not creation.startswith("1970-01-01"):
        with suppress(ValueError):  # an unreadable tag is no evidence of time
            values["started_at"] = _iso(recording_time(creation, zone=UTC))
    return values


def from_file_name(path: Path, config: IngestConfig) -> dict[str, str]:
    """The first configured pattern that matches the name (or `folder/name`), as fields."""
    tail = f"{path.parent.name}/{path.name}"
    for pattern in config.filename_patterns:
        match = pattern.search(path.name) or pattern.search(tail)
        if match:
            return _groups_to_fields(match)
    return {}


def _groups_to_fields(match: re.Match[str]) -> dict[str, str]:
    groups = {k: v for k, v in match.groupdict().items() if v}
    values: dict[str, str] = {}
    if "serial" in groups:
        values["device_serial"] = groups["serial"]
    if "officer" in groups:
        values["officer_id"] = groups["officer"]
    if "start" in groups:
        start = _compact_time(groups["start"])
        if start:
            values["started_at"] = _iso(start)
    return values


def _compact_time(text: str) -> datetime | None:
    """`20240116_072330`, `20240116T072330Z` and the like, read as UTC."""
    digits = re.sub(r"\D", "", text)
    if len(digits) != 14:
        return None
    try:
        return plausible_time(datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC))
    except ValueError:
        return None


def _file_time(path: Path) -> str | None:
    """The modification time, or None when it cannot be read or no camera could have it."""
    try:
        return _iso(plausible_time(datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)))
    except (OSError, ValueError, OverflowError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def path_text(path: Path) -> str:
    """The path as the catalogue stores it: exact when it is valid UTF-8 (so verify can
    find it again), else with the undecodable bytes written as `\\xNN`."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
    return text


def name_problem(path: Path) -> str | None:
    """Why a file cannot be catalogued under its own name, or None."""
    if path_text(path) != str(path):
        return (
            f"file name is not valid UTF-8 ({path_text(path)}): rename it and run "
            "`bwv ingest --retry-failed` on it"
        )
    return None

"""Whose camera, which officer, and when: each value with the source it came from.

Precedence is sidecar JSON, then container tags, then the file name, then (for the
start time only, and marked low confidence) the file's modification time. Courts ask
where a time came from, so the source of every value is kept, not only the value.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bwv.timeutil import parse_time
from ingest.config import IngestConfig

SIDECAR, TAG, FILE_NAME, FILE_TIME = "sidecar", "container_tag", "file_name", "file_time"


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

    def number(self, name: str) -> float | None:
        found = self.fields.get(name)
        return float(found.value) if found else None


def resolve(path: Path, tags: dict[str, str], config: IngestConfig) -> Provenance:
    """Merges every source for `path`, highest precedence first."""
    sidecar, warnings = read_sidecar(path)
    candidates = [
        (SIDECAR, sidecar),
        (TAG, from_tags(tags, config)),
        (FILE_NAME, from_file_name(path, config)),
    ]
    fields: dict[str, FieldValue] = {}
    for source, values in candidates:
        for name, value in values.items():
            fields.setdefault(name, FieldValue(value, source))
    if "started_at" not in fields:
        fields["started_at"] = FieldValue(_file_time(path), FILE_TIME, "low")
    return Provenance(fields, tuple(warnings))


def read_sidecar(path: Path) -> tuple[dict[str, str], list[str]]:
    """The same-stem `.json` sidecar's known keys; a broken sidecar is a warning, not a failure."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}, []
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8-sig"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return _sidecar_values(data), []
    except (OSError, ValueError) as exc:
        return {}, [f"sidecar {sidecar.name} ignored: {exc}"]
    except RecursionError:  # nested deeper than the decoder can go: not a sidecar
        return {}, [f"sidecar {sidecar.name} ignored: JSON nested too deeply"]


def _sidecar_values(data: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in ("device_serial", "officer_id"):
        if data.get(key):
            values[key] = str(data[key]).strip()
    if data.get("started_at"):
        values["started_at"] = _iso(parse_time(str(data["started_at"])))
    for key in ("latitude", "longitude"):
        if data.get(key) is not None:
            values[key] = str(float(data[key]))
    return values


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
            values["started_at"] = _iso(parse_time(creation, zone=UTC))
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
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _file_time(path: Path) -> str:
    return _iso(datetime.fromtimestamp(path.stat().st_mtime, tz=UTC))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()

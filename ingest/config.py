"""Ingest settings an evidence unit may need to change for its own cameras.

Defaults cover the common `{serial}_{YYYYMMDD}_{HHMMSS}` dock export and the Axis
body-worn layout. A TOML file named by `BWV_CONFIG` (section `[ingest]`) can replace the
file-name patterns, the container tags read for the serial, and the audio floor.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bwv.core.errors import BwvError

MEDIA_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".mts", ".ts", ".3gp"})

DEFAULT_FILENAME_PATTERNS = (
    # X60390007_20240116_072330.mp4: serial, then the start in UTC.
    r"(?:^|/)(?P<serial>[A-Za-z0-9-]+)_(?P<start>\d{8}_\d{6})\.[A-Za-z0-9]+$",
    # Axis: <UserID>_<BWCSerial>_<TriggerOnTime>/<StartTime>_<RecordingID>.mp4
    r"(?P<officer>[^_/]+)_(?P<serial>[^_/]+)_(?P<trigger>\d{8}T?\d{6}Z?)/"
    r"(?P<start>\d{8}T?\d{6}Z?)_(?P<recording>[^_/.]+)\.[A-Za-z0-9]+$",
)
DEFAULT_SERIAL_TAGS = ("device_serial", "serial", "serial_number", "camera_serial", "device_id")


@dataclass(frozen=True)
class IngestConfig:
    filename_patterns: tuple[re.Pattern[str], ...] = field(
        default_factory=lambda: tuple(re.compile(p) for p in DEFAULT_FILENAME_PATTERNS)
    )
    serial_tags: tuple[str, ...] = DEFAULT_SERIAL_TAGS
    silence_floor_dbfs: float = -60.0
    frame_interval_s: float = 2.0
    file_timeout_s: float = 1800.0


def load_config(path: str | None = None) -> IngestConfig:
    """Defaults, overridden by the `[ingest]` table of the TOML file `BWV_CONFIG` names."""
    source = path or os.environ.get("BWV_CONFIG")
    if not source:
        return IngestConfig()
    try:
        table = tomllib.loads(Path(source).read_text(encoding="utf-8")).get("ingest", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BwvError(f"cannot read config {source}: {exc}") from exc
    return _from_table(table, source)


def _from_table(table: dict[str, object], source: str) -> IngestConfig:
    defaults = IngestConfig()
    try:
        patterns = tuple(
            re.compile(str(p))
            for p in _as_list(table.get("filename_patterns", DEFAULT_FILENAME_PATTERNS))
        )
        return IngestConfig(
            filename_patterns=patterns,
            serial_tags=tuple(
                str(t) for t in _as_list(table.get("serial_tags", DEFAULT_SERIAL_TAGS))
            ),
            silence_floor_dbfs=float(table.get("silence_floor_dbfs", defaults.silence_floor_dbfs)),  # type: ignore[arg-type]
            frame_interval_s=float(table.get("frame_interval_s", defaults.frame_interval_s)),  # type: ignore[arg-type]
            file_timeout_s=float(table.get("file_timeout_s", defaults.file_timeout_s)),  # type: ignore[arg-type]
        )
    except (re.error, TypeError, ValueError) as exc:
        raise BwvError(f"bad [ingest] setting in {source}: {exc}") from exc


def _as_list(value: object) -> list[object]:
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"expected a list, got {value!r}")

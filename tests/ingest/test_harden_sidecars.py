"""Hostile sidecars: a bad value costs only that value (with a warning), never the batch."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from bwv.cli import main
from bwv.core.db import database_url, get_engine
from bwv.core.models import Clip
from ingest.config import IngestConfig
from ingest.provenance import read_sidecar, resolve

ROOT = Path(__file__).resolve().parents[2]
DAMAGED = ROOT / "sample_media" / "X60390012_20240518_140000.mp4"
GOOD = ROOT / "sample_media" / "X60390009_20240220_101500.mkv"

HOSTILE = [
    '{"started_at": "0001-01-01T00:00:00+01:00"}',
    '{"started_at": "9999-12-31T23:59:59"}',
    '{"latitude": [1, 2]}',
    "[" * 100_000 + "]" * 100_000,
    '{"started_at": "9999-12-31T23:59:59-01:00", "longitude": 1e400}',
]


def _clips(db: Path) -> dict[str, Clip]:
    with Session(get_engine(database_url(str(db)))) as session:
        return {c.file_name: c for c in session.exec(select(Clip)).all()}


@pytest.mark.parametrize("sidecar", HOSTILE, ids=range(len(HOSTILE)))
def test_one_hostile_sidecar_fails_only_its_own_file(tmp_path: Path, sidecar: str) -> None:
    media = tmp_path / "m"
    media.mkdir()
    shutil.copy(DAMAGED, media / "a_bad.mp4")
    (media / "a_bad.json").write_text(sidecar)
    shutil.copy(GOOD, media / "b_good.mkv")
    db = tmp_path / "c.db"
    result = CliRunner().invoke(
        main, ["--db", str(db), "ingest", "--no-transcribe", "--workers", "1", str(media)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Ingested 1, skipped 0, failed 1 "), result.output
    assert f"failed: {media / 'a_bad.mp4'}: not readable as media" in result.output
    assert f"warning: {media / 'a_bad.mp4'}: sidecar a_bad.json" in result.output
    clips = _clips(db)
    assert clips["b_good.mkv"].status == "ingested"
    assert clips["a_bad.mp4"].status == "failed" and clips["a_bad.mp4"].failure_reason


def _sidecar(tmp_path: Path, body: object) -> Path:
    clip = tmp_path / "X60390007_20240116_072330.mp4"
    clip.write_bytes(b"")
    text = body if isinstance(body, str) else json.dumps(body)
    clip.with_suffix(".json").write_text(text)
    return clip


def test_good_fields_are_kept_beside_a_bad_one_with_a_warning_each(tmp_path: Path) -> None:
    clip = _sidecar(
        tmp_path,
        {
            "device_serial": "S1",
            "officer_id": {"nested": 1},
            "started_at": "2024-06-10T15:00:00+01:00",
            "latitude": 91,
            "longitude": -0.1276,
        },
    )
    values, warnings = read_sidecar(clip)
    assert values == {
        "device_serial": "S1",
        "started_at": "2024-06-10T14:00:00+00:00",
        "longitude": "-0.1276",
    }
    name = "sidecar X60390007_20240116_072330.json"
    assert warnings == [
        f"{name}: officer_id ignored: expected text, got an object",
        f"{name}: latitude ignored: 91 is outside -90..90",
    ]
    provenance = resolve(clip, {}, IngestConfig())
    assert provenance.fields["device_serial"].source == "sidecar"
    assert provenance.fields["started_at"].source == "sidecar"
    assert provenance.warnings == tuple(warnings)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"latitude": NaN}', "latitude ignored: not a finite number: nan"),
        ('{"longitude": Infinity}', "longitude ignored: not a finite number: inf"),
        ('{"longitude": -1e400}', "longitude ignored: not a finite number: -inf"),
        ('{"longitude": 180.5}', "longitude ignored: 180.5 is outside -180..180"),
        ('{"latitude": "north"}', "latitude ignored: could not convert string to float"),
        ('{"latitude": true}', "latitude ignored: expected a number, got true/false"),
        ('{"device_serial": ["X"]}', "device_serial ignored: expected text, got a list"),
        ('{"device_serial": "X\\nY"}', "device_serial ignored: contains control characters"),
        ('{"officer_id": "\\ud800"}', "officer_id ignored: contains control characters"),
        ('{"started_at": 1718028000}', "started_at ignored: expected an ISO 8601 time, got int"),
        ('{"started_at": "yesterday"}', "started_at ignored: not an ISO 8601 time"),
        ('{"started_at": "1900-01-01T00:00:00Z"}', "started_at ignored: impossible recording"),
        ('{"started_at": "2999-01-01T00:00:00Z"}', "started_at ignored: impossible recording"),
        (
            '{"started_at": "0001-01-01T00:00:00+01:00"}',
            "is out of range; give a time from year 1900",
        ),
    ],
)
def test_each_bad_value_is_rejected_with_its_reason(tmp_path: Path, body: str, reason: str) -> None:
    clip = _sidecar(tmp_path, body)
    values, warnings = read_sidecar(clip)
    assert values == {}
    assert len(warnings) == 1 and reason in warnings[0], warnings
    provenance = resolve(clip, {}, IngestConfig())
    assert provenance.fields["started_at"].source == "file_name"


def test_a_sidecar_that_is_a_fifo_or_huge_is_a_warning_and_never_blocks(tmp_path: Path) -> None:
    clip = tmp_path / "X60390007_20240116_072330.mp4"
    clip.write_bytes(b"")
    os.mkfifo(clip.with_suffix(".json"))
    assert read_sidecar(clip) == ({}, [])  # not a regular file: no sidecar, never opened
    clip.with_suffix(".json").unlink()
    clip.with_suffix(".json").write_text('{"officer_id": "O1", "pad": "' + "x" * 2**21 + '"}')
    values, warnings = read_sidecar(clip)
    assert values == {} and "larger than 1048576 bytes" in warnings[0]


def test_an_impossible_file_time_gives_no_start_rather_than_a_wrong_one(tmp_path: Path) -> None:
    clip = tmp_path / "holiday.mkv"
    shutil.copy(GOOD, clip)
    os.utime(clip, (0, -2_208_988_800))  # 1900-01-01: no camera recorded then
    assert "started_at" not in resolve(clip, {}, IngestConfig()).fields
    db = tmp_path / "c.db"
    result = CliRunner().invoke(main, ["--db", str(db), "ingest", "--no-transcribe", str(clip)])
    assert result.exit_code == 0, result.output
    row = _clips(db)["holiday.mkv"]
    assert (row.status, row.started_at, row.time_confidence) == ("ingested", None, None)

"""The pure pieces of ingest: window packing, file-name provenance, formats, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ingest.config import IngestConfig, load_config
from ingest.encoder import SAMPLE_RATE, Piece, frame_slice, pack_windows
from ingest.provenance import from_file_name, from_tags, read_sidecar, resolve
from ingest.transcript_formats import clock


def test_pieces_pack_into_windows_of_at_most_30_seconds():
    audio = np.arange(80 * SAMPLE_RATE, dtype=np.float32)
    windows = pack_windows(audio, [Piece(0, 12), Piece(14, 30), Piece(31, 40), Piece(41, 80)])
    assert [round(w.duration_s, 3) for w in windows] == [28.0, 9.0, 30.0, 9.0]
    first = windows[0]
    assert first.audio[12 * SAMPLE_RATE] == 14 * SAMPLE_RATE  # second piece follows the first
    assert first.to_source(13.0) == 15.0
    assert windows[2].to_source(0.5) == 41.5 and windows[3].to_source(1.0) == 72.0


def test_frame_slice_is_never_empty_and_stays_in_the_window():
    assert frame_slice(1.0, 2.0) == slice(50, 100)
    assert frame_slice(29.99, 29.99) == slice(1499, 1500)
    assert frame_slice(-1.0, 0.0) == slice(0, 1)


def test_file_name_patterns():
    config = IngestConfig()
    assert from_file_name(Path("/x/X60390007_20240116_072330.mp4"), config) == {
        "device_serial": "X60390007",
        "started_at": "2024-01-16T07:23:30+00:00",
    }
    axis = Path("/e/PC12_B8A4_20240702T083000Z/20240702T083005Z_0007.mp4")
    assert from_file_name(axis, config) == {
        "officer_id": "PC12",
        "device_serial": "B8A4",
        "started_at": "2024-07-02T08:30:05+00:00",
    }
    assert from_file_name(Path("/x/holiday.mp4"), config) == {}
    assert from_file_name(Path("/x/X1_20241399_250000.mp4"), config) == {"device_serial": "X1"}


def test_container_tags_give_serial_and_time_but_not_epoch_zero():
    config = IngestConfig()
    tags = {"creation_time": "2024-01-16T09:30:00.000000Z", "device_serial": "X8"}
    assert from_tags(tags, config) == {
        "device_serial": "X8",
        "started_at": "2024-01-16T09:30:00+00:00",
    }
    assert from_tags({"creation_time": "1970-01-01T00:00:00Z"}, config) == {}


def test_sidecar_wins_and_a_broken_sidecar_is_only_a_warning(tmp_path):
    clip = tmp_path / "X60390007_20240116_072330.mp4"
    clip.write_bytes(b"")
    clip.with_suffix(".json").write_text(
        json.dumps({"device_serial": "S1", "started_at": "2024-06-10T15:00:00+01:00"})
    )
    provenance = resolve(clip, {}, IngestConfig())
    assert provenance.fields["device_serial"].value == "S1"
    assert provenance.fields["device_serial"].source == "sidecar"
    assert provenance.text("started_at") == "2024-06-10T14:00:00+00:00"
    clip.with_suffix(".json").write_text("{not json")
    values, warnings = read_sidecar(clip)
    assert values == {} and warnings[0].startswith("sidecar X60390007_20240116_072330.json ignored")
    assert resolve(clip, {}, IngestConfig()).fields["device_serial"].source == "file_name"


def test_file_time_is_the_low_confidence_last_resort(tmp_path):
    clip = tmp_path / "holiday.mp4"
    clip.write_bytes(b"")
    started = resolve(clip, {}, IngestConfig()).fields["started_at"]
    assert (started.source, started.confidence) == ("file_time", "low")


def test_config_file_replaces_patterns(tmp_path, monkeypatch):
    config = tmp_path / "bwv.toml"
    config.write_text(
        '[ingest]\nfilename_patterns = ["^CAM(?P<serial>\\\\d+)-"]\nsilence_floor_dbfs = -50\n'
    )
    loaded = load_config(str(config))
    assert loaded.silence_floor_dbfs == -50.0
    assert from_file_name(Path("/x/CAM42-anything.mp4"), loaded) == {"device_serial": "42"}


def test_clock_formats():
    assert clock(3723.0456) == "01:02:03.046"
    assert clock(0.5, ",") == "00:00:00,500"


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from click.testing import CliRunner; from bwv.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = ('av', 'cv2', 'faster_whisper', 'ctranslate2'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_catalogue_made_before_speech_seconds_is_upgraded(tmp_path):
    import sqlite3

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from bwv.core.db import HEAD_REVISION, MIGRATIONS, database_url, get_engine

    url = database_url(str(tmp_path / "old.db"))
    with create_engine(url).begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    get_engine(url)
    with sqlite3.connect(tmp_path / "old.db") as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(transcriptsegment)")]
        version = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert "speech_s" in columns and version == HEAD_REVISION

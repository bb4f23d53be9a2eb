"""A `--model` folder that holds no usable Whisper model: one clear line before any file.

The check runs in the parent before workers start, so a broken model never surfaces as
a worker's traceback or a broken process pool, and no clip is recorded as failed for it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main


def junk_model(tmp_path: Path, content: bytes | None) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    if content is not None:
        (folder / "model.bin").write_bytes(content)
    return folder


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    "content", [None, b"", os.urandom(4096)], ids=["empty-folder", "empty-bin", "garbage-bin"]
)
def test_junk_model_folder_is_one_clear_line_before_any_file(
    tmp_path: Path, sample_media: Path, workers: str, content: bytes | None
) -> None:
    folder = junk_model(tmp_path, content)
    db = tmp_path / "bwv.db"
    result = CliRunner().invoke(
        main,
        [
            "--db",
            str(db),
            "ingest",
            "--workers",
            workers,
            "--model",
            str(folder),
            str(sample_media),
        ],
    )
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"Error: model '{folder}' ")
    assert "Traceback" not in result.output and "Ingested" not in result.output
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT count(*) FROM clip").fetchone() == (0,)

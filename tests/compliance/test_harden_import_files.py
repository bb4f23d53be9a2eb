"""Import files that are not files, are huge or are nested beyond reason: one clear line.

`bwv import` must end promptly with `Error: ...` and exit 2, writing nothing, whatever it
is pointed at; the same goes for an evidence sidecar, which is only ever a warning.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bwv.cli import main
from compliance.tabular import MAX_IMPORT_BYTES
from ingest.provenance import read_sidecar

DEPTH = 100_000


def run(tmp_path: Path, path: Path | str) -> Result:
    return CliRunner().invoke(
        main, ["--db", str(tmp_path / "bwv.db"), "import", "officers", str(path)]
    )


def assert_one_error(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {message}\n"


@pytest.mark.parametrize("outer", ["", "["], ids=["array-of-arrays", "item-nested"])
def test_deeply_nested_json_is_one_clear_line(tmp_path: Path, outer: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(outer + "[" * DEPTH + "]" * DEPTH + ("]" if outer else ""), encoding="utf-8")
    assert_one_error(
        run(tmp_path, path), f"{path}:1: JSON nested too deeply; expected flat objects"
    )


def test_device_is_refused_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(tmp_path, "/dev/zero")
    assert_one_error(
        result, "/dev/zero: not a regular file (a device, pipe or socket); give a file"
    )
    assert time.monotonic() - started < 10


def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "officers.csv"
    os.mkfifo(pipe)
    assert_one_error(
        run(tmp_path, pipe), f"{pipe}: not a regular file (a device, pipe or socket); give a file"
    )


def test_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "officers.csv"
    with path.open("wb") as handle:  # sparse: a huge file that costs no disk
        handle.write(b"officer_id,name,team,station\n")
        handle.truncate(MAX_IMPORT_BYTES + 1)
    assert_one_error(
        run(tmp_path, path), f"{path}: larger than the import limit of 200 MB; split the file"
    )


def test_deeply_nested_sidecar_is_only_a_warning(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    clip.with_suffix(".json").write_text("[" * DEPTH + "]" * DEPTH, encoding="utf-8")
    assert read_sidecar(clip) == ({}, ["sidecar clip.json ignored: nested too deeply"])

"""A short run of bench/fuzz_ingest.py: damaged files end catalogued or failed with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_scripts import bench_module
from click.testing import CliRunner

from bwv.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Slow: hundreds of hostile files through the real pipeline.
pytestmark = pytest.mark.slow


fuzz_ingest = bench_module("fuzz_ingest")


def test_corpus_has_every_kind_of_damage(tmp_path: Path) -> None:
    corpus = fuzz_ingest.make_corpus(tmp_path, 60, seed=7)
    kinds = {d.kind for d in corpus}
    assert kinds == {*fuzz_ingest.WEIGHTS, "zero_length"}
    assert len({d.sha256 for d in corpus}) == len(corpus) == 60
    assert any(d.path.suffix == ".avi" or d.kind == "wrong_extension" for d in corpus)


def test_box_boundaries_are_found_in_a_real_mp4() -> None:
    data = (ROOT / "sample_media" / "X60390007_20240116_072330.mp4").read_bytes()
    kinds = [kind for kind, _offset, _size in fuzz_ingest.box_spans(data)]
    assert kinds[:4] == [b"ftyp", b"free", b"mdat", b"moov"]
    assert {b"stsz", b"stco", b"trak"} <= set(kinds)


def test_forty_damaged_files_all_accounted_for(tmp_path: Path) -> None:
    media_only = {
        k: w for k, w in fuzz_ingest.WEIGHTS.items() if k not in fuzz_ingest.HOSTILE_KINDS
    }  # hostile sidecars and names have their own run: tests/test_harden_fuzz.py
    report = fuzz_ingest.fuzz(
        40, seed=20240116, workers=2, file_timeout_s=20.0, deadline_s=120.0, work=tmp_path,
        weights=media_only,
    )  # fmt: skip
    assert report.files == 40
    assert report.catalogued + report.failed_with_reason == 40
    assert report.lost == [] and report.failed_without_reason == []
    assert report.crashes == [] and report.hangs == []
    assert report.leaked_temp_files == [] and report.originals_changed == []
    assert report.failed_with_reason >= 20
    assert report.seconds < 60
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "fuzz.db"), "audit", "verify"])
    assert result.exit_code == 0 and result.output.startswith("audit chain intact: ")

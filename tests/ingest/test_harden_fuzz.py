"""A short run of bench/fuzz_ingest.py on hostile sidecars and file names only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench_scripts import bench_module

ROOT = Path(__file__).resolve().parents[2]
fuzz_ingest = bench_module("fuzz_ingest")

# Slow: hostile files through the real pipeline.
pytestmark = pytest.mark.slow


def test_hostile_sidecars_and_names_are_made(tmp_path: Path) -> None:
    weights = {k: fuzz_ingest.WEIGHTS[k] for k in fuzz_ingest.HOSTILE_KINDS}
    corpus = fuzz_ingest.make_corpus(tmp_path, 40, seed=3, weights=weights)
    assert {d.kind for d in corpus} == {"zero_length", *fuzz_ingest.HOSTILE_KINDS}
    names = [os.fsencode(d.path.name) for d in corpus if d.kind == "hostile_name"]
    assert any(b"\n" in n for n in names) or any(b"\xe9" in n for n in names)
    sidecars = [d.path.with_suffix(".json") for d in corpus if d.kind == "hostile_sidecar"]
    assert len(sidecars) >= 10 and all(s.exists() or s.is_symlink() for s in sidecars)


def test_twenty_hostile_files_all_accounted_for(tmp_path: Path) -> None:
    weights = {k: fuzz_ingest.WEIGHTS[k] for k in fuzz_ingest.HOSTILE_KINDS}
    report = fuzz_ingest.fuzz(
        20, seed=11, workers=1, file_timeout_s=20.0, deadline_s=120.0, work=tmp_path,
        weights=weights,
    )  # fmt: skip
    assert report.files == 20 and report.hostile >= 15
    assert report.crashes == [] and report.hangs == [], report.crashes
    assert report.lost == [] and report.failed_without_reason == []
    assert report.accounted_percent == 100.0
    assert report.catalogued >= 10 and report.warnings >= 10
    assert report.leaked_temp_files == [] and report.originals_changed == []

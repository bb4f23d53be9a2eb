"""Fuzzing ingest with damaged recordings: every file must end catalogued or failed with a reason.

Cameras die mid-write, cards corrupt and files are renamed, so ingest meets broken
media every day; one such file must never stop a batch, hang it or lose another file.
This makes damaged variants of the sample media (truncated at random points and at MP4
box boundaries, byte bursts, zeroed ranges, wrong extensions, zero length, huge declared
box and table sizes, garbage sidecars) and hostile cases that a file brings besides its
media (sidecars with impossible times, wrong types, NaN, infinities, out-of-range
coordinates, deep nesting, FIFOs; names with control characters, invalid UTF-8, leading
dashes, 240 bytes), runs the real `bwv ingest` on them in a child
process with a private TMPDIR and an evidence store, and then accounts for every file.

    .venv/bin/python bench/fuzz_ingest.py --count 1000 --workers 2

The test suite runs the same code on about 40 files (tests/test_custody_fuzz.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # Run as a script, bench/ comes first on sys.path and bench/ingest.py would shadow
    # the `ingest` package.
    sys.path[0] = str(ROOT)
SAMPLES = ROOT / "sample_media"
MEDIA = {".mp4", ".mov", ".mkv", ".m4v"}
WRONG_EXTENSIONS = (".mkv", ".mov", ".avi", ".mp4", ".3gp", ".ts")
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta", b"dinf"}
TABLES = {b"stsz": 16, b"stco": 12, b"stts": 12, b"stsc": 12, b"ctts": 12, b"stss": 12}
HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0)


@dataclass(frozen=True)
class Damaged:
    path: Path
    kind: str
    sha256: str


@dataclass(frozen=True)
class IngestRun:
    returncode: int | None  # None: killed at the deadline (the batch hung)
    stdout: str
    stderr: str
    seconds: float


@dataclass
class FuzzReport:
    files: int
    kinds: dict[str, int]
    catalogued: int = 0
    failed_with_reason: int = 0
    rejected_with_reason: int = 0  # not catalogued, named in the summary with a reason
    warnings: int = 0  # sidecar and tag warnings printed
    lost: list[str] = field(default_factory=list)
    failed_without_reason: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    leaked_temp_files: list[str] = field(default_factory=list)
    originals_changed: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    slowest_file_s: float = 0.0

    @property
    def hostile(self) -> int:
        return sum(n for kind, n in self.kinds.items() if kind in HOSTILE_KINDS)

    @property
    def accounted_percent(self) -> float:
        done = self.catalogued + self.failed_with_reason + self.rejected_with_reason
        return 100.0 * done / max(self.files, 1)

    @property
    def ok(self) -> bool:
        problems = (self.lost, self.failed_without_reason, self.crashes, self.hangs)
        return not any([*problems, self.leaked_temp_files, self.originals_changed])


# --- damaging ---------------------------------------------------------------------------


def box_spans(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of every MP4 box, containers walked into, in file order."""
    end = len(data) if end is None else end
    spans: list[tuple[bytes, int, int]] = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1 and offset + 16 <= end:
            size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
        elif size == 0:
            size = end - offset
        if size < header:
            break
        spans.append((kind, offset, size))
        if kind in CONTAINERS:
            spans += box_spans(data, offset + header, min(offset + size, end))
        offset += size
    return spans


def truncate_random(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, len(data))]


def truncate_at_box(data: bytes, rng: random.Random) -> bytes:
    spans = box_spans(data)
    if not spans:
        return truncate_random(data, rng)
    _kind, offset, size = rng.choice(spans)
    cut = rng.choice([offset, offset + 4, offset + 8, offset + size, offset + size - 1])
    return data[: max(1, min(cut, len(data) - 1))]


def byte_bursts(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        length = rng.randint(1, min(256, len(damaged) - 1))
        at = rng.randrange(0, len(damaged) - length + 1)
        damaged[at : at + length] = rng.randbytes(length)
    return bytes(damaged)


def zeroed_range(data: bytes, rng: random.Random) -> bytes:
    length = rng.randint(1, max(1, len(data) // 4))
    at = rng.randrange(0, len(data) - length + 1)
    return data[:at] + bytes(length) + data[at + length :]


def huge_sizes(data: bytes, rng: random.Random) -> bytes:
    """A box, or a sample table's entry count, claims to be enormous."""
    spans = box_spans(data)
    if not spans:
        return byte_bursts(data, rng)
    damaged = bytearray(data)
    kind, offset, _size = rng.choice(spans)
    at = offset + TABLES[kind] if kind in TABLES and rng.random() < 0.6 else offset
    damaged[at : at + 4] = struct.pack(">I", rng.choice(HUGE))
    if rng.random() < 0.2:  # a 64-bit size far past the end of the file
        damaged[offset : offset + 4] = struct.pack(">I", 1)
        damaged[offset + 8 : offset + 16] = struct.pack(">Q", rng.choice([2**62, 2**63 - 1]))
    return bytes(damaged)


def burst_and_truncate(data: bytes, rng: random.Random) -> bytes:
    return truncate_random(byte_bursts(data, rng), rng)


DAMAGE: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncated": truncate_random,
    "truncated_at_box": truncate_at_box,
    "byte_burst": byte_bursts,
    "zeroed_range": zeroed_range,
    "huge_size": huge_sizes,
    "burst_truncated": burst_and_truncate,
    "wrong_extension": lambda data, rng: data if rng.random() < 0.5 else byte_bursts(data, rng),
    "bad_sidecar": truncate_random,
    "hostile_sidecar": lambda data, rng: still_valid(data, rng),
    "hostile_name": lambda data, rng: (
        still_valid(data, rng) if rng.random() < 0.7 else byte_bursts(data, rng)
    ),
}
WEIGHTS = {
    "truncated": 18,
    "truncated_at_box": 16,
    "byte_burst": 18,
    "zeroed_range": 12,
    "huge_size": 16,
    "burst_truncated": 6,
    "wrong_extension": 9,
    "bad_sidecar": 5,
    "hostile_sidecar": 30,
    "hostile_name": 20,
}
# Hostile cases are those a file brings besides its media: a sidecar and a name.
HOSTILE_KINDS = ("hostile_sidecar", "hostile_name")


def still_valid(data: bytes, rng: random.Random) -> bytes:
    """The recording, still readable but distinct: a random `free` box appended (MP4 and
    QuickTime skip it; Matroska readers stop at the end of their segment)."""
    payload = rng.randbytes(16)
    return data + struct.pack(">I4s", 8 + len(payload), b"free") + payload


# --- hostile sidecars and names -----------------------------------------------------------

HOSTILE_VALUES: dict[str, tuple[str, ...]] = {
    "started_at": (
        '"0001-01-01T00:00:00+01:00"', '"9999-12-31T23:59:59"', '"9999-12-31T23:59:59-14:00"',
        '"1900-01-01T00:00:00Z"', '"2999-01-01T00:00:00Z"', '"2024-02-30T10:00:00"', '""',
        '"   "', '"yesterday"', '"\\ud800"', "1718028000", "1e400", "NaN", "true", "[1, 2]",
        '{"a": 1}', '"2024-06-10T15:00:00+01:00"', '"2024-06-10T15:00:00+25:00"',
    ),
    "latitude": (
        "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "91", "-90.0000001", '"51.5"',
        '"north"', "[1, 2]", "{}", "true", "1" + "0" * 5000, "51.5072", "null",
    ),
    "device_serial": (
        '""', '"\\n"', '"X\\u0000Y"', '"\\ud800"', '"' + "x" * 5000 + '"', "12345",
        '["X"]', '{"serial": "X"}', "true", "1.5", '"X60390013"', '"\\u202eevil"',
    ),
}  # fmt: skip
HOSTILE_VALUES["longitude"] = (*HOSTILE_VALUES["latitude"], "180.5", "-181")
HOSTILE_VALUES["officer_id"] = HOSTILE_VALUES["device_serial"]
HOSTILE_FILES: tuple[bytes, ...] = (
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[]", b"42",
    b'"text"', b"", b"\xff\xfe\x00", b"\xef\xbb\xbf{}", b"null", b"{" + b" " * (2 * 2**20) + b"}",
    b'{"officer_id": "A", "officer_id": ["B"]}',
)  # fmt: skip


def hostile_sidecar(rng: random.Random) -> bytes:
    """A sidecar from hostile values (1 to 5 fields) or a hostile file as a whole."""
    if rng.random() < 0.2:
        return rng.choice(HOSTILE_FILES)
    keys = rng.sample(sorted(HOSTILE_VALUES), rng.randint(1, len(HOSTILE_VALUES)))
    body = ", ".join(f'"{k}": {rng.choice(HOSTILE_VALUES[k])}' for k in keys)
    return ("{" + body + "}").encode()


HOSTILE_NAMES: tuple[bytes, ...] = (
    b"line\nbreak", b"tab\there", b"esc\x1b[31mred", b"caf\xe9", b"\xff\xfe", b"-rf",
    b"--help", b"\xe2\x80\xaeevil4pm.", b" spaced ", b"quote'\"", b"x" * 240, b"..",
    b"\xf0\x9f\x8e\xa5clip", b"back\\slash", b"semi;colon$(id)", b"\xc3\xa9t\xc3\xa9",
)  # fmt: skip


def hostile_name(rng: random.Random) -> bytes:
    return rng.choice(HOSTILE_NAMES) + rng.choice([b"", b"_" + str(rng.randrange(10**6)).encode()])


def sample_sources(root: Path = SAMPLES) -> list[Path]:
    """The sample recordings worth damaging (at least 1 KiB, so every kind of damage fits)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in MEDIA and p.is_file() and p.stat().st_size >= 1024
    )


def make_corpus(
    out: Path,
    count: int,
    seed: int,
    sources: list[Path] | None = None,
    weights: dict[str, int] | None = None,
) -> list[Damaged]:
    """`count` distinct damaged files (one zero-length among them), each in its own folder."""
    rng = random.Random(seed)
    originals = [(p, p.read_bytes()) for p in (sources or sample_sources())]
    corpus = [_write(out, 0, originals[0][0], b"", "zero_length", rng)]
    seen = {corpus[0].sha256}
    attempts = 0
    while len(corpus) < count and attempts < count * 20:
        attempts += 1
        table = weights or WEIGHTS
        kind = rng.choices(list(table), weights=list(table.values()))[0]
        source, data = rng.choice(originals)
        damaged = DAMAGE[kind](data, rng)
        digest = hashlib.sha256(damaged).hexdigest()
        if digest not in seen:
            seen.add(digest)
            corpus.append(_write(out, len(corpus), source, damaged, kind, rng))
    return corpus


def _write(
    out: Path, index: int, source: Path, data: bytes, kind: str, rng: random.Random
) -> Damaged:
    folder = out / f"{index:04d}"
    folder.mkdir(parents=True)
    suffix = source.suffix.lower()
    if kind == "wrong_extension":
        suffix = rng.choice([e for e in WRONG_EXTENSIONS if e != suffix])
    stem = hostile_name(rng) if kind == "hostile_name" else os.fsencode(source.stem)
    path = Path(os.fsdecode(os.fsencode(folder) + b"/" + stem + suffix.encode()))
    path.write_bytes(data)
    if kind == "bad_sidecar":
        path.with_suffix(".json").write_bytes(
            rng.choice([b"{", b"\xff\xfe\x00", rng.randbytes(64)])
        )
    if kind == "hostile_sidecar":
        _write_sidecar(path.with_suffix(".json"), rng)
    return Damaged(path, kind, hashlib.sha256(data).hexdigest())


def _write_sidecar(sidecar: Path, rng: random.Random) -> None:
    special = rng.random()
    if special < 0.03:
        os.mkfifo(sidecar)  # must never be opened: it would block for ever
    elif special < 0.05:
        sidecar.mkdir()
    else:
        sidecar.write_bytes(hostile_sidecar(rng))


# --- ingesting and accounting -------------------------------------------------------------


def run_ingest(
    db: Path, folder: Path, *, workers: int, file_timeout_s: float, deadline_s: float, work: Path
) -> IngestRun:
    """`bwv ingest --no-transcribe --store` in a child process with its own TMPDIR."""
    config = work / "ingest.toml"
    config.write_text(f"[ingest]\nfile_timeout_s = {file_timeout_s}\n")
    env = {**os.environ, "TMPDIR": str(work / "tmp"), "BWV_CONFIG": str(config)}
    (work / "tmp").mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-c",
        "from bwv.cli import main; main()",
        "--db",
        str(db),
        "--actor",
        "fuzz",
        "ingest",
        "--no-transcribe",
        "--workers",
        str(workers),
        "--store",
        str(work / "store"),
        str(folder),
    ]
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=deadline_s)
    except subprocess.TimeoutExpired as exc:
        return IngestRun(None, _text(exc.stdout), _text(exc.stderr), time.monotonic() - started)
    return IngestRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


def assess(
    db: Path, corpus: list[Damaged], run: IngestRun, *, work: Path, file_timeout_s: float
) -> FuzzReport:
    report = FuzzReport(len(corpus), dict(Counter(d.kind for d in corpus)), seconds=run.seconds)
    if run.returncode not in (0, 1) or "Traceback" in run.stderr:
        report.crashes.append(f"ingest exited {run.returncode}: {run.stderr.strip()[-2000:]}")
    if run.returncode is None:
        report.hangs.append(f"the batch was still running after {run.seconds:.0f} s")
    rows = _clip_rows(db) if db.exists() else {}
    rejected = _rejected(run.stdout)
    for damaged in corpus:
        if damaged.sha256 not in rows and _path_text(damaged.path) in rejected:
            report.rejected_with_reason += 1
            continue
        _account(report, damaged, rows.get(damaged.sha256), file_timeout_s)
    report.warnings = sum(line.startswith("  warning: ") for line in run.stdout.splitlines())
    report.leaked_temp_files = [str(p) for p in _leftovers(work)]
    return report


def _rejected(stdout: str) -> set[str]:
    """Paths the ingest summary names as not ingested or not finished, with a reason."""
    found = set()
    for line in stdout.splitlines():
        for label in ("  not ingested: ", "  not finished, retried on the next run: "):
            if line.startswith(label) and ": " in line[len(label) :]:
                found.add(line[len(label) :].rsplit(": ", 1)[0])
    return found


def _path_text(path: Path) -> str:
    from bwv.core.textsafe import printable
    from ingest.provenance import path_text

    return printable(path_text(path))


def _clip_rows(db: Path) -> dict[str, tuple[str, str | None, float | None]]:
    with sqlite3.connect(db) as connection:
        query = "SELECT sha256, status, failure_reason, ingest_seconds FROM clip"
        return {
            sha: (status, reason, secs) for sha, status, reason, secs in connection.execute(query)
        }


def _account(
    report: FuzzReport,
    damaged: Damaged,
    row: tuple[str, str | None, float | None] | None,
    file_timeout_s: float,
) -> None:
    name = str(damaged.path)
    if hashlib.sha256(damaged.path.read_bytes()).hexdigest() != damaged.sha256:
        report.originals_changed.append(name)
    if row is None:
        report.lost.append(name)
        return
    status, reason, seconds = row
    report.slowest_file_s = max(report.slowest_file_s, seconds or 0.0)
    if seconds is not None and seconds > file_timeout_s + 5:
        report.hangs.append(f"{name} took {seconds:.1f} s, past the {file_timeout_s:g} s limit")
    if status == "ingested":
        report.catalogued += 1
    elif reason:
        report.failed_with_reason += 1
        key = reason.split(":")[0][:60]
        report.reasons[key] = report.reasons.get(key, 0) + 1
    else:
        report.failed_without_reason.append(name)


def _leftovers(work: Path) -> list[Path]:
    from bwv.core.store import temp_files

    # onnxruntime (voice activity detection) keeps one fixed-name session marker, `.ses`,
    # in TMPDIR and reuses it on every run: not a per-file leftover, so not counted.
    tmp = work / "tmp"
    leaked = [p for p in tmp.rglob("*") if p.name != ".ses"] if tmp.exists() else []
    store = work / "store"
    return sorted(leaked + (temp_files(store) if store.exists() else []))


def fuzz(
    count: int,
    *,
    seed: int,
    workers: int,
    file_timeout_s: float,
    deadline_s: float,
    work: Path,
    weights: dict[str, int] | None = None,
) -> FuzzReport:
    corpus = make_corpus(work / "damaged", count, seed, weights=weights)
    run = run_ingest(
        work / "fuzz.db",
        work / "damaged",
        workers=workers,
        file_timeout_s=file_timeout_s,
        deadline_s=deadline_s,
        work=work,
    )
    return assess(work / "fuzz.db", corpus, run, work=work, file_timeout_s=file_timeout_s)


def print_report(report: FuzzReport) -> None:
    print(f"damaged files:          {report.files}")
    print(
        "  kinds:                " + ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items()))
    )
    print(f"  hostile sidecars and names: {report.hostile}")
    print(f"catalogued:             {report.catalogued}")
    print(f"failed with a reason:   {report.failed_with_reason}")
    print(f"rejected with a reason: {report.rejected_with_reason}")
    print(f"sidecar/tag warnings:   {report.warnings}")
    for reason, n in sorted(report.reasons.items(), key=lambda item: -item[1])[:8]:
        print(f"  {n:>5}  {reason}")
    print(f"lost (not in catalogue): {len(report.lost)}")
    print(f"failed without reason:  {len(report.failed_without_reason)}")
    print(f"batch crashes:          {len(report.crashes)}")
    print(f"hangs past the limit:   {len(report.hangs)}")
    print(f"leaked temp files:      {len(report.leaked_temp_files)}")
    print(f"originals changed:      {len(report.originals_changed)}")
    print(f"accounted for:          {report.accounted_percent:.1f}% (catalogued or with a reason)")
    print(
        f"time:                   {report.seconds:.1f} s "
        f"({report.files / max(report.seconds, 1e-9):.1f} files/s, "
        f"slowest file {report.slowest_file_s:.2f} s)"
    )
    for problem in [*report.crashes, *report.hangs, *report.lost[:10]]:
        print(f"PROBLEM: {problem}")
    print("RESULT: " + ("pass" if report.ok else "FAIL"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20240116)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--file-timeout", type=float, default=30.0)
    parser.add_argument("--deadline", type=float, default=3600.0, help="Whole-batch limit (s).")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    parser.add_argument(
        "--hostile-only", action="store_true", help="Only hostile sidecars and file names."
    )
    args = parser.parse_args(argv)
    weights = {k: WEIGHTS[k] for k in HOSTILE_KINDS} if args.hostile_only else None
    work = args.keep or Path(tempfile.mkdtemp(prefix="bwv-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = fuzz(
            args.count,
            seed=args.seed,
            workers=args.workers,
            file_timeout_s=args.file_timeout,
            deadline_s=args.deadline,
            work=work,
            weights=weights,
        )
        print_report(report)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

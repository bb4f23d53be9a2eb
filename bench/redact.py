"""Redaction speed: detect faces and render a redacted copy of a 640x360, 30 fps clip.

Times bwv's way (`redact.detect.scan`: CenterFace on every second frame at 384 px input,
tracked; then `redact.render.run`: one ffmpeg graph, blur masks moved by sendcmd, audio
muted in the same graph) against a naive baseline on the same clip in the same run:
every frame decoded, CenterFace at the frame's own size, each face Gaussian-blurred with
OpenCV and the frame encoded, one at a time in Python (PyAV, same x264 settings; video
only, which flatters the baseline). The clip is the committed test clip
(tests/redact/data/faces.mp4, 10 s, two faces), repeated `--repeat` times. Besides wall
time it prints the CPU seconds each way used (this process and its ffmpeg children):
on a shared machine the wall time grows with the other load, the CPU time much less,
so `clip seconds / (CPU seconds / cores)` estimates the speed on an idle machine. Usage:

    .venv/bin/python bench/redact.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
CLIP = ROOT / "tests" / "redact" / "data" / "faces.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="times the 10 s clip is repeated")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        clip = repeated(CLIP, args.repeat, work / "clip.mp4")
        seconds = duration(clip)
        cpu_start = cpu_seconds()
        ours = bwv_way(clip, work)
        cpu_ours = cpu_seconds() - cpu_start
        naive = baseline(clip, work / "naive.mp4")
        cpu_naive = cpu_seconds() - cpu_start - cpu_ours
    cores = len(os.sched_getaffinity(0))
    print(f"clip: 640x360, 30 fps, {seconds:.1f} s; cores: {cores}")
    print(
        f"bwv:      detect {ours[0]:6.2f} s + render {ours[1]:6.2f} s = {sum(ours):6.2f} s  "
        f"({seconds / sum(ours):.2f}x real time)"
    )
    print(
        f"baseline: {naive:6.2f} s  ({seconds / naive:.2f}x real time); "
        f"bwv is {naive / sum(ours):.1f}x faster"
    )
    print(
        f"CPU seconds: bwv {cpu_ours:.1f}, baseline {cpu_naive:.1f}; on {cores} idle cores "
        f"about {seconds / (cpu_ours / cores):.2f}x and {seconds / (cpu_naive / cores):.2f}x "
        "real time"
    )
    print(
        "load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *load_before, *os.getloadavg()
        )
    )


def cpu_seconds() -> float:
    """User and system CPU time of this process and of its finished children (ffmpeg)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def repeated(source: Path, times: int, target: Path) -> Path:
    import imageio_ffmpeg

    listing = target.with_suffix(".txt")
    listing.write_text("".join(f"file '{source}'\n" for _ in range(times)))
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(target),
        ],
        check=True,
    )
    return target


def duration(path: Path) -> float:
    from ingest.probe import probe

    return probe(path).duration_s or 0.0


def bwv_way(clip: Path, work: Path) -> tuple[float, float]:
    from redact.detect import scan
    from redact.model import checked_model
    from redact.render import HiddenTrack, RenderJob, run

    started = time.perf_counter()
    found = scan(clip, checked_model())
    detected = time.perf_counter()
    tracks = [HiddenTrack(t.label, t.keys) for t in found.tracks]
    job = RenderJob(clip, work / "copy.mp4", True, True, duration(clip), tracks, [(1.0, 2.5)])
    run(job, found.fps, (found.width, found.height), work)
    return detected - started, time.perf_counter() - detected


def baseline(clip: Path, target: Path) -> float:
    import av
    import cv2

    from redact.detect import Detector, DetectSettings
    from redact.model import checked_model

    started = time.perf_counter()
    with av.open(str(clip)) as source, av.open(str(target), "w") as out:
        video = source.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        detector = Detector(checked_model(), width, height, DetectSettings(input_width=width))
        stream = out.add_stream("libx264", rate=30, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in source.decode(video):
            rgb = frame.to_ndarray(format="rgb24")
            faces = detector.faces(cv2.resize(rgb, detector.size))
            for (x1, y1, x2, y2), _score in faces:
                a, b = max(int(x1), 0), max(int(y1), 0)
                region = rgb[b : int(y2), a : int(x2)]
                if region.size:
                    rgb[b : int(y2), a : int(x2)] = cv2.GaussianBlur(region, (0, 0), 12)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()

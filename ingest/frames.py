"""Frame facts: is the lens covered or the camera face down, is it sharp, and a thumbnail.

About one frame every two seconds is enough to tell; decoding only key frames (which
body-worn cameras write every second or two) keeps this a small share of ingest time.
When a file has too few key frames, every frame is decoded but only the sampled ones
are converted and measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.probe import MediaError

DARK_MEAN = 24.0  # mean 8-bit luma below this: lens covered or face down in the dark
UNIFORM_STD = 6.0  # almost no texture: a hand or a pocket over the lens
ANALYSIS_WIDTH = 320


@dataclass(frozen=True)
class FrameFacts:
    frames_sampled: int
    dark_frame_share: float | None
    blur_score: float | None
    thumbnail_jpeg: bytes | None


def frame_facts(path: Path, interval_s: float = 2.0) -> FrameFacts:
    """Samples frames about every `interval_s` and measures darkness, blur and a thumbnail."""
    import av

    try:
        with av.open(str(path), mode="r", metadata_errors="replace") as container:
            if not container.streams.video:
                return FrameFacts(0, None, None, None)
            return _measure(_sampled_frames(container, interval_s))
    except av.FFmpegError as exc:
        raise MediaError(f"video could not be decoded: {exc}") from exc


def _sampled_frames(container: Any, interval_s: float) -> Iterator[Any]:
    stream = container.streams.video[0]
    duration = float(stream.duration * stream.time_base) if stream.duration else None
    count = 0
    for frame in _decode(container, stream, interval_s, key_only=True):
        count += 1
        yield frame
    if duration and count < max(1, int(duration / (interval_s * 5))):
        # Too few key frames to sample from: decode everything, measure only the samples.
        container.seek(0)
        yield from _decode(container, stream, interval_s, key_only=False)


def _decode(container: Any, stream: Any, interval_s: float, key_only: bool) -> Iterator[Any]:
    stream.codec_context.skip_frame = "NONKEY" if key_only else "DEFAULT"
    next_time = -1.0
    for frame in container.decode(stream):
        if frame.time is None or frame.time < next_time:
            continue
        next_time = frame.time + interval_s * 0.9
        yield frame


def luma(frame: Any) -> np.ndarray:
    """The frame's brightness plane at about ANALYSIS_WIDTH, read without colour conversion."""
    import cv2

    if frame.format.name not in _PLANAR_YUV:
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    height = max(2, round(plane.height * ANALYSIS_WIDTH / max(plane.width, 1)))
    return cv2.resize(rows, (ANALYSIS_WIDTH, height), interpolation=cv2.INTER_AREA)


_PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"}


@dataclass
class _Tally:
    """Running frame statistics, so memory stays flat however long the clip."""

    sampled: int = 0
    covered: int = 0
    sharpness: list[float] = field(default_factory=list)
    best_texture: float = -1.0
    best_frame: Any = None

    def add(self, frame: Any) -> None:
        import cv2

        gray = luma(frame)
        mean, texture = float(gray.mean()), float(gray.std())
        self.sampled += 1
        self.covered += int(mean < DARK_MEAN or texture < UNIFORM_STD)
        self.sharpness.append(float(cv2.Laplacian(gray, cv2.CV_32F).var()))
        if texture > self.best_texture:
            self.best_texture, self.best_frame = texture, frame


def _measure(frames: Iterator[Any]) -> FrameFacts:
    tally = _Tally()
    for frame in frames:
        tally.add(frame)
    if tally.best_frame is None:
        return FrameFacts(0, None, None, None)
    return FrameFacts(
        frames_sampled=tally.sampled,
        dark_frame_share=round(tally.covered / tally.sampled, 4),
        blur_score=round(float(np.median(tally.sharpness)), 2),
        thumbnail_jpeg=thumbnail(tally.best_frame),
    )


def thumbnail(frame: Any) -> bytes | None:
    """The most textured sampled frame as a JPEG about ANALYSIS_WIDTH wide."""
    import cv2

    height = max(2, round(frame.height * ANALYSIS_WIDTH / max(frame.width, 1) / 2) * 2)
    image = frame.to_ndarray(width=ANALYSIS_WIDTH, height=height, format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return jpeg.tobytes() if ok else None

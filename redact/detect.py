"""Faces found on the frames of a clip with CenterFace, and joined into tracks as it goes.

Detection runs on every `stride`-th frame (2 by default: the tracker interpolates the
frames between) at a reduced input width, since CenterFace's cost grows with the pixel
count and a face 24 px wide in 640x360 footage is still 14 px at 384 px input, inside
what the model finds. Frames are decoded once with PyAV; only the sampled ones are
converted to pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bwv.core.errors import BwvError
from redact.model import OUTPUTS, load_net
from redact.tracks import Box, Track, Tracker, TrackSettings


class NoVideo(BwvError):
    """The clip has no video stream, so there are no faces to find or hide."""


@dataclass(frozen=True)
class DetectSettings:
    stride: int = 2  # detect on every n-th frame, interpolate between
    input_width: int = 384  # the model's input width in pixels (a multiple of 32)
    threshold: float = 0.35  # heatmap score above which a face is taken
    nms_iou: float = 0.3


@dataclass(frozen=True)
class Scan:
    width: int
    height: int
    fps: float
    frames: int
    detected_frames: int
    tracks: list[Track]


Progress = Callable[[float], None]


def scan(
    path: Path,
    model: Path,
    settings: DetectSettings | None = None,
    tracking: TrackSettings | None = None,
    progress: Progress | None = None,
) -> Scan:
    """Every face track in the clip at `path`, with a thumbnail each."""
    import av

    settings = settings or DetectSettings()
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise NoVideo(f"{path.name} has no video stream: there are no faces to find")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        fps = float(stream.average_rate or 30)
        tracker = Tracker(width, height, fps, tracking or TrackSettings())
        detector = Detector(model, width, height, settings)
        total = _frame_estimate(container, stream, fps)
        count, detected = 0, 0
        for count, (t, frame) in enumerate(_frames(container, stream), start=1):
            if (count - 1) % settings.stride == 0:
                small = frame.to_ndarray(
                    format="rgb24", width=detector.size[0], height=detector.size[1]
                )
                faces = detector.faces(small)
                tracker.update(count - 1, t, faces, _full_size(frame))
                detected += 1
            if progress and count % 30 == 0:
                progress(min(count / total, 1.0) if total else 0.0)
    return Scan(width, height, fps, count, detected, tracker.finish(count))


def _frames(container: Any, stream: Any) -> Iterator[tuple[float, Any]]:
    """Decoded frames with their time from the first frame, in seconds."""
    first: float | None = None
    for frame in container.decode(stream):
        t = float(frame.time) if frame.time is not None else 0.0
        first = t if first is None else first
        yield t - first, frame


def _full_size(frame: Any) -> Callable[[], np.ndarray]:
    # Full-size pixels are needed only when a track gets a better thumbnail: rarely.
    return lambda: frame.to_ndarray(format="rgb24")


def _frame_estimate(container: Any, stream: Any, fps: float) -> int:
    if stream.frames:
        return int(stream.frames)
    return int(container.duration / 1_000_000 * fps) if container.duration else 0


class Detector:
    """CenterFace on frames of one size: the blob size and scale are worked out once."""

    def __init__(self, model: Path, width: int, height: int, settings: DetectSettings) -> None:
        self.net = load_net(model)
        self.settings = settings
        in_w = max(32, round(min(settings.input_width, width) / 32) * 32)
        in_h = max(32, round(in_w * height / width / 32) * 32)
        self.size = (in_w, in_h)
        self.scale = (width / in_w, height / in_h)

    def faces(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        """Face boxes in frame pixels with their scores, overlapping duplicates removed.

        `rgb` is the frame already scaled to the model's input size (`self.size`).
        """
        import cv2

        blob = cv2.dnn.blobFromImage(rgb, 1.0, self.size, (0, 0, 0), swapRB=False)
        self.net.setInput(blob)
        heat, scale, offset, _ = self.net.forward(list(OUTPUTS))
        return self._decode(heat, scale, offset)

    def _decode(self, heat: Any, scale: Any, offset: Any) -> list[tuple[Box, float]]:
        import cv2

        ys, xs = np.nonzero(heat[0, 0] > self.settings.threshold)
        if len(ys) == 0:
            return []
        h = np.exp(scale[0, 0, ys, xs]) * 4 * self.scale[1]
        w = np.exp(scale[0, 1, ys, xs]) * 4 * self.scale[0]
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4 * self.scale[0]
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4 * self.scale[1]
        scores = heat[0, 0, ys, xs].astype(float)
        rects = [
            [float(x - bw / 2), float(y - bh / 2), float(bw), float(bh)]
            for x, y, bw, bh in zip(cx, cy, w, h, strict=True)
        ]
        keep = cv2.dnn.NMSBoxes(
            rects, scores.tolist(), self.settings.threshold, self.settings.nms_iou
        )
        return [
            (
                (rects[i][0], rects[i][1], rects[i][0] + rects[i][2], rects[i][1] + rects[i][3]),
                float(scores[i]),
            )
            for i in np.asarray(keep).reshape(-1)
        ]

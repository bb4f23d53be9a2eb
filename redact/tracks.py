"""Face detections joined into tracks: one person's face from when it appears to when it goes.

A person chooses whom to hide by track, so a face must stay one track while it turns
away, is hidden for a moment or is missed by the detector on a few frames. Detections
join the open track they overlap most (box IoU, or a near centre of similar size for a
small face that moves fast); a track left unmatched for up to `max_gap_s` is bridged when
its face comes back, the missing frames interpolated. Boxes are enlarged (1.3x about
their centre by default) so a blur also covers hair, ears and the edge of a turned face.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
Key = tuple[int, float, float, float, float, float]  # frame, t, x1, y1, x2, y2


@dataclass(frozen=True)
class TrackSettings:
    iou_min: float = 0.2
    max_gap_s: float = 1.0  # longest gap bridged in one track
    min_detections: int = 3  # fewer are taken as detector noise
    enlarge: float = 1.3
    hold_frames: int = 3  # frames kept hidden beyond the first and last detection
    thumbnail_px: int = 96


@dataclass
class Track:
    """One face over time: key boxes on the frames where it was detected (enlarged)."""

    keys: list[Key]
    best_score: float
    thumbnail: bytes = b""
    label: str = ""

    @property
    def start_s(self) -> float:
        return self.keys[0][1]

    @property
    def end_s(self) -> float:
        return self.keys[-1][1]

    @property
    def max_width(self) -> float:
        return max(k[4] - k[2] for k in self.keys)


@dataclass
class _Open:
    keys: list[Key] = field(default_factory=list)
    hits: int = 0  # detections, not counting interpolated frames
    best: float = 0.0  # score x sqrt(area) of the detection the thumbnail shows
    score: float = 0.0
    thumbnail: bytes = b""


class Tracker:
    """Joins each sampled frame's detections onto the open tracks, online."""

    def __init__(self, width: int, height: int, fps: float, settings: TrackSettings) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.settings = settings
        self.open: list[_Open] = []
        self.closed: list[_Open] = []

    def update(
        self, frame: int, t: float, faces: list[tuple[Box, float]], rgb: Callable[[], Any]
    ) -> None:
        """Adds one sampled frame's faces; `rgb` gives its full-size pixels when needed."""
        max_gap = max(1, round(self.settings.max_gap_s * self.fps))
        still = [o for o in self.open if frame - o.keys[-1][0] <= max_gap]
        self.closed += [o for o in self.open if o not in still]
        self.open = still
        taken: set[int] = set()
        for box, score in sorted(faces, key=lambda f: -f[1]):
            track = self._match(frame, box, taken)
            if track is None:
                track = _Open()
                self.open.append(track)
            taken.add(id(track))
            self._add(track, frame, t, box, score, rgb)

    def _match(self, frame: int, box: Box, taken: set[int]) -> _Open | None:
        best, best_value = None, 0.0
        for track in self.open:
            if id(track) in taken:
                continue
            gap_s = (frame - track.keys[-1][0]) / self.fps
            value = _affinity(self._predicted(track, frame), box, gap_s)
            if value >= self.settings.iou_min and value > best_value:
                best, best_value = track, value
        return best

    def _predicted(self, track: _Open, frame: int) -> Box:
        """The track's raw box moved on to `frame` at its recent speed (over the last 0.2 s)."""
        last = _raw(track.keys[-1], self.settings.enlarge)
        back = max(1, round(0.2 * self.fps))
        if len(track.keys) <= back:
            return last
        before = _raw(track.keys[-1 - back], self.settings.enlarge)
        steps = (frame - track.keys[-1][0]) / (track.keys[-1][0] - track.keys[-1 - back][0])
        steps = min(steps, 3.0)  # a long gap is bridged by nearness, not by extrapolation
        return tuple(v + (v - b) * steps for v, b in zip(last, before, strict=True))  # type: ignore[return-value]

    def _add(
        self, track: _Open, frame: int, t: float, box: Box, score: float, rgb: Callable[[], Any]
    ) -> None:
        big = self._enlarged(box)
        if track.keys and frame - track.keys[-1][0] > 1:
            track.keys += _between(track.keys[-1], (frame, t, *big), self.fps)
        track.keys.append((frame, t, *big))
        track.hits += 1
        value = score * math.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 0.0))
        if value > track.best:
            track.best, track.score = value, score
            track.thumbnail = thumbnail(rgb(), big, self.settings.thumbnail_px)

    def _enlarged(self, box: Box) -> Box:
        return clip_box(enlarge(box, self.settings.enlarge), self.width, self.height)

    def finish(self, frames: int) -> list[Track]:
        """The tracks with enough detections, held a few frames past each end, labelled T1..."""
        minimum = self.settings.min_detections
        kept = [o for o in self.closed + self.open if o.hits >= minimum]
        kept.sort(key=lambda o: (o.keys[0][0], o.keys[0][2]))
        tracks = []
        for number, found in enumerate(kept, start=1):
            keys = _held(found.keys, self.settings.hold_frames, frames, self.fps)
            tracks.append(Track(keys, found.score, found.thumbnail, f"T{number}"))
        return tracks


def _affinity(a: Box, b: Box, gap_s: float) -> float:
    """IoU, or for boxes that do not overlap enough, a near centre of similar size.

    The nearness allowed grows with the time since the track was last seen, since a face
    coming back from behind something has moved on meanwhile.
    """
    value = iou(a, b)
    wa, wb = a[2] - a[0], b[2] - b[0]
    if value >= 0.2 or not 0.4 <= wb / max(wa, 1e-6) <= 2.5:
        return value
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    reach = 0.6 + 1.0 * min(gap_s, 1.0)  # in face widths
    near = math.hypot(dx, dy) / max(wa, wb)
    return max(value, 0.2 * (1 - near / reach) + 0.01) if near < reach else value


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def enlarge(box: Box, factor: float) -> Box:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * factor / 2, (box[3] - box[1]) * factor / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def _raw(key: Key, factor: float) -> Box:
    return enlarge((key[2], key[3], key[4], key[5]), 1 / factor)


def clip_box(box: Box, width: int, height: int) -> Box:
    return (
        max(0.0, box[0]),
        max(0.0, box[1]),
        min(float(width), box[2]),
        min(float(height), box[3]),
    )


def _between(a: Key, b: Key, fps: float) -> list[Key]:
    """The frames strictly between two keys, boxes and times interpolated linearly."""
    span = b[0] - a[0]
    out = []
    for frame in range(a[0] + 1, b[0]):
        f = (frame - a[0]) / span
        mixed = [a[i] + (b[i] - a[i]) * f for i in range(1, 6)]
        out.append((frame, mixed[0], mixed[1], mixed[2], mixed[3], mixed[4]))
    return out


def _held(keys: list[Key], hold: int, frames: int, fps: float) -> list[Key]:
    """The first and last box repeated `hold` frames before and after, inside the clip."""
    first, last = keys[0], keys[-1]
    before = [(first[0] - n, first[1] - n / fps, *first[2:]) for n in range(hold, 0, -1)]
    after = [(last[0] + n, last[1] + n / fps, *last[2:]) for n in range(1, hold + 1)]
    return [k for k in before if k[0] >= 0] + keys + [k for k in after if k[0] < frames]


def thumbnail(rgb: Any, box: Box, size: int) -> bytes:
    """A JPEG of the face box, `size` px on its longer side."""
    import cv2

    x1, y1, x2, y2 = (round(v) for v in box)
    crop = np.ascontiguousarray(rgb[y1:y2, x1:x2, ::-1])
    if crop.size == 0:
        return b""
    scale = size / max(crop.shape[:2])
    size_px = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    crop = cv2.resize(crop, size_px, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return encoded.tobytes() if ok else b""

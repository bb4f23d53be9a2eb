"""One frame of a clip with the chosen boxes hidden, for the Redact page's preview.

The person choosing whom to hide wants to see a frame before minutes of rendering; the
boxes are blurred here the way the render blurs them (a wide box blur, twice), or
painted black, on one decoded frame only.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from bwv.core.errors import BwvError
from redact.tracks import Box


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """The BGR frame shown at `seconds` (the first frame at or after it)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise BwvError("the clip has no video stream to preview")
        stream = container.streams.video[0]
        base = stream.time_base or Fraction(1, 90_000)
        first = stream.start_time or 0
        container.seek(int(max(seconds, 0.0) / base) + first, stream=stream, backward=True)
        start = float(first * base)
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is not None and frame.time - start >= seconds - 1e-3:
                break
    if last is None:
        raise BwvError(f"no frame at {seconds:g} s")
    return last.to_ndarray(format="bgr24")


def hidden(image: np.ndarray, boxes: list[Box], solid: bool = False) -> bytes:
    """The frame as JPEG with each box blurred (or black)."""
    import cv2

    radius = max(4, min(image.shape[:2]) // 10)
    blurred = (
        image if solid else cv2.blur(cv2.blur(image, (2 * radius + 1,) * 2), (2 * radius + 1,) * 2)
    )
    out = image.copy()
    for x1, y1, x2, y2 in boxes:
        a, b, c, d = (max(0, round(v)) for v in (x1, y1, x2, y2))
        out[b:d, a:c] = 0 if solid else blurred[b:d, a:c]
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise BwvError("the preview frame could not be encoded")
    return encoded.tobytes()

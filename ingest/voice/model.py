"""Is this speech segment a child's voice? Runtime scoring on the transcription encoder states.

The Whisper encoder already run for transcription carries the speaker's age, so attribution
costs one pooling and a tiny network per segment instead of a second audio model. Only numpy
is needed at runtime: the classifier ships as JSON (weights, normalisation, calibration), never
as a pickle, so the file is inspectable and cannot execute code when loaded.

Training, evaluation and the choice of pooling are in `ingest.voice.training.train`; keep
`segment_embedding` and `POOLING` in step with the shipped file's `pooling` field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bwv.core.errors import BwvError
from ingest.voice.acoustic import STATS as ACOUSTIC_STATS
from ingest.voice.acoustic import segment_acoustics
from ingest.voice.speakers import SpeakerSpace, group_speakers, pooled_features, pooled_logits

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "data" / "child_voice.json"
POOLING = "enc-msd+mel-sd+acoustic-v2"
FORMAT = "bwv-child-voice/1"
ACOUSTIC_FEATURES = len(ACOUSTIC_STATS)  # the last features of every embedding
MELS_PER_FRAME = 2  # Whisper's log-mel has a 10 ms hop; its encoder states are 20 ms apart


def segment_embedding(
    frames: np.ndarray, span: slice, mel: np.ndarray, acoustics: np.ndarray
) -> np.ndarray:
    """A fixed-length description of one segment of an encoded window.

    `frames` is the window's encoder states [1500, d] and `span` the segment's frames in it
    (`ingest.encoder.frame_slice`); `mel` is the same window's log-mel [n_mels, 3000] as
    `ingest.encoder.log_mel` gave it to the encoder; `acoustics` the window's rows of
    `ingest.voice.acoustic.acoustic_frames`, one per encoder frame.

    From the encoder states: mean and standard deviation (the voice's average and spread)
    and the mean absolute frame-to-frame change (how fast it moves). The final encoder layer
    is trained for speaker-invariant transcription, so it under-represents the vocal tract;
    two log-mel statistics add it back: the spread over time of each band relative to the
    frame's average level (formant and harmonic structure, higher and sparser in children)
    and the mean absolute change of each band between 10 ms frames. Both are blind to a fixed
    microphone or channel colouring, which shifts log-mel bands by a constant.

    Last, `ACOUSTIC_FEATURES` numbers that mean the same in any language (pitch, formants,
    vocal-tract length, spectral tilt: `ingest.voice.acoustic.segment_acoustics`), because
    the encoder states also carry pronunciation and content (see the model card).
    """
    part = np.asarray(frames[span], dtype=np.float32)
    bands = np.asarray(mel[:, mel_span(span)], dtype=np.float32).T
    if len(part) == 0 or len(bands) < 2:
        raise ValueError(f"segment span {span} selects no frames")
    shape = bands - bands.mean(axis=1, keepdims=True)
    return np.concatenate(
        [
            part.mean(axis=0),
            part.std(axis=0),
            _mean_abs_change(part),
            shape.std(axis=0),
            _mean_abs_change(bands),
            segment_acoustics(acoustics[span]),
        ]
    )


def mel_span(span: slice) -> slice:
    """The log-mel columns under the encoder frames `span` (a slice with start and stop)."""
    return slice(span.start * MELS_PER_FRAME, span.stop * MELS_PER_FRAME)


def _mean_abs_change(rows: np.ndarray) -> np.ndarray:
    if len(rows) < 2:
        return np.zeros(rows.shape[1], np.float32)
    return np.asarray(np.abs(np.diff(rows, axis=0)).mean(axis=0))


@dataclass(frozen=True)
class GroupClassifier:
    """Judges a whole speaker group on the mean of its segments' embeddings.

    Trained on such means (random 10 to 40 s of a training speaker's speech, in 2 to 8 s
    pieces, as a clip's speaker group holds), so its weights suit averaged features, whose
    noise is much lower than one segment's: the segment classifier's mean logit weighs the
    features as if each segment stood alone.
    """

    mean: np.ndarray  # [features] of the pooled embeddings
    scale: np.ndarray
    weight: np.ndarray  # [features] logistic regression on the standardised pooled features
    bias: float
    calibration: tuple[float, float] = (1.0, 0.0)

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(np.asarray(pooled, np.float64)) - self.mean) / self.scale
        return np.asarray(x @ self.weight + self.bias, np.float64)

    def calibrated_logits(self, pooled: np.ndarray) -> np.ndarray:
        slope, intercept = self.calibration
        return slope * self.logits(pooled) + intercept

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "weight": _rounded(self.weight),
            "bias": round(float(self.bias), 6),
            "calibration": list(self.calibration),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupClassifier:
        return cls(
            mean=np.asarray(data["mean"], np.float64),
            scale=np.asarray(data["scale"], np.float64),
            weight=np.asarray(data["weight"], np.float64),
            bias=float(data["bias"]),
            calibration=(float(data["calibration"][0]), float(data["calibration"][1])),
        )


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
    speakers: SpeakerSpace | None = None  # for grouping a clip's segments by voice
    group: GroupClassifier | None = None  # judges each speaker group on its pooled features

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
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BwvError(f"child-voice model {path} is malformed: {exc!r}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChildVoiceModel:
        networks = [
            [
                (np.asarray(ly["weight"], np.float32), np.asarray(ly["bias"], np.float32))
                for ly in net
            ]
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
            speakers=SpeakerSpace.from_dict(data["speakers"]) if data.get("speakers") else None,
            group=GroupClassifier.from_dict(data["group"]) if data.get("group") else None,
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
            "speakers": self.speakers.to_dict() if self.speakers else None,
            "group": self.group.to_dict() if self.group else None,
            "meta": self.meta,
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Uncalibrated scores; larger means more child-like."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.shape[-1] != len(self.mean):
            raise ValueError(
                f"embeddings have {embeddings.shape[-1]} features, the classifier expects "
                f"{len(self.mean)}: encoder {self.meta.get('encoder', 'tiny.en')!r} is required"
            )
        x = (embeddings - self.mean) / self.scale
        return np.mean([_network_logits(net, x) for net in self.networks], axis=0)

    def calibrated_logits(self, embeddings: np.ndarray) -> np.ndarray:
        slope, intercept = self.calibration
        return np.asarray(slope * self.logits(np.atleast_2d(embeddings)) + intercept)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Calibrated probability that each embedding's speaker is a child: shape [N]."""
        return sigmoid(self.calibrated_logits(embeddings))

    def attribute(self, embeddings: np.ndarray, seconds: np.ndarray) -> SpeakerAttribution:
        """One clip's segments grouped by voice, each with its group's pooled probability
        (or, with no speaker space in the file, each segment alone as its own speaker)."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        logits = self.calibrated_logits(embeddings)
        if self.speakers is None or len(embeddings) == 0:
            return SpeakerAttribution(sigmoid(logits), np.arange(len(logits)), sigmoid(logits))
        points = self.speakers.project((embeddings - self.mean) / self.scale)
        labels = group_speakers(points, seconds, self.speakers)
        pooled = self.group_logits(embeddings, seconds, labels, logits)
        return SpeakerAttribution(sigmoid(logits), labels, sigmoid(pooled))

    def group_logits(
        self, embeddings: np.ndarray, seconds: np.ndarray, labels: np.ndarray, logits: np.ndarray
    ) -> np.ndarray:
        """Per segment, its speaker group's calibrated logit: the group classifier on the
        group's pooled embedding, or (a file without one) the mean of its segments' calibrated
        `logits`."""
        if self.group is None:
            return pooled_logits(logits, seconds, labels)
        pooled = pooled_features(embeddings, seconds, labels)
        return np.asarray(self.group.calibrated_logits(pooled)[labels], np.float64)


@dataclass(frozen=True)
class SpeakerAttribution:
    probabilities: np.ndarray  # [segments] each segment alone
    speakers: np.ndarray  # [segments] speaker group, 0, 1, ... in order of first speech
    speaker_probabilities: np.ndarray  # [segments] its group's pooled probability


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

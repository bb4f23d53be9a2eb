"""Labelled folders of utterances and the encoder frames ingest would pool from them.

The classifier only ever sees what ingest computes: utterances are trimmed to speech (as VAD
would), packed several to a 30 s window with `ingest.encoder.pack_windows`, each window is
encoded once, and each utterance pools the encoder frames (and the log-mel frames fed to the
encoder) that fall inside it. Utterances from different speakers share windows, as the
officer and the child do in a real clip, so the self-attention context a segment sees at
training time is as mixed as in the field.

Frames are cached on disk because the encoder dominates the cost and the same frames serve
every pooling and classifier experiment. The cache lives in the user's own cache folder
(`cache_dir`), never a shared temporary one: frames are derived from voices.
"""

from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bwv.core.errors import BwvError
from ingest.encoder import FRAME_S, SAMPLE_RATE, Piece, Window, pack_windows
from ingest.voice.model import MELS_PER_FRAME, mel_span, segment_embedding
from ingest.voice.training.augment import augmenter

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

CHILD_MAX_AGE = 12  # child means aged 12 or under, as the compliance policy defines it
REQUIRED_COLUMNS = ("file", "speaker", "age")
ENCODE_BATCH = 8  # windows per encoder call: amortises the call without much memory
CACHE_VERSION = "v2"  # bump when the frames computed for the same inputs change
ACOUSTIC_VERSION = "a1"  # bump when `ingest.voice.acoustic` changes what it computes


@dataclass(frozen=True)
class Utterance:
    """One labelled recording: where it is, who spoke it and how old they were."""

    path: Path
    speaker: str
    age: int

    @property
    def child(self) -> bool:
        return self.age <= CHILD_MAX_AGE


@dataclass
class FrameSet:
    """Encoder frames and log-mel frames of every utterance under one augmentation condition.

    Both are exactly the slices ingest would pool for a segment spanning the utterance.
    """

    utterances: list[Utterance]
    frames: np.ndarray  # [total frames, d_model] float16, utterances back to back
    bounds: np.ndarray  # [utterances, 2] first and end row of each utterance in `frames`
    mels: np.ndarray  # [total mel frames, n_mels] float16, two per encoder frame
    # [total frames, len(acoustic.ROW)] float32, one row per encoder frame (`with_acoustics`)
    acoustics: np.ndarray | None = None

    def of(self, index: int) -> np.ndarray:
        start, end = self.bounds[index]
        return self.frames[start:end].astype(np.float32)

    def mel_of(self, index: int) -> np.ndarray:
        """[n_mels, 2 * frames], laid out as `ingest.encoder.log_mel` gives a window."""
        start, end = self.bounds[index] * MELS_PER_FRAME
        return self.mels[start:end].T.astype(np.float32)

    def acoustic_of(self, index: int) -> np.ndarray:
        """The utterance's rows of `ingest.voice.acoustic.acoustic_frames`, one per frame."""
        if self.acoustics is None:
            raise ValueError("acoustic rows were not extracted for this frame set")
        start, end = self.bounds[index]
        return self.acoustics[start:end]

    def embedding(self, index: int, span: slice | None = None) -> np.ndarray:
        """The segment embedding ingest would pool over `span` of the utterance (all of it)."""
        frames = self.of(index)
        span = span if span is not None else slice(0, len(frames))
        return segment_embedding(frames, span, self.mel_of(index), self.acoustic_of(index))

    @cached_property
    def labels(self) -> np.ndarray:
        """1.0 for a child (aged 12 or under), 0.0 for an adult, per utterance."""
        return np.array([u.child for u in self.utterances], dtype=np.float64)

    @cached_property
    def speakers(self) -> np.ndarray:
        return np.array([u.speaker for u in self.utterances])


# ---------------------------------------------------------------- labelled folders


def read_labels(data_dir: Path) -> list[Utterance]:
    """The utterances listed in `data_dir/labels.csv`; user errors become BwvError."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise BwvError(f"data folder {data_dir} does not exist or is not a folder")
    labels = data_dir / "labels.csv"
    if not labels.is_file():
        raise BwvError(f"{labels} not found: the folder needs a labels.csv with file,speaker,age")
    with labels.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BwvError(f"{labels} lacks column(s) {', '.join(missing)}")
        rows = [_utterance(data_dir, row, line) for line, row in enumerate(reader, start=2)]
    if not rows:
        raise BwvError(f"{labels} lists no utterances")
    return rows


def read_texts(data_dir: Path) -> dict[str, str] | None:
    """What each utterance's speaker read (labels.csv's optional `text` column), by audio
    path; None when the folder does not say."""
    labels = Path(data_dir) / "labels.csv"
    with labels.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "text" not in (reader.fieldnames or []):
            return None
        return {str(Path(data_dir) / row["file"]): row["text"] or "" for row in reader}


def _utterance(data_dir: Path, row: dict[str, str], line: int) -> Utterance:
    try:
        age = int(float(row["age"]))
    except (TypeError, ValueError):
        raise BwvError(f"labels.csv line {line}: age {row['age']!r} is not a number") from None
    path = data_dir / row["file"]
    if not path.is_file():
        raise BwvError(f"labels.csv line {line}: audio file {path} not found")
    return Utterance(path, row["speaker"], age)


def load_audio(path: Path) -> np.ndarray:
    """16 kHz mono float32, decoded with PyAV as ingest decodes clips."""
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises many types; all mean "cannot read this file"
        raise BwvError(f"cannot read audio {path}: {exc}") from None
    if len(audio) == 0:
        raise BwvError(f"cannot read audio {path}: no audio stream could be decoded")
    if len(audio) < SAMPLE_RATE // 10:
        raise BwvError(f"audio {path} is shorter than 0.1 s")
    return np.asarray(audio, dtype=np.float32)


def trim_to_speech(audio: np.ndarray) -> np.ndarray:
    """From the first to the last sample Silero VAD calls speech, as a segment would span."""
    from faster_whisper.vad import get_speech_timestamps

    stamps = get_speech_timestamps(audio)
    if not stamps:
        return audio
    return audio[stamps[0]["start"] : stamps[-1]["end"]]


# ---------------------------------------------------------------- frame extraction


def cache_dir() -> Path:
    """Where frames are cached: `$BWV_CACHE_DIR`, else `$XDG_CACHE_HOME/bwv/voice`, else
    `~/.cache/bwv/voice` (an empty or relative XDG_CACHE_HOME is ignored, as the XDG base
    directory specification asks)."""
    explicit = os.environ.get("BWV_CACHE_DIR", "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "bwv" / "voice"
    try:
        return Path.home() / ".cache" / "bwv" / "voice"
    except RuntimeError:  # no HOME and no password entry: nowhere sensible to default to
        raise BwvError("cannot find a home folder for the frame cache; set BWV_CACHE_DIR") from None


def extract_frames(
    utterances: list[Utterance],
    condition: str = "clean",
    model_name: str = "tiny.en",
    cache_frames: bool = True,
) -> FrameSet:
    """Encoder and mel frames of every utterance, from the cache (`cache_dir`) when computed
    before; an unreadable cache file is recomputed, an unusable cache folder is refused
    before any encoding.

    Evaluation passes `cache_frames=False`: a reviewer's own recordings may be sensitive,
    and features derived from them should not linger on disk.
    """
    if not cache_frames:
        return _compute_frames(utterances, condition, model_name)
    cache = cache_path(utterances, condition, model_name)
    cached = _read_cache(cache, utterances)
    if cached is not None:
        return cached
    _make_cache_folder(cache.parent)
    frame_set = _compute_frames(utterances, condition, model_name)
    _write_cache(cache, frame_set)
    return frame_set


def with_acoustics(frame_set: FrameSet, condition: str, cache_frames: bool = True) -> FrameSet:
    """The frame set with its acoustic rows (`ingest.voice.acoustic`), one per encoder frame."""
    from dataclasses import replace

    rows = extract_acoustics(frame_set.utterances, condition, cache_frames)
    counts = np.diff(frame_set.bounds, axis=1).ravel()
    # The encoder may see a frame more or less than the audio's own 20 ms rows (where the
    # utterance falls in its window); the last row stands in for a missing one.
    fitted = [r[np.minimum(np.arange(n), len(r) - 1)] for r, n in zip(rows, counts, strict=True)]
    return replace(frame_set, acoustics=np.concatenate(fitted))


def extract_acoustics(
    utterances: list[Utterance], condition: str, cache_frames: bool = True
) -> list[np.ndarray]:
    """Per utterance, `acoustic_frames` of its audio decoded, augmented and trimmed exactly
    as for its encoder frames (the augmentation is seeded per utterance); cached like them."""
    cache = cache_path(utterances, condition, f"acoustic-{ACOUSTIC_VERSION}")
    if cache_frames and (cached := _read_acoustics(cache, len(utterances))) is not None:
        return cached
    from ingest.voice.acoustic import acoustic_frames

    transform = augmenter(condition, interfering_voices(utterances))
    rows = [
        acoustic_frames(trim_to_speech(transform(load_audio(u.path), i)))
        for i, u in enumerate(utterances)
    ]
    if cache_frames:
        _make_cache_folder(cache.parent)
        lengths = np.array([len(r) for r in rows])
        _save_atomically(cache, acoustics=np.concatenate(rows), lengths=lengths)
    return rows


def _read_acoustics(cache: Path, count: int) -> list[np.ndarray] | None:
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as saved:
            acoustics, lengths = saved["acoustics"], saved["lengths"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if len(lengths) != count or int(lengths.sum()) != len(acoustics):
        return None
    return np.split(acoustics, np.cumsum(lengths)[:-1])


def cache_path(utterances: list[Utterance], condition: str, model_name: str) -> Path:
    """The cache file of these utterances (by path, size and time) under one condition."""
    digest = hashlib.sha256(f"{model_name}|{condition}|{CACHE_VERSION}".encode())
    for u in utterances:
        stat = u.path.stat()
        digest.update(f"{u.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return cache_dir() / f"frames-{condition}-{digest.hexdigest()[:16]}.npz"


def _read_cache(cache: Path, utterances: list[Utterance]) -> FrameSet | None:
    """The cached frames, or None when absent or unreadable (torn, truncated, not ours):
    the cache is derived data, so a bad file is recomputed rather than trusted."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as saved:
            frames, bounds, mels = saved["frames"], saved["bounds"], saved["mels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    whole = bounds.shape == (len(utterances), 2) and int(bounds[-1, 1]) == len(frames)
    if not whole or len(mels) != len(frames) * MELS_PER_FRAME:
        return None
    return FrameSet(utterances, frames, bounds, mels)


def _make_cache_folder(folder: Path) -> None:
    """Private to the user (0700 when created here): the frames are derived from voices."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BwvError(
            f"cannot use {folder} as the frame cache ({exc.strerror or exc}); "
            "set BWV_CACHE_DIR to a writable folder"
        ) from None


def _write_cache(cache: Path, frame_set: FrameSet) -> None:
    _save_atomically(cache, frames=frame_set.frames, bounds=frame_set.bounds, mels=frame_set.mels)


def _save_atomically(cache: Path, **arrays: np.ndarray) -> None:
    partial = cache.with_suffix(".partial.npz")  # a killed run must not leave a torn cache
    try:
        np.savez(partial, **arrays)  # type: ignore[arg-type]
        partial.replace(cache)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BwvError(f"cannot write the frame cache {cache}: {exc.strerror or exc}") from None


def _compute_frames(utterances: list[Utterance], condition: str, model_name: str) -> FrameSet:
    from ingest.encoder import load_model

    model = load_model(model_name)
    transform = augmenter(condition, interfering_voices(utterances))
    audios = [trim_to_speech(transform(load_audio(u.path), i)) for i, u in enumerate(utterances)]
    frames: list[np.ndarray] = [np.zeros(0)] * len(utterances)
    mels: list[np.ndarray] = [np.zeros(0)] * len(utterances)
    for windows, order in _packed_batches(audios):
        for index, enc, mel in frames_per_piece(model, windows):
            frames[order[index]] = enc.astype(np.float16)
            mels[order[index]] = mel.T.astype(np.float16)
    lengths = np.array([len(f) for f in frames])
    ends = np.cumsum(lengths)
    bounds = np.stack([ends - lengths, ends], axis=1)
    return FrameSet(utterances, np.concatenate(frames), bounds, np.concatenate(mels))


def interfering_voices(utterances: list[Utterance]) -> Callable[[int], list[np.ndarray]]:
    """For the `hard` condition: per utterance, two recordings of other adults from the same
    fold of the default speaker split (one talks over, one is on the television), so the
    model that scores the utterance never heard them either."""
    from ingest.voice.training.crossval import speaker_folds

    speakers = np.array([u.speaker for u in utterances])
    adult = np.array([not u.child for u in utterances])
    folds = speaker_folds(speakers, (~adult).astype(float), 5)

    def voices(index: int) -> list[np.ndarray]:
        rng = np.random.default_rng([index, 2])
        pool = np.flatnonzero(adult & (folds == folds[index]) & (speakers != speakers[index]))
        chosen: list[int] = list(rng.choice(pool, size=min(2, len(pool)), replace=False))
        return [trim_to_speech(load_audio(utterances[int(i)].path)) for i in chosen]

    return voices


def _packed_batches(audios: list[np.ndarray]) -> Iterator[tuple[list[Window], np.ndarray]]:
    """Windows of utterances in a fixed shuffled order, ENCODE_BATCH windows at a time.

    Shuffling mixes speakers (and ages) within a window, as officer and child mix in a clip.
    """
    order = np.random.default_rng(762).permutation(len(audios))
    joined = np.concatenate([audios[i] for i in order])
    ends = np.cumsum([len(audios[i]) for i in order]) / SAMPLE_RATE
    pieces = [Piece(float(s), float(e)) for s, e in zip(np.r_[0.0, ends[:-1]], ends, strict=True)]
    windows = pack_windows(joined, pieces)
    for first in range(0, len(windows), ENCODE_BATCH):
        yield windows[first : first + ENCODE_BATCH], order


def frames_per_piece(
    model: WhisperModel, windows: list[Window]
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Each piece's encoder frames and log-mel frames, from one encoder call for the batch."""
    from ingest.encoder import encode, encoder_frames, frame_slice, log_mel

    features = log_mel(model, windows)
    states = encoder_frames(encode(model, features))
    for window, enc, mel in zip(windows, states, features, strict=True):
        for piece in window.pieces:
            span = frame_slice(piece.offset_s, piece.offset_s + piece.end_s - piece.start_s)
            yield piece.index, enc[span], mel[:, mel_span(span)]


# ---------------------------------------------------------------- embeddings


@dataclass
class Examples:
    """Pooled embeddings with the utterance each came from (crops share their source)."""

    x: np.ndarray  # [examples, features]
    source: np.ndarray  # [examples] utterance index in the FrameSet
    frames: np.ndarray  # [examples] number of encoder frames pooled


def embed_utterances(frame_set: FrameSet) -> Examples:
    """One embedding per whole utterance, as ingest pools one transcript segment."""
    counts = np.diff(frame_set.bounds, axis=1).ravel()
    rows = [frame_set.embedding(i) for i in range(len(counts))]
    return Examples(np.stack(rows), np.arange(len(rows)), counts)


def embed_crops(frame_set: FrameSet, seconds: tuple[float, float], seed: int) -> Examples:
    """One random crop per utterance, `seconds` long (uniform), like a short transcript segment.

    Utterances shorter than the drawn length are used whole.
    """
    rng = np.random.default_rng(seed)
    rows, counts = [], []
    for i in range(len(frame_set.bounds)):
        frames = frame_set.of(i)
        length = min(len(frames), max(1, round(rng.uniform(*seconds) / FRAME_S)))
        start = int(rng.integers(0, len(frames) - length + 1))
        rows.append(frame_set.embedding(i, slice(start, start + length)))
        counts.append(length)
    return Examples(np.stack(rows), np.arange(len(rows)), np.array(counts))

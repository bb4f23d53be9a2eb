"""Training and evaluating the child-voice classifier on a labelled folder of utterances.

The classifier only ever sees what ingest computes: utterances are trimmed to speech (as VAD
would), packed several to a 30 s window with `ingest.encoder.pack_windows`, each window is
encoded once, and each utterance pools the encoder frames that fall inside it. Utterances
from different speakers share windows, as the officer and the child do in a real clip, so the
self-attention context a segment sees at training time is as mixed as in the field.

Body-worn audio is far-field, noisy, gain-ridden and AAC-compressed while the training data is
close-talk studio speech, so training can add augmented copies of every utterance. Encoder
frames are cached under /tmp because the encoder dominates the cost and the same frames serve
every pooling and classifier experiment.

Every figure is speaker-disjoint: folds are drawn by speaker, never by utterance, because an
utterance-level split lets a classifier recognise voices instead of ages.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bwv.errors import BwvError
from ingest.encoder import SAMPLE_RATE, Piece, Window, pack_windows

CHILD_MAX_AGE = 12  # child means aged 12 or under, as the compliance policy defines it
REQUIRED_COLUMNS = ("file", "speaker", "age")
CACHE_DIR = Path("/tmp/bwv-voice-cache")
ENCODE_BATCH = 8  # windows per encoder call: amortises the call without much memory
AUGMENTATIONS = ("clean", "bodyworn1", "bodyworn2")


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
    """Encoder frames of every utterance in a folder under one augmentation condition."""

    utterances: list[Utterance]
    frames: np.ndarray  # [total frames, d_model] float16, utterances back to back
    bounds: np.ndarray  # [utterances, 2] first and end row of each utterance in `frames`

    def of(self, index: int) -> np.ndarray:
        start, end = self.bounds[index]
        return self.frames[start:end].astype(np.float32)

    @property
    def labels(self) -> np.ndarray:
        return np.array([u.child for u in self.utterances], dtype=np.float64)

    @property
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


# ---------------------------------------------------------------- augmentation


def augment_bodyworn(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random chain of what a chest camera does to speech: room, noise, gain, AAC."""
    if rng.random() < 0.5:
        audio = add_reverb(audio, rng, rt60_s=rng.uniform(0.2, 0.9))
    if rng.random() < 0.8:
        audio = add_noise(audio, rng, snr_db=rng.uniform(0.0, 20.0))
    if rng.random() < 0.4:
        audio = gain_and_clip(audio, gain_db=rng.uniform(-12.0, 18.0))
    if rng.random() < 0.7:
        audio = aac_round_trip(audio, bit_rate=int(rng.choice([16_000, 24_000, 32_000])))
    return audio


def add_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """Adds white, pink, brown or hum-like noise at the given signal-to-noise ratio."""
    noise = _coloured_noise(len(audio), rng, exponent=rng.choice([0.0, 1.0, 2.0]))
    if rng.random() < 0.25:  # mains hum and its harmonics, common on vehicle audio
        t = np.arange(len(audio)) / SAMPLE_RATE
        base = rng.choice([50.0, 60.0])
        noise = noise + sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 2, 3))
    signal_power = float(np.mean(audio**2)) + 1e-12
    noise_power = float(np.mean(noise**2)) + 1e-12
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def _coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return noise / (np.std(noise) + 1e-12)


def add_reverb(audio: np.ndarray, rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """Convolves with a synthetic room: a direct path plus exponentially decaying noise."""
    length = int(rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections arrive a few ms late
    response = tail * rng.uniform(0.1, 0.6) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    response[0] = 1.0
    wet = np.fft.irfft(
        np.fft.rfft(audio, len(audio) + length) * np.fft.rfft(response, len(audio) + length)
    )[: len(audio)]
    return (wet * np.max(np.abs(audio)) / (np.max(np.abs(wet)) + 1e-12)).astype(np.float32)


def gain_and_clip(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """A gain change, clipped at full scale as an overdriven camera microphone would."""
    return np.clip(audio * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


def aac_round_trip(audio: np.ndarray, bit_rate: int) -> np.ndarray:
    """Encodes to AAC with PyAV at `bit_rate` and decodes back, aligned to the input."""
    import av
    from faster_whisper.audio import decode_audio

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buffer.seek(0)
    decoded = decode_audio(buffer, sampling_rate=SAMPLE_RATE)
    delay = 1024  # the AAC encoder's priming samples
    decoded = decoded[delay : delay + len(audio)]
    return np.pad(decoded, (0, len(audio) - len(decoded))).astype(np.float32)


def augmenter(condition: str) -> Callable[[np.ndarray, int], np.ndarray]:
    """The audio transform of a condition name, seeded per utterance so caches are stable."""
    if condition == "clean":
        return lambda audio, _index: audio
    if condition.startswith("bodyworn"):
        seed = int(condition.removeprefix("bodyworn") or 0)
        return lambda audio, index: augment_bodyworn(
            audio, np.random.default_rng([seed, index])
        )
    raise ValueError(f"unknown augmentation {condition!r}")


# ---------------------------------------------------------------- frame extraction


def extract_frames(
    utterances: list[Utterance], condition: str = "clean", model_name: str = "tiny.en"
) -> FrameSet:
    """Encoder frames of every utterance, from the /tmp cache when already computed."""
    cache = _cache_path(utterances, condition, model_name)
    if cache.is_file():
        with np.load(cache) as saved:
            return FrameSet(utterances, saved["frames"], saved["bounds"])
    frame_set = _compute_frames(utterances, condition, model_name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, frames=frame_set.frames, bounds=frame_set.bounds)
    return frame_set


def _cache_path(utterances: list[Utterance], condition: str, model_name: str) -> Path:
    digest = hashlib.sha256(f"{model_name}|{condition}|v1".encode())
    for u in utterances:
        stat = u.path.stat()
        digest.update(f"{u.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return CACHE_DIR / f"frames-{condition}-{digest.hexdigest()[:16]}.npz"


def _compute_frames(utterances: list[Utterance], condition: str, model_name: str) -> FrameSet:
    from ingest.encoder import load_model

    model = load_model(model_name)
    transform = augmenter(condition)
    audios = [trim_to_speech(transform(load_audio(u.path), i)) for i, u in enumerate(utterances)]
    pooled: list[np.ndarray | None] = [None] * len(utterances)
    for windows, order in _packed_batches(audios):
        for index, frames in _frames_per_piece(model, windows):
            pooled[order[index]] = frames.astype(np.float16)
    lengths = np.array([len(p) for p in pooled if p is not None])
    ends = np.cumsum(lengths)
    bounds = np.stack([ends - lengths, ends], axis=1)
    return FrameSet(utterances, np.concatenate([p for p in pooled if p is not None]), bounds)


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


def _frames_per_piece(model, windows: list[Window]) -> Iterator[tuple[int, np.ndarray]]:  # type: ignore[no-untyped-def]
    from ingest.encoder import encode, encoder_frames, frame_slice, log_mel

    states = encoder_frames(encode(model, log_mel(model, windows)))
    for window, frames in zip(windows, states, strict=True):
        for piece in window.pieces:
            span = frame_slice(piece.offset_s, piece.offset_s + piece.end_s - piece.start_s)
            yield piece.index, frames[span]

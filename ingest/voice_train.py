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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bwv.errors import BwvError
from ingest.encoder import FRAME_S, SAMPLE_RATE, Piece, Window, pack_windows
from ingest.voice import ChildVoiceModel, segment_embedding

CHILD_MAX_AGE = 12  # child means aged 12 or under, as the compliance policy defines it
REQUIRED_COLUMNS = ("file", "speaker", "age")
CACHE_DIR = Path("/tmp/bwv-voice-cache")
ENCODE_BATCH = 8  # windows per encoder call: amortises the call without much memory
MODEL_NAME = "bwv-child-voice"
MODEL_VERSION = "1.0"


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
    positions: np.ndarray  # [utterances] index of each utterance's first frame in its window

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
    """The audio transform of a condition name, seeded per utterance so caches are stable.

    A condition is `clean` or `bodyworn<seed>`, optionally followed by `/p<k>` to pack the
    utterances in another order (other window neighbours: a context augmentation).
    """
    condition = condition.split("/")[0]
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
            if "positions" in saved:
                return FrameSet(utterances, saved["frames"], saved["bounds"], saved["positions"])
    frame_set = _compute_frames(utterances, condition, model_name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache, frames=frame_set.frames, bounds=frame_set.bounds, positions=frame_set.positions
    )
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
    pooled: list[np.ndarray] = [np.zeros((0, 0), np.float16)] * len(utterances)
    positions = np.zeros(len(utterances), dtype=np.int64)
    for windows, order in _packed_batches(audios, _packing_seed(condition)):
        for index, span, frames in _frames_per_piece(model, windows):
            pooled[order[index]] = frames[span].astype(np.float16)
            positions[order[index]] = span.start
    lengths = np.array([len(p) for p in pooled])
    ends = np.cumsum(lengths)
    bounds = np.stack([ends - lengths, ends], axis=1)
    return FrameSet(utterances, np.concatenate(pooled), bounds, positions)


def _packing_seed(condition: str) -> int:
    _, _, packing = condition.partition("/p")
    return 762 + int(packing or 0)


def _packed_batches(
    audios: list[np.ndarray], seed: int
) -> Iterator[tuple[list[Window], np.ndarray]]:
    """Windows of utterances in a seeded shuffled order, ENCODE_BATCH windows at a time.

    Shuffling mixes speakers (and ages) within a window, as officer and child mix in a clip.
    """
    order = np.random.default_rng(seed).permutation(len(audios))
    joined = np.concatenate([audios[i] for i in order])
    ends = np.cumsum([len(audios[i]) for i in order]) / SAMPLE_RATE
    pieces = [Piece(float(s), float(e)) for s, e in zip(np.r_[0.0, ends[:-1]], ends, strict=True)]
    windows = pack_windows(joined, pieces)
    for first in range(0, len(windows), ENCODE_BATCH):
        yield windows[first : first + ENCODE_BATCH], order


def _frames_per_piece(model, windows: list[Window]) -> Iterator[tuple[int, slice, np.ndarray]]:  # type: ignore[no-untyped-def]
    from ingest.encoder import encode, encoder_frames, frame_slice, log_mel

    states = encoder_frames(encode(model, log_mel(model, windows)))
    for window, frames in zip(windows, states, strict=True):
        for piece in window.pieces:
            span = frame_slice(piece.offset_s, piece.offset_s + piece.end_s - piece.start_s)
            yield piece.index, span, frames


# ---------------------------------------------------------------- embeddings


@dataclass
class Examples:
    """Pooled embeddings with the utterance each came from (crops share their source)."""

    x: np.ndarray  # [examples, features]
    source: np.ndarray  # [examples] utterance index in the FrameSet
    frames: np.ndarray  # [examples] number of encoder frames pooled


def embed_utterances(frame_set: FrameSet) -> Examples:
    """One embedding per whole utterance, as ingest pools one transcript segment."""
    rows = [segment_embedding(frame_set.of(i), slice(None)) for i in range(len(frame_set.bounds))]
    counts = np.diff(frame_set.bounds, axis=1).ravel()
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
        rows.append(segment_embedding(frames, slice(start, start + length)))
        counts.append(length)
    return Examples(np.stack(rows), np.arange(len(rows)), np.array(counts))


# ---------------------------------------------------------------- the classifier


Layers = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class NetConfig:
    """A one-hidden-layer ReLU network (hidden=0: logistic regression), trained with Adam.

    Heavy regularisation (weight decay, dropout, few epochs) because 125 speakers are few:
    the network must learn age, not the training voices.
    """

    hidden: int = 64
    epochs: int = 25
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    batch: int = 128
    members: int = 1  # networks averaged in logit space; more members, less variance


def fit_networks(x: np.ndarray, y: np.ndarray, config: NetConfig, seed: int = 0) -> list[Layers]:
    """`config.members` networks on standardised `x`, each from its own seed."""
    return [fit_network(x, y, config, seed * 1000 + member) for member in range(config.members)]


def fit_network(x: np.ndarray, y: np.ndarray, config: NetConfig, seed: int) -> Layers:
    rng = np.random.default_rng(seed)
    params = _initial_params(x.shape[1], config.hidden, rng)
    adam = _Adam(params, config.learning_rate)
    for _ in range(config.epochs):
        order = rng.permutation(len(x))
        for first in range(0, len(x), config.batch):
            rows = order[first : first + config.batch]
            adam.step(_gradients(params, x[rows], y[rows], config, rng))
    pairs = list(zip(params[::2], params[1::2], strict=True))
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in pairs]


def _initial_params(features: int, hidden: int, rng: np.random.Generator) -> list[np.ndarray]:
    if hidden == 0:
        return [np.zeros((features, 1)), np.zeros(1)]
    return [
        rng.standard_normal((features, hidden)) * np.sqrt(2 / features),  # He, for ReLU
        np.zeros(hidden),
        rng.standard_normal((hidden, 1)) * np.sqrt(1 / hidden),
        np.zeros(1),
    ]


def _gradients(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray, config: NetConfig, rng: np.random.Generator
) -> list[np.ndarray]:
    """Cross-entropy gradients of one mini-batch, with dropout and L2 weight decay."""
    if len(params) == 2:
        error = (_sigmoid(x @ params[0] + params[1]).ravel() - y)[:, None] / len(x)
        return [x.T @ error + config.weight_decay * params[0], error.sum(0)]
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    keep = (rng.random(pre.shape) >= config.dropout) / (1 - config.dropout)
    hidden = np.maximum(pre, 0) * keep
    error = (_sigmoid(hidden @ w2 + b2).ravel() - y)[:, None] / len(x)
    back = (error @ w2.T) * keep * (pre > 0)
    return [
        x.T @ back + config.weight_decay * w1,
        back.sum(0),
        hidden.T @ error + config.weight_decay * w2,
        error.sum(0),
    ]


class _Adam:
    """Adam (Kingma & Ba) updating the parameter arrays in place."""

    def __init__(self, params: list[np.ndarray], learning_rate: float) -> None:
        self.params, self.rate, self.t = params, learning_rate, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m += 0.1 * (g - m)
            v += 0.001 * (g * g - v)
            p -= self.rate * (m / (1 - 0.9**self.t)) / (np.sqrt(v / (1 - 0.999**self.t)) + 1e-8)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: slope and intercept maximising the likelihood of held-out logits.

    Newton's method on two parameters, with a tiny ridge so separable data stays finite.
    """
    design = np.stack([logits, np.ones_like(logits)], axis=1)
    coef = np.zeros(2)
    for _ in range(50):
        p = _sigmoid(design @ coef)
        grad = design.T @ (p - y) + 1e-3 * coef
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        coef -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(coef[0]), float(coef[1])


# ---------------------------------------------------------------- speaker-disjoint folds


def speaker_folds(speakers: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The fold of each utterance; whole speakers per fold, children spread evenly."""
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for label in (0.0, 1.0):
        group = rng.permutation(sorted(set(speakers[labels == label])))
        fold_of.update({str(s): i % k for i, s in enumerate(group)})
    return np.array([fold_of[str(s)] for s in speakers])


def fit_model(
    sets: list[Examples], labels: np.ndarray, use: np.ndarray, config: NetConfig, seed: int = 0
) -> ChildVoiceModel:
    """An uncalibrated classifier from the examples whose source utterance has `use` true."""
    x = np.concatenate([s.x[use[s.source]] for s in sets])
    y = np.concatenate([labels[s.source[use[s.source]]] for s in sets])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    networks = fit_networks((x - mean) / scale, y, config, seed)
    return ChildVoiceModel(MODEL_NAME, MODEL_VERSION, mean, scale, networks)


@dataclass
class CrossValidation:
    """Per-fold models trained without the fold's speakers, for out-of-fold scoring."""

    folds: np.ndarray
    models: list[ChildVoiceModel]
    calibrations: list[tuple[float, float]] = field(default_factory=list)

    def logits(self, examples: Examples) -> np.ndarray:
        """Each example scored by the model that never saw its speaker."""
        fold = self.folds[examples.source]
        out = np.zeros(len(examples.x))
        for f, model in enumerate(self.models):
            if np.any(fold == f):
                out[fold == f] = model.logits(examples.x[fold == f])
        return out

    def calibrate(self, sets: list[Examples], labels: np.ndarray) -> tuple[float, float]:
        """Cross-fitted Platt scaling (each fold's from the other folds' out-of-fold logits),
        so calibration figures are honest; returns the scaling fitted on all folds."""
        logits = np.concatenate([self.logits(e) for e in sets])
        source = np.concatenate([e.source for e in sets])
        fold = self.folds[source]
        self.calibrations = [
            fit_platt(logits[fold != f], labels[source[fold != f]]) for f in range(len(self.models))
        ]
        return fit_platt(logits, labels[source])

    def probabilities(self, examples: Examples) -> np.ndarray:
        logits, fold = self.logits(examples), self.folds[examples.source]
        out = np.zeros(len(logits))
        for f, (slope, intercept) in enumerate(self.calibrations):
            out[fold == f] = _sigmoid(slope * logits[fold == f] + intercept)
        return out


def cross_validate(
    sets: list[Examples], labels: np.ndarray, folds: np.ndarray, config: NetConfig
) -> CrossValidation:
    models = [
        fit_model(sets, labels, folds != f, config, seed=f) for f in range(int(folds.max()) + 1)
    ]
    return CrossValidation(folds, models)


# ---------------------------------------------------------------- figures


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties sharing their mean rank.

    NaN when only one class is present: an AUC is then undefined, not 0.5.
    """
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of each distinct value
    ranks = (first_rank + (counts - 1) / 2)[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Mean |observed child rate - mean probability| over ten equal-width bins, by count."""
    which = np.minimum((probs * bins).astype(int), bins - 1)
    gaps = [
        np.sum(which == b) * abs(labels[which == b].mean() - probs[which == b].mean())
        for b in range(bins)
        if np.any(which == b)
    ]
    return float(np.sum(gaps) / len(probs))


@dataclass(frozen=True)
class Scores:
    """How well probabilities separate children from adults, and how honest they are."""

    utterances: int
    speakers: int
    child_speakers: int
    utterance_auc: float
    speaker_auc: float
    threshold: float
    precision: float
    recall: float
    false_positive_rate: float
    ece: float
    brier: float

    def lines(self) -> list[str]:
        return [
            f"utterances {self.utterances}, speakers {self.speakers} "
            f"({self.child_speakers} children aged {CHILD_MAX_AGE} or under)",
            f"utterance AUC {self.utterance_auc:.3f}",
            f"speaker AUC {self.speaker_auc:.3f} (speaker score = mean utterance probability)",
            f"at threshold {self.threshold:.2f}: precision {self.precision:.3f}, "
            f"recall {self.recall:.3f}, adult utterances called child "
            f"{self.false_positive_rate:.3f}",
            f"calibration: expected calibration error {self.ece:.3f}, Brier score {self.brier:.3f}",
        ]


def score(labels: np.ndarray, probs: np.ndarray, speakers: np.ndarray, threshold: float) -> Scores:
    labels = np.asarray(labels, dtype=float)
    names = sorted(set(speakers.tolist()))
    speaker_labels = np.array([labels[speakers == s][0] for s in names])
    speaker_probs = np.array([probs[speakers == s].mean() for s in names])
    called = probs >= threshold
    return Scores(
        utterances=len(labels),
        speakers=len(names),
        child_speakers=int(speaker_labels.sum()),
        utterance_auc=auc(labels, probs),
        speaker_auc=auc(speaker_labels, speaker_probs),
        threshold=threshold,
        precision=_ratio(np.sum(called & (labels == 1)), np.sum(called)),
        recall=_ratio(np.sum(called & (labels == 1)), np.sum(labels == 1)),
        false_positive_rate=_ratio(np.sum(called & (labels == 0)), np.sum(labels == 0)),
        ece=expected_calibration_error(labels, probs),
        brier=float(np.mean((probs - labels) ** 2)),
    )


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


# ---------------------------------------------------------------- false child attribution


@dataclass(frozen=True)
class FalseAttribution:
    """How often an adult-only conversation sums to enough "child" speech to count."""

    conversations: int
    conversation_s: float
    segments: int
    threshold: float
    min_child_s: float
    rate: float  # share of conversations with at least min_child_s of segments called child
    segment_rate: float  # share of adult segments called child
    mean_child_s: float

    def line(self) -> str:
        return (
            f"false child attribution: {self.rate:.1%} of {self.conversations} simulated "
            f"{self.conversation_s / 60:.0f}-minute adult-only conversations reach "
            f"{self.min_child_s:g} s of speech with p >= {self.threshold:.2f} "
            f"({self.segment_rate:.1%} of {self.segments} adult segments of 2-8 s; "
            f"mean {self.mean_child_s:.1f} s per conversation)"
        )


def simulate_conversations(
    frame_set: FrameSet, folds: np.ndarray, count: int, length_s: float = 120.0, seed: int = 0
) -> tuple[Examples, np.ndarray]:
    """Two adults of one test fold taking turns in segments of 2-8 s for `length_s` seconds.

    Segments are crops of their utterances (whole when shorter). Returns the segments and the
    conversation each belongs to.
    """
    rng = np.random.default_rng(seed)
    adults = frame_set.labels == 0
    rows, sources, counts, conversation = [], [], [], []
    for c in range(count):
        speakers = _two_adults(frame_set.speakers[adults & (folds == c % (folds.max() + 1))], rng)
        total = 0.0
        while total < length_s:
            index = int(rng.choice(np.flatnonzero(frame_set.speakers == speakers[len(rows) % 2])))
            frames = frame_set.of(index)
            length = min(len(frames), round(rng.uniform(2.0, 8.0) / FRAME_S))
            start = int(rng.integers(0, len(frames) - length + 1))
            rows.append(segment_embedding(frames, slice(start, start + length)))
            sources.append(index)
            counts.append(length)
            conversation.append(c)
            total += length * FRAME_S
    examples = Examples(np.stack(rows), np.array(sources), np.array(counts))
    return examples, np.array(conversation)


def _two_adults(speakers: np.ndarray, rng: np.random.Generator) -> list[str]:
    names = sorted(set(speakers.tolist()))
    return [str(s) for s in rng.choice(names, size=2, replace=len(names) < 2)]


def false_attribution(
    probs: np.ndarray, segments: Examples, conversation: np.ndarray, threshold: float,
    min_child_s: float = 2.0, length_s: float = 120.0,
) -> FalseAttribution:
    seconds = segments.frames * FRAME_S * (probs >= threshold)
    per_conversation = np.bincount(conversation, weights=seconds)
    return FalseAttribution(
        conversations=len(per_conversation),
        conversation_s=length_s,
        segments=len(probs),
        threshold=threshold,
        min_child_s=min_child_s,
        rate=float(np.mean(per_conversation >= min_child_s)),
        segment_rate=float(np.mean(probs >= threshold)),
        mean_child_s=float(per_conversation.mean()),
    )

"""Training and evaluating the child-voice classifier on a labelled folder of utterances.

The classifier only ever sees what ingest computes: utterances are trimmed to speech (as VAD
would), packed several to a 30 s window with `ingest.encoder.pack_windows`, each window is
encoded once, and each utterance pools the encoder frames (and the log-mel frames fed to the
encoder) that fall inside it. Utterances
from different speakers share windows, as the officer and the child do in a real clip, so the
self-attention context a segment sees at training time is as mixed as in the field.

Body-worn audio is far-field, noisy, gain-ridden and AAC-compressed while the training data is
close-talk studio speech, so training adds augmented copies of every utterance and reports
cross-validation with and without them. Frames are cached under /tmp because the encoder
dominates the cost and the same frames serve every pooling and classifier experiment.

Per-segment AUC says little about the compliance question (did a clip capture a child?), so
training also simulates two-minute conversations of unseen speakers and reports how often
clip rules ("p >= t for at least s seconds") fire on adult-only speech and find a child.

Every figure is speaker-disjoint: folds are drawn by speaker, never by utterance, because an
utterance-level split lets a classifier recognise voices instead of ages.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bwv.core.child_speech import DEFAULT_THRESHOLD
from bwv.core.errors import BwvError
from ingest.encoder import FRAME_S, SAMPLE_RATE, Piece, Window, pack_windows
from ingest.voice.model import MELS_PER_FRAME, ChildVoiceModel, mel_span, segment_embedding
from ingest.voice.speakers import fit_speaker_space

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

CHILD_MAX_AGE = 12  # child means aged 12 or under, as the compliance policy defines it
REQUIRED_COLUMNS = ("file", "speaker", "age")
CACHE_DIR = Path("/tmp/bwv-voice-cache")
ENCODE_BATCH = 8  # windows per encoder call: amortises the call without much memory
# Speech counts as a child's when its speaker group's pooled probability reaches this: the
# compliance policy's default too. Chosen from the simulated conversations `train` prints:
# the highest sensitivity that keeps adult-only clips called child "rarely" (a few %).
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
    """Encoder frames and log-mel frames of every utterance under one augmentation condition.

    Both are exactly the slices ingest would pool for a segment spanning the utterance.
    """

    utterances: list[Utterance]
    frames: np.ndarray  # [total frames, d_model] float16, utterances back to back
    bounds: np.ndarray  # [utterances, 2] first and end row of each utterance in `frames`
    mels: np.ndarray  # [total mel frames, n_mels] float16, two per encoder frame

    def of(self, index: int) -> np.ndarray:
        start, end = self.bounds[index]
        return self.frames[start:end].astype(np.float32)

    def mel_of(self, index: int) -> np.ndarray:
        """[n_mels, 2 * frames], laid out as `ingest.encoder.log_mel` gives a window."""
        start, end = self.bounds[index] * MELS_PER_FRAME
        return self.mels[start:end].T.astype(np.float32)

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
    """The audio transform of a condition (`clean` or `bodyworn<seed>`), seeded per utterance
    so the cached frames of a condition never change."""
    if condition == "clean":
        return lambda audio, _index: audio
    if condition.startswith("bodyworn"):
        seed = int(condition.removeprefix("bodyworn") or 0)
        return lambda audio, index: augment_bodyworn(audio, np.random.default_rng([seed, index]))
    raise ValueError(f"unknown augmentation {condition!r}")


# ---------------------------------------------------------------- frame extraction


def extract_frames(
    utterances: list[Utterance],
    condition: str = "clean",
    model_name: str = "tiny.en",
    cache_frames: bool = True,
) -> FrameSet:
    """Encoder and mel frames of every utterance, from the /tmp cache when computed before.

    Evaluation passes `cache_frames=False`: a reviewer's own recordings may be sensitive,
    and features derived from them should not linger in a shared temporary folder.
    """
    if not cache_frames:
        return _compute_frames(utterances, condition, model_name)
    cache = _cache_path(utterances, condition, model_name)
    if cache.is_file():
        with np.load(cache) as saved:
            return FrameSet(utterances, saved["frames"], saved["bounds"], saved["mels"])
    frame_set = _compute_frames(utterances, condition, model_name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")  # a killed run must not leave a torn cache
    np.savez(partial, frames=frame_set.frames, bounds=frame_set.bounds, mels=frame_set.mels)
    partial.replace(cache)
    return frame_set


def _cache_path(utterances: list[Utterance], condition: str, model_name: str) -> Path:
    digest = hashlib.sha256(f"{model_name}|{condition}|v2".encode())
    for u in utterances:
        stat = u.path.stat()
        digest.update(f"{u.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return CACHE_DIR / f"frames-{condition}-{digest.hexdigest()[:16]}.npz"


def _compute_frames(utterances: list[Utterance], condition: str, model_name: str) -> FrameSet:
    from ingest.encoder import load_model

    model = load_model(model_name)
    transform = augmenter(condition)
    audios = [trim_to_speech(transform(load_audio(u.path), i)) for i, u in enumerate(utterances)]
    frames: list[np.ndarray] = [np.zeros(0)] * len(utterances)
    mels: list[np.ndarray] = [np.zeros(0)] * len(utterances)
    for windows, order in _packed_batches(audios):
        for index, enc, mel in _frames_per_piece(model, windows):
            frames[order[index]] = enc.astype(np.float16)
            mels[order[index]] = mel.T.astype(np.float16)
    lengths = np.array([len(f) for f in frames])
    ends = np.cumsum(lengths)
    bounds = np.stack([ends - lengths, ends], axis=1)
    return FrameSet(utterances, np.concatenate(frames), bounds, np.concatenate(mels))


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


def _frames_per_piece(
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
    rows = [
        segment_embedding(frame_set.of(i), slice(0, int(n)), frame_set.mel_of(i))
        for i, n in enumerate(counts)
    ]
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
        rows.append(segment_embedding(frames, slice(start, start + length), frame_set.mel_of(i)))
        counts.append(length)
    return Examples(np.stack(rows), np.arange(len(rows)), np.array(counts))


# ---------------------------------------------------------------- the classifier


Layers = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class NetConfig:
    """Logistic regression (hidden=0, the shipped choice) or a one-hidden-layer ReLU network,
    trained with Adam on mini-batches.

    Heavy regularisation because 125 speakers are few: the classifier must learn age, not
    the training voices. A 64-unit network (dropout 0.3, 25 epochs, decay 0.01) matched but
    did not beat logistic regression in speaker-disjoint cross-validation, so the simpler
    model ships.
    """

    hidden: int = 0
    epochs: int = 60
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    dropout: float = 0.3  # hidden units only
    batch: int = 128
    members: int = 1  # networks averaged in logit space (useful for hidden > 0 only)


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
    params: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    config: NetConfig,
    rng: np.random.Generator,
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
    sets: list[Examples],
    labels: np.ndarray,
    use: np.ndarray,
    config: NetConfig,
    seed: int = 0,
    speakers: np.ndarray | None = None,
) -> ChildVoiceModel:
    """An uncalibrated classifier from the examples whose source utterance has `use` true;
    given `speakers`, also the speaker space its clips' segments are grouped in."""
    x = np.concatenate([s.x[use[s.source]] for s in sets])
    y = np.concatenate([labels[s.source[use[s.source]]] for s in sets])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    networks = fit_networks((x - mean) / scale, y, config, seed)
    model = ChildVoiceModel(MODEL_NAME, MODEL_VERSION, mean, scale, networks)
    if speakers is not None:
        who = np.concatenate([speakers[s.source[use[s.source]]] for s in sets])
        model.speakers = fit_speaker_space((x - mean) / scale, who)
    return model


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

    def calibrate(
        self, sets: list[Examples], labels: np.ndarray, final_use: np.ndarray
    ) -> tuple[float, float]:
        """Cross-fitted Platt scaling (each fold's from the other folds' out-of-fold logits),
        so calibration figures are honest; returns the scaling fitted on every fold's
        utterances that `final_use` marks, for the final model."""
        logits = np.concatenate([self.logits(e) for e in sets])
        source = np.concatenate([e.source for e in sets])
        fold = self.folds[source]
        self.calibrations = [
            fit_platt(logits[fold != f], labels[source[fold != f]]) for f in range(len(self.models))
        ]
        use = final_use[source]
        return fit_platt(logits[use], labels[source[use]])

    def probabilities(self, examples: Examples) -> np.ndarray:
        logits, fold = self.logits(examples), self.folds[examples.source]
        out = np.zeros(len(logits))
        for f, (slope, intercept) in enumerate(self.calibrations):
            out[fold == f] = _sigmoid(slope * logits[fold == f] + intercept)
        return out

    def speaker_probabilities(self, examples: Examples, clip: np.ndarray) -> np.ndarray:
        """Each clip's segments grouped by voice as ingest groups them, by the model (and
        speaker space) of the fold the clip's speakers were held out from."""
        out = np.zeros(len(examples.x))
        for c in np.unique(clip):
            chosen = clip == c
            f = int(self.folds[examples.source[chosen][0]])
            model = replace(self.models[f], calibration=self.calibrations[f])
            seconds = examples.frames[chosen] * FRAME_S
            out[chosen] = model.attribute(examples.x[chosen], seconds).speaker_probabilities
        return out


def cross_validate(
    sets: list[Examples],
    labels: np.ndarray,
    folds: np.ndarray,
    config: NetConfig,
    speakers: np.ndarray | None = None,
) -> CrossValidation:
    models = [
        fit_model(sets, labels, folds != f, config, seed=f, speakers=speakers)
        for f in range(int(folds.max()) + 1)
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
            f"utterance AUC {_figure(self.utterance_auc)}",
            f"speaker AUC {_figure(self.speaker_auc)} (speaker score = mean utterance probability)",
            f"at threshold {self.threshold:.2f}: precision {_figure(self.precision)}, "
            f"recall {_figure(self.recall)}, adult utterances called child "
            f"{_figure(self.false_positive_rate)}",
            f"calibration: expected calibration error {self.ece:.3f}, Brier score {self.brier:.3f}",
        ]


def _figure(value: float) -> str:
    """Three decimals, or why there is no value (an AUC needs children and adults)."""
    return "n/a (needs both children and adults)" if value != value else f"{value:.3f}"


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


def _ratio(numerator: Any, denominator: Any) -> float:
    return float(numerator / denominator) if denominator else float("nan")


# ---------------------------------------------------------------- false child attribution


CHILD_TURN_SHARE = 0.25  # in simulated adult-and-child conversations, the child's turns
RULE_THRESHOLDS = (0.5, 0.7, 0.8, 0.9)
GROUPED_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75)
RULE_MIN_CHILD_S = (2.0, 5.0, 10.0, 20.0)


@dataclass
class Conversations:
    """Simulated conversations of test-fold speakers, scored by models that never heard them."""

    kind: str  # "adult-only" or "adult-and-child"
    segments: Examples
    conversation: np.ndarray  # [segments] conversation index
    probs: np.ndarray  # [segments] calibrated out-of-fold child probability, segment alone
    speaker_probs: np.ndarray  # [segments] its speaker group's pooled probability
    length_s: float

    def child_seconds(self, threshold: float, grouped: bool = False) -> np.ndarray:
        """Per conversation, the seconds of segments with probability >= threshold."""
        probs = self.speaker_probs if grouped else self.probs
        seconds = self.segments.frames * FRAME_S * (probs >= threshold)
        return np.bincount(self.conversation, weights=seconds)

    def rate(self, threshold: float, min_child_s: float, grouped: bool = False) -> float:
        """Share of conversations a `min_child_s` over `threshold` rule would call child."""
        return float(np.mean(self.child_seconds(threshold, grouped) >= min_child_s))


def simulate_conversations(
    frame_set: FrameSet,
    folds: np.ndarray,
    count: int,
    with_child: bool = False,
    length_s: float = 120.0,
    seed: int = 0,
) -> tuple[Examples, np.ndarray]:
    """Two speakers of one test fold taking turns in segments of 2-8 s for `length_s` seconds.

    Two adults alternate; or an adult talks with a child who takes a quarter of the turns.
    Segments are crops of their utterances (whole when shorter). Returns the segments and the
    conversation each belongs to.
    """
    rng = np.random.default_rng([seed, int(with_child)])
    turns: list[tuple[int, int, slice]] = []  # conversation, utterance, frames
    for c in range(count):
        in_fold = folds == c % (int(folds.max()) + 1)
        pair = _pair(frame_set, in_fold, with_child, rng)
        share = CHILD_TURN_SHARE if with_child else 0.5
        turns += [(c, i, span) for i, span in _turns(frame_set, pair, share, length_s, rng)]
    rows = [segment_embedding(frame_set.of(i), span, frame_set.mel_of(i)) for _, i, span in turns]
    lengths = np.array([span.stop - span.start for _, _, span in turns])
    examples = Examples(np.stack(rows), np.array([t[1] for t in turns]), lengths)
    return examples, np.array([t[0] for t in turns])


def _pair(
    frame_set: FrameSet, in_fold: np.ndarray, with_child: bool, rng: np.random.Generator
) -> list[str]:
    adults = sorted(set(frame_set.speakers[in_fold & (frame_set.labels == 0)].tolist()))
    children = sorted(set(frame_set.speakers[in_fold & (frame_set.labels == 1)].tolist()))
    if with_child:
        return [str(rng.choice(adults)), str(rng.choice(children))]
    return [str(s) for s in rng.choice(adults, size=2, replace=len(adults) < 2)]


def _turns(
    frame_set: FrameSet, pair: list[str], share: float, length_s: float, rng: np.random.Generator
) -> list[tuple[int, slice]]:
    turns: list[tuple[int, slice]] = []
    total = 0.0
    while total < length_s:
        speaker = pair[1] if rng.random() < share else pair[0]
        index = int(rng.choice(np.flatnonzero(frame_set.speakers == speaker)))
        available = int(frame_set.bounds[index][1] - frame_set.bounds[index][0])
        length = min(available, round(rng.uniform(2.0, 8.0) / FRAME_S))
        start = int(rng.integers(0, available - length + 1))
        turns.append((index, slice(start, start + length)))
        total += length * FRAME_S
    return turns


@dataclass(frozen=True)
class FalseAttribution:
    """How often a clip rule calls a child in adult-only speech, and finds one when present:
    with the clip's segments grouped by speaker (what ingest does), and judged alone."""

    condition: str
    conversations: int
    conversation_s: float
    threshold: float  # the shipped threshold, on the speaker-grouped probability
    segment_rate: float  # share of adult segments (2-8 s) alone with p >= the threshold
    # (threshold, adult-only conversations called child, with-child found), >= 2 s, grouped
    grouped: list[tuple[float, float, float]]
    # (threshold, min child seconds, adult-only called child, with-child found), alone
    rules: list[tuple[float, float, float, float]]

    def lines(self) -> list[str]:
        shipped = next(row for row in self.grouped if row[0] == self.threshold)
        share = f"child in {CHILD_TURN_SHARE:.0%} of turns"
        return [
            f"false child attribution ({self.condition}), segments grouped by speaker: "
            f"{shipped[1]:.1%} of {self.conversations} simulated "
            f"{self.conversation_s / 60:g}-minute adult-only conversations reach 2 s with "
            f"speaker p >= {self.threshold:.2f}; a child is found in {shipped[2]:.1%} ({share})",
            "  grouped by speaker, >= 2 s: adult-only called child / child found",
            *(f"  t {t:.2f}: {false:6.1%} / {found:6.1%}" for t, false, found in self.grouped),
            f"  segments judged alone ({self.segment_rate:.1%} of adult segments of 2-8 s "
            f"reach p >= {self.threshold:.2f}), rule p >= t for >= s seconds:",
            *(
                f"  t {t:.2f}, s {m:4g}: {false:6.1%} / {found:6.1%}"
                for t, m, false, found in self.rules
            ),
        ]


def false_attribution(
    condition: str, adults: Conversations, mixed: Conversations, threshold: float
) -> FalseAttribution:
    return FalseAttribution(
        condition=condition,
        conversations=int(adults.conversation.max()) + 1,
        conversation_s=adults.length_s,
        threshold=threshold,
        segment_rate=float(np.mean(adults.probs >= threshold)),
        grouped=[
            (t, adults.rate(t, 2.0, grouped=True), mixed.rate(t, 2.0, grouped=True))
            for t in sorted({*GROUPED_THRESHOLDS, threshold})
        ],
        rules=[
            (t, m, adults.rate(t, m), mixed.rate(t, m))
            for t in RULE_THRESHOLDS
            for m in RULE_MIN_CHILD_S
        ],
    )


# ---------------------------------------------------------------- train and evaluate


CLEAN = "clean"
BODYWORN_TEST = "bodyworn1"  # the augmented copy figures are reported on
AUGMENTED = ("clean", "bodyworn1", "bodyworn2")
CROP_SECONDS = (1.0, 2.0, 3.0, 5.0)
HELD_OUT_PER_CLASS = 4  # children and adults left out of the final fit, for the shipped test


@dataclass(frozen=True)
class TrainOptions:
    folds: int = 5
    augment: bool = True
    crops: int = 0  # extra random 1-5 s crops per utterance and condition in training
    config: NetConfig = field(default_factory=NetConfig)
    conversations: int = 200
    model_name: str = "tiny.en"


@dataclass(frozen=True)
class RecipeFigures:
    """Speaker-disjoint cross-validation of one training recipe."""

    recipe: str
    clean: Scores
    bodyworn: Scores
    crop_auc: dict[float, float]  # segment seconds -> utterance AUC on clean crops

    def lines(self) -> list[str]:
        crops = ", ".join(f"{s:g} s {a:.3f}" for s, a in self.crop_auc.items())
        return [
            f"== trained on {self.recipe}",
            "-- tested on clean utterances",
            *self.clean.lines(),
            "-- tested on body-worn augmented utterances (noise, room, gain, AAC)",
            *self.bodyworn.lines(),
            f"-- utterance AUC on clean segments cut to a fixed length: {crops}",
        ]


@dataclass(frozen=True)
class TrainResult:
    out_path: Path
    model: ChildVoiceModel
    folds: int
    recipes: list[RecipeFigures]
    false_attributions: list[FalseAttribution]

    def lines(self) -> list[str]:
        header = (
            f"speaker-disjoint {self.folds}-fold cross-validation "
            "(probabilities calibrated on the other folds)"
        )
        lines = [header]
        for figures in self.recipes:
            lines += figures.lines()
        for attribution in self.false_attributions:
            first, *rest = attribution.lines()
            lines += [f"-- {first}", *rest]
        return [*lines, f"wrote {self.out_path} (threshold {self.model.threshold:.2f})"]


def train(
    data_dir: Path,
    out_path: Path,
    options: TrainOptions | None = None,
    log: Callable[[str], None] = lambda _message: None,
) -> TrainResult:
    """Cross-validates clean and augmented training by speaker, then fits and saves the model
    on every speaker but the held-out ones, with the augmented recipe (clean when `augment`
    is off) and the Platt scaling fitted on its out-of-fold scores."""
    options = options or TrainOptions()
    utterances = read_labels(data_dir)
    _check_trainable(utterances, options.folds)
    conditions = AUGMENTED if options.augment else (CLEAN, BODYWORN_TEST)
    sets = {c: _extract_logged(utterances, c, options.model_name, log) for c in conditions}
    data = _TrainingData(
        sets, speaker_folds(sets[CLEAN].speakers, sets[CLEAN].labels, options.folds)
    )
    recipes: list[tuple[str, tuple[str, ...]]] = [("clean utterances only", (CLEAN,))]
    if options.augment:
        recipes.append(("clean + two body-worn augmented copies", AUGMENTED))
    log("cross-validating")
    results = [data.cross_validate(name, chosen, options) for name, chosen in recipes]
    _, cv, calibration = results[-1]
    false_attributions = [
        data.false_attribution(cv, c, options.conversations) for c in (CLEAN, BODYWORN_TEST)
    ]
    log("fitting the final model on every speaker but the held-out ones")
    model = data.final_model(recipes[-1][1], options, calibration)
    model.meta = _model_meta(data_dir, options, [r[0] for r in results], false_attributions)
    model.meta["held_out_speakers"] = data.held_out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(out_path)
    return TrainResult(out_path, model, options.folds, [r[0] for r in results], false_attributions)


@dataclass
class _TrainingData:
    """Frame sets per condition, their embeddings, and the speaker folds shared by all."""

    sets: dict[str, FrameSet]
    folds: np.ndarray
    examples: dict[str, Examples] = field(init=False)

    def __post_init__(self) -> None:
        self.examples = {c: embed_utterances(s) for c, s in self.sets.items()}

    @property
    def labels(self) -> np.ndarray:
        return self.sets[CLEAN].labels

    @property
    def speakers(self) -> np.ndarray:
        return self.sets[CLEAN].speakers

    @cached_property
    def held_out(self) -> list[str]:
        return held_out_speakers(self.speakers, self.labels)

    @cached_property
    def final_use(self) -> np.ndarray:
        """Utterances the final model learns from: all but the held-out speakers'."""
        return ~np.isin(self.speakers, self.held_out)

    def training_examples(self, conditions: tuple[str, ...], crops: int) -> list[Examples]:
        whole = [self.examples[c] for c in conditions]
        cut = [
            embed_crops(self.sets[c], (1.0, 5.0), seed=k) for k in range(crops) for c in conditions
        ]
        return whole + cut

    def cross_validate(
        self, recipe: str, conditions: tuple[str, ...], options: TrainOptions
    ) -> tuple[RecipeFigures, CrossValidation, tuple[float, float]]:
        train_sets = self.training_examples(conditions, options.crops)
        cv = cross_validate(train_sets, self.labels, self.folds, options.config, self.speakers)
        tests = [self.examples[CLEAN], self.examples[BODYWORN_TEST]]
        calibration = cv.calibrate(tests, self.labels, self.final_use)
        clean, bodyworn = (
            score(self.labels, cv.probabilities(t), self.speakers, DEFAULT_THRESHOLD) for t in tests
        )
        crop_auc = {
            s: auc(self.labels, cv.logits(embed_crops(self.sets[CLEAN], (s, s), seed=99)))
            for s in CROP_SECONDS
        }
        return RecipeFigures(recipe, clean, bodyworn, crop_auc), cv, calibration

    def false_attribution(
        self, cv: CrossValidation, condition: str, count: int
    ) -> FalseAttribution:
        adults, mixed = (
            self.conversations(cv, condition, count, with_child) for with_child in (False, True)
        )
        return false_attribution(condition, adults, mixed, DEFAULT_THRESHOLD)

    def conversations(
        self, cv: CrossValidation, condition: str, count: int, with_child: bool
    ) -> Conversations:
        segments, conversation = simulate_conversations(
            self.sets[condition], self.folds, count, with_child
        )
        kind = "adult-and-child" if with_child else "adult-only"
        probs = cv.probabilities(segments)
        grouped = cv.speaker_probabilities(segments, conversation)
        return Conversations(kind, segments, conversation, probs, grouped, 120.0)

    def final_model(
        self, conditions: tuple[str, ...], options: TrainOptions, calibration: tuple[float, float]
    ) -> ChildVoiceModel:
        train_sets = self.training_examples(conditions, options.crops)
        model = fit_model(
            train_sets, self.labels, self.final_use, options.config, 12345, self.speakers
        )
        model.calibration = calibration
        model.threshold = DEFAULT_THRESHOLD
        return model


def held_out_speakers(speakers: np.ndarray, labels: np.ndarray) -> list[str]:
    """Speakers kept out of the final fit so the shipped file can be checked on voices it
    never heard (tests/test_voice.py): the first few children and adults in a hashed order,
    a choice that depends on nothing but the speaker ids."""
    chosen: list[str] = []
    for label in (1.0, 0.0):
        names = sorted(
            {str(s) for s in speakers[labels == label]},
            key=lambda s: hashlib.sha256(s.encode()).hexdigest(),
        )
        chosen += names[:HELD_OUT_PER_CLASS]
    return sorted(chosen)


def _check_trainable(utterances: list[Utterance], folds: int) -> None:
    children = {u.speaker for u in utterances if u.child}
    adults = {u.speaker for u in utterances if not u.child}
    if len(children) < folds or len(adults) < folds:
        raise BwvError(
            f"training needs at least {folds} child and {folds} adult speakers for "
            f"{folds}-fold cross-validation; found {len(children)} and {len(adults)}"
        )
    if children & adults:
        raise BwvError(f"speaker(s) {sorted(children & adults)[:3]} have both child and adult ages")


def _extract_logged(
    utterances: list[Utterance], condition: str, model_name: str, log: Callable[[str], None]
) -> FrameSet:
    if not _cache_path(utterances, condition, model_name).is_file():
        log(f"encoding {len(utterances)} utterances ({condition}); cached under {CACHE_DIR}")
    return extract_frames(utterances, condition, model_name)


def _model_meta(
    data_dir: Path,
    options: TrainOptions,
    figures: list[RecipeFigures],
    false_attributions: list[FalseAttribution],
) -> dict[str, object]:
    """What the shipped file records about its own making, so it can be audited alone."""
    from dataclasses import asdict

    return {
        "encoder": options.model_name,
        "child_max_age": CHILD_MAX_AGE,
        "training_data": Path(data_dir).name,
        "network": asdict(options.config),
        "augmented": options.augment,
        "crops": options.crops,
        "cross_validation": [asdict(f) for f in figures],
        "false_attribution": [asdict(f) for f in false_attributions],
    }


@dataclass(frozen=True)
class EvalResult:
    data_dir: Path
    model: str
    scores: Scores

    def lines(self) -> list[str]:
        return [f"{self.model} on {self.data_dir}", *self.scores.lines()]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: undefined figures (one class only) become null, not NaN."""
        from dataclasses import asdict

        scores = {k: None if v != v else v for k, v in asdict(self.scores).items()}
        return {"data": str(self.data_dir), "model": self.model, **scores}


def evaluate(
    data_dir: Path,
    model_path: Path | None = None,
    log: Callable[[str], None] = lambda _message: None,
) -> EvalResult:
    """Scores a classifier, unchanged, on a labelled folder (child means age 12 or under)."""
    utterances = read_labels(data_dir)
    model = ChildVoiceModel.load(model_path)
    encoder = str(model.meta.get("encoder", "tiny.en"))
    log(f"encoding {len(utterances)} utterances")
    frame_set = extract_frames(utterances, CLEAN, encoder, cache_frames=False)
    probs = model.probabilities(embed_utterances(frame_set).x)
    scores = score(frame_set.labels, probs, frame_set.speakers, model.threshold)
    return EvalResult(Path(data_dir), f"{model.name} {model.version}", scores)


def piece_probabilities(
    audio_path: Path, pieces: list[Piece], model: ChildVoiceModel | None = None
) -> list[float]:
    """Child probability of each stretch of a recording, packed and encoded as ingest would.

    For spot checks on known turns of a clip (the sample media, a reviewer's own recording).
    """
    from ingest.encoder import encode, encoder_frames, frame_slice, load_model, log_mel

    model = model or ChildVoiceModel.load()
    whisper = load_model(str(model.meta.get("encoder", "tiny.en")))
    windows = pack_windows(load_audio(audio_path), pieces)
    features = log_mel(whisper, windows)
    states = encoder_frames(encode(whisper, features))
    found: dict[int, float] = {}
    for window, frames, mel in zip(windows, states, features, strict=True):
        for placed in window.pieces:
            span = frame_slice(placed.offset_s, placed.offset_s + placed.end_s - placed.start_s)
            embedding = segment_embedding(frames, span, mel)
            found[placed.index] = float(model.probabilities(embedding)[0])
    return [found[i] for i in range(len(pieces))]

"""Batched Whisper transcription over speech regions, with child-voice attribution.

Speech regions are packed into 30 s windows, each window is encoded once in a batch,
and the decoder turns the encoder states into time-coded text (the approach of
faster-whisper's BatchedInferencePipeline). The same encoder states are pooled per
segment for the child-voice classifier, so attribution costs almost nothing extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest import encoder
from ingest.encoder import FRAME_S, Piece, Window

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

BATCH_SIZE = 4  # larger batches barely speed up a CPU but multiply attention memory
NO_SPEECH_THRESHOLD = 0.6
LOW_LOGPROB = -1.0
MAX_COMPRESSION = 2.4

Span = tuple[float, float, str]  # start and end in window seconds, and the text


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    confidence: float
    no_speech_prob: float
    child_probability: float | None = None
    speech_s: float | None = None
    speaker: int | None = None
    speaker_child_probability: float | None = None
    wearer: bool | None = None  # the speaker group is the camera wearer's (near-field)
    level_db: float | None = None  # RMS level of the segment's audio, for finding the wearer
    # Kept from transcription until the whole clip's segments are scored and grouped.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class Transcriber:
    """A loaded model, its tokenizer and prompt, and the child-voice classifier."""

    model: WhisperModel
    tokenizer: Any
    prompt: list[int]
    suppress: list[int]
    voice: Any = None
    name: str = "tiny.en"
    beam_size: int = 1  # greedy, as ingest decodes; `bwv voice evaluate --wer` compares 5


def load_transcriber(
    model_name: str, language: str, threads: int = 0, child_voice: bool = True
) -> Transcriber:
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    model = encoder.load_model(model_name, threads=threads)
    multilingual = model.model.is_multilingual
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language=language)
    prompt = model.get_prompt(tokenizer, previous_tokens=[], without_timestamps=False)
    suppress = get_suppressed_tokens(tokenizer, [-1])
    voice = _load_voice() if child_voice else None
    return Transcriber(model, tokenizer, prompt, suppress, voice, model_name)


def _load_voice() -> Any:
    """The shipped child-voice classifier, or None when the package has none yet."""
    from ingest.voice.model import DEFAULT_MODEL_PATH, ChildVoiceModel

    return ChildVoiceModel.load() if DEFAULT_MODEL_PATH.is_file() else None


def transcribe(transcriber: Transcriber, samples: np.ndarray, pieces: list[Piece]) -> list[Segment]:
    """Time-coded segments (seconds in `samples`' clock) over the given speech pieces."""
    windows = encoder.pack_windows(samples, pieces)
    segments: list[Segment] = []
    for start in range(0, len(windows), BATCH_SIZE):
        segments.extend(_transcribe_batch(transcriber, windows[start : start + BATCH_SIZE]))
    return segments


def _transcribe_batch(transcriber: Transcriber, windows: list[Window]) -> list[Segment]:
    features = encoder.log_mel(transcriber.model, windows)
    encoded = encoder.encode(transcriber.model, features)
    results = transcriber.model.model.generate(
        encoded,
        [list(transcriber.prompt) for _ in windows],
        beam_size=transcriber.beam_size,
        max_length=transcriber.model.max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=transcriber.suppress,
    )
    frames = encoder.encoder_frames(encoded) if transcriber.voice is not None else None
    segments = []
    for index, (window, result) in enumerate(zip(windows, results, strict=True)):
        voice_input = (
            _voice_input(window, frames[index], features[index]) if frames is not None else None
        )
        segments.extend(_window_segments(transcriber, window, result, voice_input))
    return segments


def _window_segments(
    transcriber: Transcriber, window: Window, result: Any, voice_input: Any
) -> list[Segment]:
    from faster_whisper.transcribe import get_compression_ratio

    tokens = result.sequences_ids[0]
    # faster-whisper's average log-probability (its length penalty is 1).
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOW_LOGPROB:
        return []
    spans = [
        s for s in split_by_timestamps(transcriber.tokenizer, tokens, window.duration_s) if s[2]
    ]
    spans = [s for s in spans if get_compression_ratio(s[2]) <= MAX_COMPRESSION]
    embeddings = _embeddings(transcriber.voice, voice_input, spans)
    confidence = math.exp(min(avg_logprob, 0.0))
    return [
        Segment(
            start_s=round(window.to_source(start), 3),
            end_s=round(window.to_source(max(end, start + FRAME_S)), 3),
            text=text,
            confidence=round(confidence, 4),
            no_speech_prob=round(float(result.no_speech_prob), 4),
            speech_s=round(max(end, start + FRAME_S) - start, 3),
            level_db=_level(window, start, end),
            embedding=embedding,
        )
        for (start, end, text), embedding in zip(spans, embeddings, strict=True)
    ]


def _level(window: Window, start_s: float, end_s: float) -> float:
    from ingest.voice.speakers import level_db

    rate = encoder.SAMPLE_RATE
    return level_db(window.audio[int(start_s * rate) : int(end_s * rate)])


def split_by_timestamps(tokenizer: Any, tokens: list[int], duration_s: float) -> list[Span]:
    """Cuts decoded tokens at Whisper's timestamp tokens into (start, end, text) spans."""
    begin = tokenizer.timestamp_begin
    spans: list[Span] = []
    text_tokens: list[int] = []
    last_time = 0.0
    for token in tokens:
        if token < begin:
            if token < tokenizer.eot:
                text_tokens.append(token)
            continue
        time = min((token - begin) * FRAME_S, duration_s)
        if text_tokens:
            spans.append((last_time, time, tokenizer.decode(text_tokens).strip()))
            text_tokens = []
        last_time = time
    if text_tokens:
        spans.append((last_time, duration_s, tokenizer.decode(text_tokens).strip()))
    return spans


def _voice_input(
    window: Window, frames: np.ndarray, mel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the child-voice embedding pools: the window's encoder states, its log-mel, and
    its pitch, formant and tilt rows (one per encoder frame, from the window's own audio)."""
    from ingest.voice.acoustic import acoustic_frames

    return frames, mel, acoustic_frames(window.audio)


def _embeddings(
    voice: Any, voice_input: tuple[np.ndarray, np.ndarray, np.ndarray] | None, spans: list[Span]
) -> list[np.ndarray | None]:
    """Per span, the child-voice embedding from the window's encoder states, log-mel and
    acoustic rows."""
    if voice is None or voice_input is None:
        return [None] * len(spans)
    from ingest.voice.model import segment_embedding

    frames, mel, acoustics = voice_input
    return [
        segment_embedding(frames, encoder.frame_slice(s, e), mel, acoustics) for s, e, _ in spans
    ]


def attribute_speakers(transcriber: Transcriber, segments: list[Segment]) -> list[Segment]:
    """A clip's segments scored (each alone) and grouped by voice, each with its speaker's
    pooled child probability.

    Run once per clip, after every block is transcribed: a speaker's evidence is all they
    said in the clip. Embeddings are dropped afterwards.
    """
    embeddings = [s.embedding for s in segments if s.embedding is not None]
    if transcriber.voice is None or len(embeddings) != len(segments) or not segments:
        return [replace(s, embedding=None) for s in segments]
    from ingest.voice.speakers import wearer_group

    seconds = np.array([s.speech_s or s.end_s - s.start_s for s in segments])
    found = transcriber.voice.attribute(np.stack(embeddings), seconds)
    alone = [round(float(p), 4) for p in found.probabilities]
    pooled = [round(float(p), 4) for p in found.speaker_probabilities]
    levels = np.array([-120.0 if s.level_db is None else s.level_db for s in segments])
    child = found.speaker_probabilities >= transcriber.voice.threshold
    wearer = wearer_group(found.speakers, seconds, levels, child)
    return [
        replace(
            s,
            child_probability=own,
            speaker=int(speaker),
            speaker_child_probability=group,
            wearer=bool(speaker == wearer),
            embedding=None,
        )
        for s, own, speaker, group in zip(segments, alone, found.speakers, pooled, strict=True)
    ]

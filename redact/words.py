"""When each word is said, from faster-whisper's word timestamps, computed on demand.

Ingest keeps segment times only; muting "Jayden" needs the word's own time. Only the
stretches around transcript segments that contain one of the wanted words are
transcribed again (with the same offline tiny.en model ingest uses), so asking for a
name in an hour-long clip costs seconds, not the whole clip again.
"""

from __future__ import annotations

from pathlib import Path

from ingest.encoder import load_model
from redact.plan import tokens

RATE = 16_000
MARGIN_S = 1.0


def windows(
    segments: list[tuple[float, float, str]], phrases: tuple[str, ...]
) -> list[tuple[float, float]]:
    """Merged stretches around the segments whose text holds any wanted word."""
    wanted = [tokens(phrase) for phrase in phrases]
    hits = []
    for start, end, text in segments:
        said = set(tokens(text))
        if any(word in said for phrase in wanted for word in phrase):
            hits.append((max(0.0, start - MARGIN_S), end + MARGIN_S))
    out: list[tuple[float, float]] = []
    for start, end in sorted(hits):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def word_times(
    path: Path, stretches: list[tuple[float, float]], model_name: str = "tiny.en"
) -> list[tuple[float, float, str]]:
    """(start, end, word) for every word said inside the stretches, in clip seconds."""
    from faster_whisper import decode_audio

    if not stretches:
        return []
    audio = decode_audio(str(path), sampling_rate=RATE)
    model = load_model(model_name)
    found: list[tuple[float, float, str]] = []
    for start, end in stretches:
        piece = audio[int(start * RATE) : int(end * RATE)]
        segments, _info = model.transcribe(
            piece,
            language="en",
            beam_size=1,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        for segment in segments:
            found += [(start + w.start, start + w.end, w.word) for w in segment.words or []]
    return found

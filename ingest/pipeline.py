"""One file, start to finish: hash, probe, provenance, audio, transcript, frames.

`process_file` reads top to bottom in the order the catalogue needs the facts. It never
writes to the catalogue and never modifies the original (opened read-only): it returns
a `FileResult` that the batch's single writer stores in one transaction. Any failure
to read the media becomes a failed result with a reason, never an exception.
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bwv.core.errors import BwvError
from ingest import audio as audio_facts
from ingest.config import IngestConfig
from ingest.frames import FrameFacts, frame_facts
from ingest.probe import MediaInfo, probe
from ingest.provenance import Provenance, resolve
from ingest.transcribe import Segment, Transcriber, attribute_speakers, transcribe


class FileTimeout(Exception):
    """The per-file time limit ran out (a pathological or hostile file)."""


@dataclass(frozen=True)
class AudioResult:
    state: str
    peak_dbfs: float | None
    speech: list[tuple[float, float]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    transcribed: bool = False

    @property
    def speech_seconds(self) -> float:
        return round(sum(end - start for start, end in self.speech), 3)


@dataclass(frozen=True)
class FileResult:
    """Everything learnt about one file; `failure` is set when it could not be read."""

    path: Path
    sha256: str
    size_bytes: int
    provenance: Provenance
    media: MediaInfo | None = None
    audio: AudioResult | None = None
    frames: FrameFacts | None = None
    failure: str | None = None
    seconds: float = 0.0
    store_path: Path | None = None
    # Set with `failure` when the work could not be finished (store not writable, disk
    # full): nothing is wrong with the file, so it is not catalogued and is retried.
    retry: bool = False


@dataclass
class FileContext:
    """What a worker process holds across files: settings and the loaded model."""

    config: IngestConfig
    transcriber: Transcriber | None
    store: Path | None = None


def process_file(path: Path, sha256: str, context: FileContext) -> FileResult:
    """Catalogue facts for one original; failures come back as a failed result."""
    started = time.monotonic()
    size = file_size(path)
    try:
        with time_limit(context.config.file_timeout_s):
            media = probe(path)
            provenance = resolve(path, media.tags, context.config)
            audio = analyse_audio(path, media, context)
            frames = frame_facts(path, context.config.frame_interval_s)
    except (BwvError, FileTimeout) as exc:
        return failed_result(path, sha256, size, str(exc), started, context)
    except Exception as exc:  # a hostile file must fail alone, never the whole batch
        reason = f"unexpected {type(exc).__name__} while reading: {exc}"
        return failed_result(path, sha256, size, reason, started, context)
    result = FileResult(path, sha256, size, provenance, media, audio, frames)
    return kept(result, context, started)


def failed_result(
    path: Path,
    sha256: str,
    size: int,
    reason: str,
    started: float,
    context: FileContext,
    *,
    copy: bool = True,
) -> FileResult:
    """A failed clip keeps whatever the sidecar and file name say about it, and (`copy`,
    when its bytes could be read) a store copy of the original like any other clip."""
    provenance = resolve(path, {}, context.config)
    result = FileResult(path, sha256, size, provenance, failure=reason)
    return kept(result, context, started) if copy else replace(result, seconds=_since(started))


def kept(result: FileResult, context: FileContext, started: float) -> FileResult:
    """`result` with its original copied into the store (when there is one)."""
    from bwv.core.store import StoreError, StoreUnavailable, store_original

    stored: Path | None = None
    failure, retry = result.failure, False
    try:
        if context.store is not None:
            stored = store_original(result.path, result.sha256, context.store)
    except StoreUnavailable as exc:
        failure, retry = str(exc), True
    except StoreError as exc:  # a tampered store copy: this file cannot be kept as promised
        failure = f"{failure}; {exc}" if failure else str(exc)
    return replace(result, store_path=stored, failure=failure, retry=retry, seconds=_since(started))


def file_size(path: Path) -> int:
    """The size in bytes, 0 when even that cannot be read (the failure says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _since(started: float) -> float:
    return time.monotonic() - started


def analyse_audio(path: Path, media: MediaInfo, context: FileContext) -> AudioResult:
    if not media.has_audio:
        return AudioResult(audio_facts.ABSENT, None)
    peak, speech, segments = 0.0, [], []
    for block in audio_facts.decode_blocks(path):
        peak = max(peak, block.peak)
        if audio_facts.to_dbfs(block.peak) <= context.config.silence_floor_dbfs:
            continue
        pieces = audio_facts.speech_pieces(block)
        speech += [(block.offset_s + p.start_s, block.offset_s + p.end_s) for p in pieces]
        if context.transcriber is not None and pieces:
            segments += _shifted(
                transcribe(context.transcriber, block.samples, pieces), block.offset_s
            )
    if context.transcriber is not None:
        segments = attribute_speakers(context.transcriber, segments)
    dbfs = audio_facts.to_dbfs(peak)
    state = audio_facts.audio_state(True, dbfs, context.config.silence_floor_dbfs)
    return AudioResult(state, round(dbfs, 2), speech, segments, context.transcriber is not None)


def _shifted(segments: list[Segment], offset_s: float) -> list[Segment]:
    if not offset_s:
        return segments
    return [
        replace(s, start_s=round(s.start_s + offset_s, 3), end_s=round(s.end_s + offset_s, 3))
        for s in segments
    ]


@contextmanager
def time_limit(seconds: float) -> Any:
    """Raises FileTimeout in this (main) thread after `seconds`, via SIGALRM."""

    def _expire(_signum: int, _frame: Any) -> None:
        raise FileTimeout(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

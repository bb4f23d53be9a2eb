"""Audio facts: decode once to 16 kHz mono in bounded blocks, level, and where speech is.

A muted body-worn camera still writes an audio stream, so "has audio" is not enough:
the track is `absent` (no stream), `silent` (digital silence or under the noise floor
throughout) or `present`. Speech regions come from the Silero VAD faster-whisper ships.
Long recordings are processed block by block so memory does not grow with the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.encoder import SAMPLE_RATE, Piece
from ingest.probe import MediaError

BLOCK_S = 300.0
ABSENT, SILENT, PRESENT = "absent", "silent", "present"


@dataclass(frozen=True)
class AudioBlock:
    """A run of decoded 16 kHz mono samples and where it starts in the recording."""

    offset_s: float
    samples: np.ndarray

    @property
    def peak(self) -> float:
        return float(np.max(np.abs(self.samples))) if self.samples.size else 0.0


def decode_blocks(path: Path, block_s: float = BLOCK_S) -> Iterator[AudioBlock]:
    """Streams the first audio stream as float32 mono 16 kHz blocks of about `block_s`."""
    import av

    block_samples = int(block_s * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    pending_samples = offset = 0
    try:
        with av.open(str(path), mode="r", metadata_errors="replace") as container:
            for samples in _resampled(container):
                pending.append(samples)
                pending_samples += len(samples)
                if pending_samples >= block_samples:
                    yield AudioBlock(offset / SAMPLE_RATE, np.concatenate(pending))
                    offset += pending_samples
                    pending, pending_samples = [], 0
    except av.FFmpegError as exc:
        raise MediaError(f"audio could not be decoded: {exc}") from exc
    if pending:
        yield AudioBlock(offset / SAMPLE_RATE, np.concatenate(pending))


def _resampled(container: Any) -> Iterator[np.ndarray]:
    import av

    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    for packet in container.demux(stream):
        for frame in packet.decode():
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1)


def speech_pieces(block: AudioBlock) -> list[Piece]:
    """Silero VAD regions of one block, in block-relative seconds, each at most 30 s."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=29.0, min_silence_duration_ms=500, speech_pad_ms=200)
    regions = get_speech_timestamps(block.samples, options, sampling_rate=SAMPLE_RATE)
    return [Piece(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in regions]


def to_dbfs(peak: float) -> float:
    return float(20 * np.log10(peak)) if peak > 0 else -200.0


def audio_state(has_stream: bool, peak_dbfs: float, floor_dbfs: float) -> str:
    if not has_stream:
        return ABSENT
    return PRESENT if peak_dbfs > floor_dbfs else SILENT

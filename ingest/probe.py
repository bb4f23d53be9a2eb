"""Container and stream facts, read in-process with PyAV (no ffprobe needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bwv.core.errors import BwvError


class MediaError(BwvError):
    """A file that cannot be read as media: truncated, empty, not media, unsupported."""


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_s: float | None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def probe(path: Path) -> MediaInfo:
    """Reads the container header; raises MediaError when it is not readable media."""
    import av

    if path.stat().st_size == 0:
        raise MediaError("zero-length file")
    try:
        with av.open(str(path), mode="r", metadata_errors="replace") as container:
            return _info(container)
    except av.FFmpegError as exc:
        raise MediaError(f"not readable as media: {_ffmpeg_reason(exc)}") from exc


def _info(container: Any) -> MediaInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise MediaError("no video or audio stream")
    for stream in (video, audio):
        if stream is not None and stream.codec_context is None:
            raise MediaError(f"{stream.type} stream is damaged or uses an unsupported codec")
    tags = {str(k): str(v) for k, v in container.metadata.items()}
    for stream in (video, audio):
        if stream is not None:
            tags.update({f"{stream.type}:{k}": str(v) for k, v in stream.metadata.items()})
    return MediaInfo(
        container=container.format.name,
        duration_s=_duration(container, video or audio),
        video_codec=video.codec_context.name if video else None,
        width=video.codec_context.width if video else None,
        height=video.codec_context.height if video else None,
        fps=float(video.average_rate) if video and video.average_rate else None,
        audio_codec=audio.codec_context.name if audio else None,
        audio_channels=audio.codec_context.channels if audio else None,
        audio_sample_rate=audio.codec_context.sample_rate if audio else None,
        tags=tags,
    )


def _duration(container: Any, stream: Any) -> float | None:
    if container.duration:
        return container.duration / 1_000_000
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _ffmpeg_reason(exc: Exception) -> str:
    message = getattr(exc, "strerror", None) or str(exc)
    return str(message).strip() or type(exc).__name__

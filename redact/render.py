"""The redacted copy, rendered by ffmpeg in one filter graph built with ffmpeg-python.

Video: the frame is blurred once as a whole, and a mask decides where the blurred
pixels replace the original ones: one `drawbox` per slot (tracks that never overlap in
time share a slot) paints the chosen tracks' boxes on the mask, moved frame by frame by
a `sendcmd` script, so no frame passes through Python. `--solid` paints the boxes black
instead; frames are never auto-rotated before the boxes are drawn (the boxes were found
on the frames as stored, and a display-rotation flag would otherwise move every face
out from under its box). Audio: one `aeval` expression zeroes (or replaces with a 1 kHz tone) every
sample inside a chosen span, to the sample, not to the audio frame. Metadata (GPS, serial
numbers, times) is not copied: the copy is for showing, the original keeps the facts.

The output goes to a temporary file that the caller moves into place only when ffmpeg
succeeded, so an interrupted render leaves nothing under a final name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bwv.core.errors import BwvError
from redact.tracks import Key

BLEEP_HZ = 1000
BLEEP_LEVEL = 0.25  # -12 dBFS
PARK = "x=-16:y=-16:w=1:h=1"  # a box off the frame: the slot hides nothing


class RenderError(BwvError):
    """ffmpeg could not make the redacted copy."""


@dataclass(frozen=True)
class HiddenTrack:
    label: str
    keys: list[Key]  # frame, t, x1, y1, x2, y2 for every frame the track covers


@dataclass(frozen=True)
class RenderJob:
    source: Path
    target: Path
    has_video: bool
    has_audio: bool
    duration_s: float | None
    tracks: list[HiddenTrack] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    bleep: bool = False
    solid: bool = False
    crf: int = 23
    preset: str = "veryfast"


def settings(job: RenderJob) -> dict[str, Any]:
    """What the redaction log records about how the copy was made."""
    return {
        "boxes": "solid" if job.solid else "blur",
        "blur": "boxblur, radius 1/10 of the shorter side, 2 passes",
        "audio": f"bleep {BLEEP_HZ} Hz" if job.bleep else "silence",
        "video_codec": f"libx264 crf {job.crf} preset {job.preset}",
        "audio_codec": "aac",
        "metadata": "not copied",
    }


def slots(tracks: list[HiddenTrack]) -> list[list[HiddenTrack]]:
    """Tracks packed into as few drawbox slots as never hold two tracks at one frame."""
    packed: list[list[HiddenTrack]] = []
    for track in sorted(tracks, key=lambda t: t.keys[0][0]):
        slot = next((s for s in packed if s[-1].keys[-1][0] < track.keys[0][0]), None)
        if slot is None:
            packed.append([track])
        else:
            slot.append(track)
    return packed


def sendcmd_script(packed: list[list[HiddenTrack]], fps: float) -> str:
    """Per frame, the commands that move each slot's box; parked after a track ends."""
    lines = []
    half = 0.5 / fps
    for number, slot in enumerate(packed):
        name = f"drawbox@hide{number}"
        for track in slot:
            for _frame, t, x1, y1, x2, y2 in track.keys:
                x, y, w, h = round(x1), round(y1), round(x2 - x1), round(y2 - y1)
                lines.append(
                    (
                        t - half,
                        f"{name} x {x}, {name} y {y}, {name} w {max(w, 1)}, {name} h {max(h, 1)}",
                    )
                )
            lines.append(
                (track.keys[-1][1] + half, f"{name} x -16, {name} y -16, {name} w 1, {name} h 1")
            )
    lines.sort(key=lambda line: line[0])
    return "".join(f"{max(t, 0.0):.4f} {command};\n" for t, command in lines)


def gate(spans: list[tuple[float, float]]) -> str:
    """An expression that is 1 inside any span and 0 outside."""
    if not spans:
        return "0"
    return "min(1," + "+".join(f"between(t,{a:.4f},{b:.4f})" for a, b in spans) + ")"


def graph(job: RenderJob, commands: Path, fps: float, height: int, width: int) -> Any:
    """The ffmpeg-python output node for `job`."""
    import ffmpeg

    # Boxes were found on the stored (unrotated) frames: ffmpeg must not turn them first.
    source = ffmpeg.input(str(job.source), noautorotate=None)
    outputs = []
    if job.has_video:
        video = source.video.filter("setpts", "PTS-STARTPTS")
        outputs.append(_hidden(video, job, commands, min(width, height)) if job.tracks else video)
    if job.has_audio:
        audio = source.audio.filter("asetpts", "PTS-STARTPTS")
        if job.spans:
            tone = f"{BLEEP_LEVEL}*sin(2*PI*{BLEEP_HZ}*t)" if job.bleep else "0"
            mute = gate(job.spans)
            audio = audio.filter("aeval", f"val(ch)*(1-{mute})+{tone}*{mute}", c="same")
        outputs.append(audio)
    args: dict[str, Any] = {"map_metadata": -1, "movflags": "+faststart"}
    if job.has_video:
        args.update(vcodec="libx264", crf=job.crf, preset=job.preset, pix_fmt="yuv420p")
    if job.has_audio:
        args.update(acodec="aac", audio_bitrate="128k")
    return ffmpeg.output(*outputs, str(job.target), f="mp4", **args)


def _hidden(video: Any, job: RenderJob, commands: Path, shorter: int) -> Any:
    packed = slots(job.tracks)
    if job.solid:
        return _boxes(video.filter("sendcmd", f=str(commands)), len(packed), "black")
    radius = max(4, shorter // 10)
    split = video.split()
    blurred = split[1].filter(
        "boxblur",
        luma_radius=radius,
        luma_power=2,
        chroma_radius=max(2, radius // 2),
        chroma_power=2,
    )
    mask = split[2].filter("format", "gray").filter("lut", c0=0)
    mask = _boxes(mask.filter("sendcmd", f=str(commands)), len(packed), "white")
    mask = mask.filter("lut", c0="if(gt(val,127),255,0)")
    import ffmpeg

    return ffmpeg.overlay(split[0], ffmpeg.filter([blurred, mask], "alphamerge"))


def _boxes(stream: Any, count: int, color: str) -> Any:
    for number in range(count):
        stream = stream.filter(
            f"drawbox@hide{number}", x=-16, y=-16, w=1, h=1, color=color, t="fill"
        )
    return stream


Progress = Callable[[float], None]


def run(
    job: RenderJob, fps: float, size: tuple[int, int], work: Path, progress: Progress | None = None
) -> None:
    """Renders `job` with the imageio-ffmpeg binary, reporting the fraction done."""
    import imageio_ffmpeg

    commands = work / "boxes.cmd"
    commands.write_text(sendcmd_script(slots(job.tracks), fps), encoding="utf-8")
    node = graph(job, commands, fps, size[1], size[0])
    args = node.global_args(
        "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1"
    ).compile(cmd=imageio_ffmpeg.get_ffmpeg_exe())
    _execute(args, job.duration_s, progress)


def _execute(args: list[str], duration_s: float | None, progress: Progress | None) -> None:
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if progress and duration_s and line.startswith("out_time_us="):
                value = line.split("=", 1)[1].strip()
                if value.isdigit():
                    progress(min(int(value) / 1e6 / duration_s, 1.0))
        errors = proc.stderr.read()
    if proc.returncode != 0:
        last = (errors.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise RenderError(f"ffmpeg could not render the redacted copy: {last}")

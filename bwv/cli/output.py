"""Human-readable output of the catalogue commands (JSON output is `cli_common.emit_json`).

Officer names, teams, file names and transcripts come from outside systems and camera
files, so every text rendering prints through `bwv.cli.common.echo` (`printable`): a control
character (an escape sequence could retitle, clear or spoof the inspector's terminal; a
newline could forge a line of output) is shown as its Python escape instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bwv.cli.common import echo


def print_ingest_summary(summary: Any) -> None:
    hours = summary.footage_seconds / 3600
    extra = "".join(
        f", {label} {len(items)}"
        for label, items in (("not finished", summary.unfinished), ("rejected", summary.rejected))
        if items
    )
    echo(
        f"Ingested {summary.ingested}, skipped {summary.skipped}, failed {summary.failed}{extra} "
        f"({hours:.2f} h of footage) in {summary.seconds:.1f} s"
    )
    for label, items in (
        ("failed", summary.failures),
        ("not finished, retried on the next run", summary.unfinished),
        ("not ingested", summary.rejected),
        ("warning", summary.warnings),
    ):
        for path, reason in items:
            echo(f"  {label}: {path}: {reason}")


def print_clips(rows: Sequence[Any]) -> None:
    if not rows:
        echo("No clips.")
        return
    echo(f"{'ID':>5}  {'STARTED (UTC)':<20}  {'DEVICE':<14}  {'OFFICER':<8}  "
               f"{'DUR s':>6}  {'AUDIO':<7}  {'SPEECH s':>8}  {'CHILD s':>7}  FILE")  # fmt: skip
    for r in rows:
        echo(
            f"{r.id:>5}  {(r.started_at or '-'):<20}  {(r.device_serial or '-'):<14}  "
            f"{(r.officer_id or '-'):<8}  {_num(r.duration_s):>6}  {(r.audio_state or '-'):<7}  "
            f"{_num(r.speech_seconds):>8}  {_num(r.child_speech_seconds):>7}  {r.file_name}"
            + (f"  FAILED: {r.failure_reason}" if r.status == "failed" else "")
        )


def print_clip_detail(detail: Any) -> None:
    from bwv.core.child_speech import speaker_label

    clip = detail.clip
    echo(f"Clip {clip['id']}: {clip['file_name']}  [{clip['status']}]")
    if clip["failure_reason"]:
        echo(f"  failure: {clip['failure_reason']}")
    echo(f"  path: {clip['path']}")
    echo(f"  sha256: {clip['sha256']}")
    for name, field in sorted(detail.provenance.items()):
        echo(f"  {name}: {field['value']}  (from {field['source']}, {field['confidence']})")
    _print_media(clip)
    echo("Transcript:" if detail.transcript else "Transcript: none")
    for s in detail.transcript:
        marker = "CHILD " if s.child else "WEARER" if s.wearer else "      "
        who = "   " if s.speaker is None else f"{speaker_label(s.speaker):<3}"
        echo(f"  {s.start_s:7.2f}-{s.end_s:7.2f} {who} {marker} {s.text}{_odds(s)}")


def _odds(segment: Any) -> str:
    """The segment's own child probability, and its speaker's pooled one."""
    if segment.child_probability is None:
        return ""
    text = f" p(child)={segment.child_probability:.2f}"
    if segment.speaker_child_probability is not None:
        text += f" speaker {segment.speaker_child_probability:.2f}"
    return text


def _print_media(clip: dict[str, Any]) -> None:
    echo(
        f"  container: {clip['container']}  duration: {_num(clip['duration_s'])} s  "
        f"video: {clip['video_codec']} {clip['width']}x{clip['height']} @ {_num(clip['fps'])} fps"
    )
    echo(
        f"  audio: {clip['audio_state']}  codec: {clip['audio_codec']}  "
        f"speech: {_num(clip['speech_seconds'])} s  "
        f"child speech: {_num(clip['child_speech_seconds'])} s "
        f"(speaker p(child) >= {clip['child_probability_threshold']:g})"
    )
    echo(
        f"  frames sampled: {clip['frames_sampled']}  dark/covered share: "
        f"{_num(clip['dark_frame_share'])}  blur score: {_num(clip['blur_score'])}"
    )


def print_hits(hits: Sequence[Any], threshold: float) -> None:
    if not hits:
        echo("No matches.")
    for h in hits:
        child = (
            "  [child]"
            if h.child_probability is not None and h.child_probability >= threshold
            else ""
        )
        echo(f"clip {h.clip_id} {h.file_name} @ {h.start_s:.2f}-{h.end_s:.2f}s{child}: {h.snippet}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")

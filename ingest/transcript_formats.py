"""Transcript renderings for people (txt), players (srt, vtt) and programs (json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any


def render(segments: Sequence[Any], fmt: str, title: str) -> str:
    renderers = {"txt": _txt, "srt": _srt, "vtt": _vtt, "json": _json}
    return renderers[fmt](segments, title)


def _txt(segments: Sequence[Any], title: str) -> str:
    lines = [f"# {title}"]
    for s in segments:
        tag = f" [{_who(s)}]" if _who(s) else ""
        lines.append(f"[{clock(s.start_s)} - {clock(s.end_s)}]{tag} {s.text}")
    return "\n".join(lines) + "\n"


def _who(segment: Any) -> str:
    """ "child" for child speech, "wearer" for the camera wearer's, else ""."""
    if getattr(segment, "child", False):
        return "child"
    return "wearer" if getattr(segment, "wearer", False) else ""


def _srt(segments: Sequence[Any], _title: str) -> str:
    blocks = [
        f"{n}\n{clock(s.start_s, ',')} --> {clock(s.end_s, ',')}\n"
        + (f"[{_who(s)}] " if _who(s) else "")
        + f"{s.text}\n"
        for n, s in enumerate(segments, start=1)
    ]
    return "\n".join(blocks)


def _vtt(segments: Sequence[Any], _title: str) -> str:
    """Child and wearer speech as WebVTT voice spans (`<v child>`), which players show."""
    cues = [
        f"{clock(s.start_s)} --> {clock(s.end_s)}\n"
        + (f"<v {_who(s)}>" if _who(s) else "")
        + f"{s.text}\n"
        for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def _json(segments: Sequence[Any], title: str) -> str:
    body = {"clip": title, "segments": [asdict(s) for s in segments]}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def clock(seconds: float, separator: str = ".") -> str:
    """HH:MM:SS.mmm (SubRip uses a comma before the milliseconds)."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"

"""What a redaction hides: the person's choices, checked and turned into tracks and spans.

Choices name face tracks (`all`, `none` or labels such as `T1,T4`), speaker groups
(`S2`), words (located in time by `redact.words`) and time spans; every one of them is
checked before anything renders, so an unknown track or speaker is refused up front.
Audio spans are padded a little (word timings are approximate, and a codec smears sound
across the edge of a cut) and merged where they touch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bwv.core.errors import BwvError

WORD_PAD_S = 0.12  # word timestamps are good to about a tenth of a second
SPAN_PAD_S = 0.03  # an AAC frame's worth, so the edges of a cut stay silent too


class PlanError(BwvError):
    """A redaction choice names something the clip does not have, or is malformed."""


@dataclass(frozen=True)
class Choices:
    faces: str = "none"  # all | none | T1,T4
    mute_speakers: tuple[str, ...] = ()
    mute_words: tuple[str, ...] = ()
    mute: tuple[tuple[float, float], ...] = ()
    bleep: bool = False
    solid: bool = False
    reason: str = ""

    @property
    def mutes_audio(self) -> bool:
        return bool(self.mute_speakers or self.mute_words or self.mute)


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float
    why: str  # "S2", "words: Oliver", "manual"


@dataclass(frozen=True)
class Plan:
    tracks: list[str]
    spans: list[Span] = field(default_factory=list)


def parse_span(text: str) -> tuple[float, float]:
    """`FROM-TO` in seconds (`12.5-14`) as a pair, start before end."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*", text)
    if not match:
        raise PlanError(f"--mute {text!r}: expected FROM-TO in seconds, for example 12.5-14")
    start, end = float(match[1]), float(match[2])
    if end <= start:
        raise PlanError(f"--mute {text!r}: the span ends before it starts")
    return start, end


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def chosen_tracks(faces: str, labels: list[str]) -> list[str]:
    """The track labels `faces` names; any unknown label is refused, listing the known ones."""
    wanted = faces.strip()
    if wanted.lower() == "none" or not wanted:
        return []
    if wanted.lower() == "all":
        return list(labels)
    named = [label.upper() for label in parse_list(wanted)]
    unknown = [label for label in named if label not in labels]
    if unknown:
        known = ", ".join(labels) if labels else "none: run `bwv redact detect` first"
        raise PlanError(f"unknown face track {', '.join(unknown)}; this clip's tracks: {known}")
    return sorted(set(named), key=labels.index)


def speaker_spans(wanted: tuple[str, ...], segments: list[tuple[str, float, float]]) -> list[Span]:
    """The transcript segments of each named speaker group (`S1` ...)."""
    known = sorted({label for label, _s, _e in segments})
    spans = []
    for name in (w.upper() for w in wanted):
        if name not in known:
            listed = ", ".join(known) if known else "none (the clip has no speaker groups)"
            raise PlanError(f"unknown speaker {name}; this clip's speaker groups: {listed}")
        spans += [Span(s, e, name) for label, s, e in segments if label == name]
    return spans


def tokens(text: str) -> list[str]:
    """Words as compared: lower case, letters and digits only."""
    return [t for t in re.split(r"[^0-9a-z']+", text.lower().replace("’", "'")) if t.strip("'")]


def word_spans(phrase: str, words: list[tuple[float, float, str]]) -> list[Span]:
    """Every place the words of `phrase` are said one after another."""
    wanted = tokens(phrase)
    said = [(s, e, t) for s, e, text in words for t in tokens(text)]
    spans = []
    for i in range(len(said) - len(wanted) + 1):
        if [t for _s, _e, t in said[i : i + len(wanted)]] == wanted:
            spans.append(Span(said[i][0], said[i + len(wanted) - 1][1], f"words: {phrase}"))
    return spans


def merged(spans: list[Span], duration_s: float | None, pad_s: float = SPAN_PAD_S) -> list[Span]:
    """Spans padded, clipped to the clip and merged where they overlap, in time order."""
    end_limit = duration_s if duration_s else float("inf")
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start_s):
        start, end = max(0.0, span.start_s - pad_s), min(end_limit, span.end_s + pad_s)
        if end <= start:
            continue
        if out and start <= out[-1].end_s:
            last = out[-1]
            why = last.why if span.why in last.why.split("; ") else f"{last.why}; {span.why}"
            out[-1] = Span(last.start_s, max(last.end_s, end), why)
        else:
            out.append(Span(start, end, span.why))
    return out

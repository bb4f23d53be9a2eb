"""Simulated conversations and how often a clip rule calls a child in adult-only speech.

Per-segment AUC says little about the compliance question (did a clip capture a child?), so
training also simulates two-minute conversations of unseen speakers and reports how often
clip rules ("p >= t for at least s seconds") fire on adult-only speech and find a child.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.encoder import FRAME_S
from ingest.voice.training.data import Examples, FrameSet

CHILD_TURN_SHARE = 0.25  # in simulated adult-and-child conversations, the child's turns
RULE_THRESHOLDS = (0.5, 0.7, 0.8, 0.9)
GROUPED_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75)
RULE_MIN_CHILD_S = (2.0, 5.0, 10.0, 20.0)
AGE_BANDS = ((0, 8), (9, 10), (11, 12))  # the child's age (years), for "found" by age


@dataclass
class Conversations:
    """Simulated conversations of test-fold speakers, scored by models that never heard them."""

    kind: str  # "adult-only" or "adult-and-child"
    segments: Examples
    conversation: np.ndarray  # [segments] conversation index
    probs: np.ndarray  # [segments] calibrated out-of-fold child probability, segment alone
    speaker_probs: np.ndarray  # [segments] its speaker group's pooled probability
    length_s: float
    oracle_probs: np.ndarray | None = None  # the same, grouped by the true speakers
    child_ages: np.ndarray | None = None  # [conversations] the child's age, where one speaks

    def child_seconds(self, threshold: float, grouped: bool | str = False) -> np.ndarray:
        """Per conversation, the seconds of segments with probability >= threshold."""
        probs = self.speaker_probs if grouped else self.probs
        if grouped == "oracle":
            assert self.oracle_probs is not None, "simulated without true speakers"
            probs = self.oracle_probs
        seconds = self.segments.frames * FRAME_S * (probs >= threshold)
        return np.bincount(self.conversation, weights=seconds)

    def rate(self, threshold: float, min_child_s: float, grouped: bool | str = False) -> float:
        """Share of conversations a `min_child_s` over `threshold` rule would call child."""
        return float(np.mean(self.child_seconds(threshold, grouped) >= min_child_s))

    def found_by_age(self, threshold: float, grouped: bool | str) -> list[tuple[str, int, float]]:
        """(ages, conversations, share found) per band of the child's age: which children
        the 95 % target is lost on."""
        assert self.child_ages is not None, "simulated without a child"
        found = self.child_seconds(threshold, grouped) >= 2.0
        rows = []
        for low, high in AGE_BANDS:
            band = (self.child_ages >= low) & (self.child_ages <= high)
            if band.any():
                rows.append((f"{low}-{high}", int(band.sum()), float(found[band].mean())))
        return rows


def simulate_conversations(
    frame_set: FrameSet,
    folds: np.ndarray,
    count: int,
    with_child: bool = False,
    length_s: float = 120.0,
    seed: int = 0,
) -> tuple[Examples, np.ndarray]:
    """Speakers of one test fold taking turns in segments of 2-8 s for `length_s` seconds.

    Two or three adults (body-worn incidents often have several officers and adults); or one
    or two adults with a child who takes a quarter of the turns. Segments are crops of their
    utterances (whole when shorter). Returns the segments and the conversation each belongs
    to. `folds` gives the fold of each of `frame_set`'s utterances.
    """
    rng = np.random.default_rng([seed, int(with_child)])
    turns: list[tuple[int, int, slice]] = []  # conversation, utterance, frames
    for c in range(count):
        in_fold = folds == c % (int(folds.max()) + 1)
        people = _people(frame_set, in_fold, with_child, rng)
        share = CHILD_TURN_SHARE if with_child else 0.0
        turns += [(c, i, span) for i, span in _turns(frame_set, people, share, length_s, rng)]
    rows = [frame_set.embedding(i, span) for _, i, span in turns]
    lengths = np.array([span.stop - span.start for _, _, span in turns])
    examples = Examples(np.stack(rows), np.array([t[1] for t in turns]), lengths)
    return examples, np.array([t[0] for t in turns])


def _people(
    frame_set: FrameSet, in_fold: np.ndarray, with_child: bool, rng: np.random.Generator
) -> tuple[list[str], str | None]:
    """The conversation's adults (one or two with a child, else two or three) and child."""
    adults = sorted(set(frame_set.speakers[in_fold & (frame_set.labels == 0)].tolist()))
    children = sorted(set(frame_set.speakers[in_fold & (frame_set.labels == 1)].tolist()))
    count = int(rng.integers(1, 3)) if with_child else int(rng.integers(2, 4))
    chosen = [str(s) for s in rng.choice(adults, size=count, replace=len(adults) < count)]
    return chosen, str(rng.choice(children)) if with_child else None


def _turns(
    frame_set: FrameSet,
    people: tuple[list[str], str | None],
    share: float,
    length_s: float,
    rng: np.random.Generator,
) -> list[tuple[int, slice]]:
    """Turns until `length_s`: the child (if any) takes `share` of them, the adults the rest
    at random, the first adult (the camera's wearer) twice as often as each other adult."""
    adults, child = people
    weights = np.array([2.0] + [1.0] * (len(adults) - 1))
    turns: list[tuple[int, slice]] = []
    total = 0.0
    while total < length_s:
        if child is not None and rng.random() < share:
            speaker = child
        else:
            speaker = adults[int(rng.choice(len(adults), p=weights / weights.sum()))]
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
    # as `grouped`, with each conversation's segments grouped by their true speakers
    oracle: list[tuple[float, float, float]] | None = None
    # (ages, conversations, found) at the shipped threshold, grouped and by true speakers
    found_by_age: list[tuple[str, int, float]] | None = None
    oracle_found_by_age: list[tuple[str, int, float]] | None = None

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
            *(
                [
                    "  grouped by the true speakers (the best any grouping could do):",
                    *(
                        f"  t {t:.2f}: {false:6.1%} / {found:6.1%}"
                        for t, false, found in self.oracle
                    ),
                ]
                if self.oracle
                else []
            ),
            *self._by_age_lines(),
            f"  segments judged alone ({self.segment_rate:.1%} of adult segments of 2-8 s "
            f"reach p >= {self.threshold:.2f}), rule p >= t for >= s seconds:",
            *(
                f"  t {t:.2f}, s {m:4g}: {false:6.1%} / {found:6.1%}"
                for t, m, false, found in self.rules
            ),
        ]

    def _by_age_lines(self) -> list[str]:
        if not self.found_by_age:
            return []
        oracle = {ages: found for ages, _, found in self.oracle_found_by_age or []}
        return [
            f"  child found at t {self.threshold:.2f} by the child's age "
            "(grouped / true speakers):",
            *(
                f"  aged {ages:>5}: {found:6.1%} / {oracle.get(ages, float('nan')):6.1%} "
                f"of {count} conversations"
                for ages, count, found in self.found_by_age
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
        oracle=None
        if adults.oracle_probs is None or mixed.oracle_probs is None
        else [
            (t, adults.rate(t, 2.0, grouped="oracle"), mixed.rate(t, 2.0, grouped="oracle"))
            for t in sorted({*GROUPED_THRESHOLDS, threshold})
        ],
        rules=[
            (t, m, adults.rate(t, m), mixed.rate(t, m))
            for t in RULE_THRESHOLDS
            for m in RULE_MIN_CHILD_S
        ],
        found_by_age=None if mixed.child_ages is None else mixed.found_by_age(threshold, True),
        oracle_found_by_age=None
        if mixed.child_ages is None or mixed.oracle_probs is None
        else mixed.found_by_age(threshold, "oracle"),
    )

"""The figures reported for a classifier: AUC, calibration error and threshold scores.

Kept apart from training so that `bwv voice evaluate` scores a shipped classifier with
exactly the definitions cross-validation used to choose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.voice.training.data import CHILD_MAX_AGE


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties sharing their mean rank.

    NaN when only one class is present: an AUC is then undefined, not 0.5.
    """
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of each distinct value
    ranks = (first_rank + (counts - 1) / 2)[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Mean |observed child rate - mean probability| over ten equal-width bins, by count."""
    which = np.minimum((probs * bins).astype(int), bins - 1)
    gaps = [
        np.sum(which == b) * abs(labels[which == b].mean() - probs[which == b].mean())
        for b in range(bins)
        if np.any(which == b)
    ]
    return float(np.sum(gaps) / len(probs))


@dataclass(frozen=True)
class Scores:
    """How well probabilities separate children from adults, and how honest they are."""

    utterances: int
    speakers: int
    child_speakers: int
    utterance_auc: float
    speaker_auc: float
    threshold: float
    precision: float
    recall: float
    false_positive_rate: float
    ece: float
    brier: float
    # each speaker's utterances pooled as one speaker group and judged as ingest judges one
    group_speaker_auc: float | None = None

    def lines(self) -> list[str]:
        return [
            f"utterances {self.utterances}, speakers {self.speakers} "
            f"({self.child_speakers} children aged {CHILD_MAX_AGE} or under)",
            f"utterance AUC {_figure(self.utterance_auc)}",
            f"speaker AUC {_figure(self.speaker_auc)} (speaker score = mean utterance probability)",
            *(
                []
                if self.group_speaker_auc is None
                else [
                    f"speaker AUC {_figure(self.group_speaker_auc)} (all of a speaker's "
                    "utterances judged as one speaker group, as ingest judges a clip's group)"
                ]
            ),
            f"at threshold {self.threshold:.2f}: precision {_figure(self.precision)}, "
            f"recall {_figure(self.recall)}, adult utterances called child "
            f"{_figure(self.false_positive_rate)}",
            f"calibration: expected calibration error {self.ece:.3f}, Brier score {self.brier:.3f}",
        ]


def _figure(value: float) -> str:
    """Three decimals, or why there is no value (an AUC needs children and adults)."""
    return "n/a (needs both children and adults)" if value != value else f"{value:.3f}"


def speaker_auc(labels: np.ndarray, scores: np.ndarray, speakers: np.ndarray) -> float:
    """AUC over speakers, each scored by the mean of its utterances' scores."""
    _, index = np.unique(speakers, return_inverse=True)
    mean = np.bincount(index, weights=scores) / np.bincount(index)
    child = np.bincount(index, weights=np.asarray(labels, float)) > 0
    return auc(child, mean)


def score(
    labels: np.ndarray,
    probs: np.ndarray,
    speakers: np.ndarray,
    threshold: float,
    group_scores: np.ndarray | None = None,
) -> Scores:
    """The figures of `probs`; `group_scores`, one per speaker in sorted name order, are
    each speaker's score as one group."""
    labels = np.asarray(labels, dtype=float)
    names = sorted(set(speakers.tolist()))
    speaker_labels = np.array([labels[speakers == s][0] for s in names])
    speaker_probs = np.array([probs[speakers == s].mean() for s in names])
    called = probs >= threshold
    return Scores(
        utterances=len(labels),
        speakers=len(names),
        child_speakers=int(speaker_labels.sum()),
        utterance_auc=auc(labels, probs),
        speaker_auc=auc(speaker_labels, speaker_probs),
        threshold=threshold,
        precision=_ratio(np.sum(called & (labels == 1)), np.sum(called)),
        recall=_ratio(np.sum(called & (labels == 1)), np.sum(labels == 1)),
        false_positive_rate=_ratio(np.sum(called & (labels == 0)), np.sum(labels == 0)),
        ece=expected_calibration_error(labels, probs),
        brier=float(np.mean((probs - labels) ** 2)),
        group_speaker_auc=None if group_scores is None else auc(speaker_labels, group_scores),
    )


def _ratio(numerator: Any, denominator: Any) -> float:
    return float(numerator / denominator) if denominator else float("nan")

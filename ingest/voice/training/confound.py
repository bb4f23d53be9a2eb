"""How much of the child-voice score is the voice, and how much is the words.

The training corpus is learners reading English, and its children read less fluently than
its adults. Whisper's encoder states carry pronunciation and content as well as the voice,
so a classifier on them can learn "reads like a learner" instead of "sounds like a child".
Two measurements, both speaker-disjoint, are printed by `bwv voice train`:

- ablation: the same cross-validation on each feature group alone (encoder states, log-mel
  statistics, and the language-independent pitch, formant and tilt cues), and together;
- reversed speech: the same utterances played backwards keep the voice (pitch, formants,
  spectral tilt are unchanged by time reversal) but lose every word. A feature group whose
  AUC collapses on reversed speech was reading the words, not the voice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ingest.voice.model import ACOUSTIC_FEATURES
from ingest.voice.training.crossval import cross_validate
from ingest.voice.training.data import Examples
from ingest.voice.training.metrics import auc, speaker_auc
from ingest.voice.training.network import NetConfig


def feature_groups(width: int, d_model: int) -> dict[str, np.ndarray]:
    """Column indices of each feature group in an embedding `width` numbers long."""
    encoder = np.arange(3 * d_model)
    mel = np.arange(3 * d_model, width - ACOUSTIC_FEATURES)
    acoustic = np.arange(width - ACOUSTIC_FEATURES, width)
    return {
        "encoder states": encoder,
        "log-mel statistics": mel,
        "pitch, formants, tilt": acoustic,
        "encoder + log-mel (bwv 1.0)": np.r_[encoder, mel],
        "all (shipped)": np.arange(width),
    }


@dataclass(frozen=True)
class GroupFigures:
    group: str
    features: int
    utterance_auc: dict[str, float]  # test condition -> utterance AUC
    speaker_auc: dict[str, float]  # test condition -> speaker AUC


@dataclass(frozen=True)
class ConfoundFigures:
    groups: list[GroupFigures]

    def lines(self) -> list[str]:
        conditions = list(self.groups[0].utterance_auc)
        head = "  ".join(f"{c:>18}" for c in conditions)
        lines = [
            "== what the score rests on: each feature group alone, speaker-disjoint "
            "(utterance AUC / speaker AUC)",
            f"  {'features':<34}{head}",
        ]
        for g in self.groups:
            cells = "  ".join(
                f"{g.utterance_auc[c]:>9.3f} / {g.speaker_auc[c]:.3f}" for c in conditions
            )
            lines.append(f"  {g.group + f' ({g.features})':<34}{cells}")
        return [
            *lines,
            "  (forward and reversed: the same utterances, the reversed ones played backwards: "
            "same voice, no words)",
        ]


def measure_confound(
    train_sets: list[Examples],
    tests: dict[str, Examples],
    labels: np.ndarray,
    speakers: np.ndarray,
    folds: np.ndarray,
    config: NetConfig,
    d_model: int,
) -> ConfoundFigures:
    """Cross-validates each feature group on `train_sets` and scores every test set with
    the fold model that never heard its speakers."""
    width = train_sets[0].x.shape[1]
    figures = []
    for name, columns in feature_groups(width, d_model).items():
        # The acoustic weight is for the acoustic columns of the whole embedding only.
        chosen = config if len(columns) == width else replace(config, acoustic_weight=1.0)
        cv = cross_validate([_columns(e, columns) for e in train_sets], labels, folds, chosen)
        logits = {c: cv.logits(_columns(e, columns)) for c, e in tests.items()}
        figures.append(
            GroupFigures(
                name,
                len(columns),
                {c: auc(labels[tests[c].source], s) for c, s in logits.items()},
                {
                    c: speaker_auc(labels[tests[c].source], s, speakers[tests[c].source])
                    for c, s in logits.items()
                },
            )
        )
    return ConfoundFigures(figures)


def _columns(examples: Examples, columns: np.ndarray) -> Examples:
    return Examples(examples.x[:, columns], examples.source, examples.frames)

"""Speaker-disjoint cross-validation: which speakers train, which test, and the models and
calibration that come out of each split.

Every figure is speaker-disjoint: folds are drawn by speaker, never by utterance, because an
utterance-level split lets a classifier recognise voices instead of ages. The speakers held
out of the final fit are chosen here too, so the shipped file can be tested on voices it
never heard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from ingest.encoder import FRAME_S
from ingest.voice.model import ACOUSTIC_FEATURES, ChildVoiceModel, sigmoid
from ingest.voice.speakers import fit_speaker_space
from ingest.voice.training.data import Examples
from ingest.voice.training.network import NetConfig, fit_networks, fit_platt

MODEL_NAME = "bwv-child-voice"
MODEL_VERSION = "2.0"
HELD_OUT_PER_CLASS = 4  # children and adults left out of the final fit, for the shipped test


def speaker_folds(speakers: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The fold of each utterance; whole speakers per fold, children spread evenly."""
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for label in (0.0, 1.0):
        group = rng.permutation(sorted(set(speakers[labels == label])))
        fold_of.update({str(s): i % k for i, s in enumerate(group)})
    return np.array([fold_of[str(s)] for s in speakers])


def fit_model(
    sets: list[Examples],
    labels: np.ndarray,
    use: np.ndarray,
    config: NetConfig,
    seed: int = 0,
    speakers: np.ndarray | None = None,
) -> ChildVoiceModel:
    """An uncalibrated classifier from the examples whose source utterance has `use` true;
    given `speakers`, also the speaker space its clips' segments are grouped in."""
    x = np.concatenate([s.x[use[s.source]] for s in sets])
    y = np.concatenate([labels[s.source[use[s.source]]] for s in sets])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    scale[-ACOUSTIC_FEATURES:] /= config.acoustic_weight  # folded into the shipped scale
    networks = fit_networks((x - mean) / scale, y, config, seed)
    model = ChildVoiceModel(MODEL_NAME, MODEL_VERSION, mean, scale, networks)
    if speakers is not None:
        who = np.concatenate([speakers[s.source[use[s.source]]] for s in sets])
        model.speakers = fit_speaker_space((x - mean) / scale, who)
    return model


@dataclass
class CrossValidation:
    """Per-fold models trained without the fold's speakers, for out-of-fold scoring."""

    folds: np.ndarray
    models: list[ChildVoiceModel]
    calibrations: list[tuple[float, float]] = field(default_factory=list)

    def logits(self, examples: Examples) -> np.ndarray:
        """Each example scored by the model that never saw its speaker."""
        fold = self.folds[examples.source]
        out = np.zeros(len(examples.x))
        for f, model in enumerate(self.models):
            if np.any(fold == f):
                out[fold == f] = model.logits(examples.x[fold == f])
        return out

    def calibrate(
        self, sets: list[Examples], labels: np.ndarray, final_use: np.ndarray
    ) -> tuple[float, float]:
        """Cross-fitted Platt scaling (each fold's from the other folds' out-of-fold logits),
        so calibration figures are honest; returns the scaling fitted on every fold's
        utterances that `final_use` marks, for the final model."""
        logits = np.concatenate([self.logits(e) for e in sets])
        source = np.concatenate([e.source for e in sets])
        fold = self.folds[source]
        self.calibrations = [
            fit_platt(logits[fold != f], labels[source[fold != f]]) for f in range(len(self.models))
        ]
        use = final_use[source]
        return fit_platt(logits[use], labels[source[use]])

    def probabilities(self, examples: Examples) -> np.ndarray:
        logits, fold = self.logits(examples), self.folds[examples.source]
        out = np.zeros(len(logits))
        for f, (slope, intercept) in enumerate(self.calibrations):
            out[fold == f] = sigmoid(slope * logits[fold == f] + intercept)
        return out

    def speaker_probabilities(self, examples: Examples, clip: np.ndarray) -> np.ndarray:
        """Each clip's segments grouped by voice as ingest groups them, by the model (and
        speaker space) of the fold the clip's speakers were held out from."""
        out = np.zeros(len(examples.x))
        for c in np.unique(clip):
            chosen = clip == c
            f = int(self.folds[examples.source[chosen][0]])
            model = replace(self.models[f], calibration=self.calibrations[f])
            seconds = examples.frames[chosen] * FRAME_S
            out[chosen] = model.attribute(examples.x[chosen], seconds).speaker_probabilities
        return out


def cross_validate(
    sets: list[Examples],
    labels: np.ndarray,
    folds: np.ndarray,
    config: NetConfig,
    speakers: np.ndarray | None = None,
) -> CrossValidation:
    models = [
        fit_model(sets, labels, folds != f, config, seed=f, speakers=speakers)
        for f in range(int(folds.max()) + 1)
    ]
    return CrossValidation(folds, models)


def held_out_speakers(speakers: np.ndarray, labels: np.ndarray) -> list[str]:
    """Speakers kept out of the final fit so the shipped file can be checked on voices it
    never heard (tests/ingest/test_voice.py): the first few children and adults in a hashed order,
    a choice that depends on nothing but the speaker ids."""
    chosen: list[str] = []
    for label in (1.0, 0.0):
        names = sorted(
            {str(s) for s in speakers[labels == label]},
            key=lambda s: hashlib.sha256(s.encode()).hexdigest(),
        )
        chosen += names[:HELD_OUT_PER_CLASS]
    return sorted(chosen)

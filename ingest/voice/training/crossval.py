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
from ingest.voice.model import ACOUSTIC_FEATURES, ChildVoiceModel, GroupClassifier, sigmoid
from ingest.voice.speakers import fit_speaker_space
from ingest.voice.training.data import Examples
from ingest.voice.training.network import NetConfig, fit_networks, fit_platt

MODEL_NAME = "bwv-child-voice"
MODEL_VERSION = "2.0"
HELD_OUT_PER_CLASS = 4  # children and adults left out of the final fit, for the shipped test
# A simulated speaker group: this many seconds (uniform) of one speaker's 2-8 s pieces, about
# what a speaker with a quarter to a half of a 2-minute clip says.
GROUP_SECONDS = (10.0, 40.0)
GROUPS_PER_SPEAKER = 60  # training groups drawn per speaker for the group classifier
GROUP_CONFIG = NetConfig(epochs=40)


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
    bank: PieceBank | None = None,
) -> ChildVoiceModel:
    """An uncalibrated classifier from the examples whose source utterance has `use` true;
    given `speakers`, also the speaker space its clips' segments are grouped in, and given a
    `bank` of pieces too, the classifier of whole speaker groups."""
    x = np.concatenate([s.x[use[s.source]] for s in sets])
    y = np.concatenate([labels[s.source[use[s.source]]] for s in sets])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    scale[-ACOUSTIC_FEATURES:] /= config.acoustic_weight  # folded into the shipped scale
    networks = fit_networks((x - mean) / scale, y, config, seed)
    model = ChildVoiceModel(MODEL_NAME, MODEL_VERSION, mean, scale, networks)
    if speakers is not None:
        who = np.concatenate([speakers[s.source[use[s.source]]] for s in sets])
        model.speakers = fit_speaker_space((x - mean) / scale, who)
        if bank is not None:
            model.group = fit_group_classifier(bank, labels, speakers, use, GROUP_CONFIG, seed)
    return model


@dataclass
class CrossValidation:
    """Per-fold models trained without the fold's speakers, for out-of-fold scoring."""

    folds: np.ndarray
    models: list[ChildVoiceModel]
    calibrations: list[tuple[float, float]] = field(default_factory=list)
    group_calibrations: list[tuple[float, float]] = field(default_factory=list)

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

    def calibrate_groups(
        self, bank: PieceBank, labels: np.ndarray, speakers: np.ndarray, final_use: np.ndarray
    ) -> tuple[float, float]:
        """The same cross-fitted Platt scaling for the group classifiers, on groups drawn from
        each fold's own speakers; returns the scaling for the final model."""
        logits, y, fold, use = [], [], [], []
        for f, model in enumerate(self.models):
            assert model.group is not None, "fitted without a piece bank"
            chosen = np.unique(speakers[self.folds == f])
            x, truth = bank.sample(labels, speakers, chosen, GROUPS_PER_SPEAKER // 2, 1000 + f)
            logits.append(model.group.logits(x))
            y.append(truth)
            fold.append(np.full(len(x), f))
            kept = np.isin(chosen, speakers[final_use])
            use.append(np.repeat(kept, GROUPS_PER_SPEAKER // 2))
        z, t, k, u = (np.concatenate(a) for a in (logits, y, fold, use))
        self.group_calibrations = [fit_platt(z[k != f], t[k != f]) for f in range(len(self.models))]
        return fit_platt(z[u], t[u])

    def fold_model(self, f: int) -> ChildVoiceModel:
        """Fold `f`'s model with its cross-fitted calibrations, as ingest would use it."""
        model = replace(self.models[f], calibration=self.calibrations[f])
        if model.group is not None and self.group_calibrations:
            model.group = replace(model.group, calibration=self.group_calibrations[f])
        return model

    def speaker_logits(
        self, examples: Examples, speakers: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each speaker's examples pooled as one group and judged as ingest judges a group,
        by the fold model that never heard them: speaker names and calibrated logits."""
        names, index = np.unique(speakers[examples.source], return_inverse=True)
        out = np.zeros(len(names))
        for i in range(len(names)):
            chosen = index == i
            model = self.fold_model(int(self.folds[examples.source[chosen][0]]))
            logits = model.calibrated_logits(examples.x[chosen])
            seconds = examples.frames[chosen] * FRAME_S
            labels = np.zeros(int(chosen.sum()), np.int64)
            out[i] = model.group_logits(examples.x[chosen], seconds, labels, logits)[0]
        return names, out

    def probabilities(self, examples: Examples) -> np.ndarray:
        logits, fold = self.logits(examples), self.folds[examples.source]
        out = np.zeros(len(logits))
        for f, (slope, intercept) in enumerate(self.calibrations):
            out[fold == f] = sigmoid(slope * logits[fold == f] + intercept)
        return out

    def speaker_probabilities(
        self, examples: Examples, clip: np.ndarray, truth: np.ndarray | None = None
    ) -> np.ndarray:
        """Each clip's segments grouped by voice as ingest groups them, by the model (and
        speaker space) of the fold the clip's speakers were held out from; or, given each
        example's true speaker (`truth`), grouped by it: the best any grouping could do."""
        out = np.zeros(len(examples.x))
        for c in np.unique(clip):
            chosen = clip == c
            model = self.fold_model(int(self.folds[examples.source[chosen][0]]))
            seconds = examples.frames[chosen] * FRAME_S
            if truth is None:
                found = model.attribute(examples.x[chosen], seconds).speaker_probabilities
            else:
                labels = np.unique(truth[chosen], return_inverse=True)[1]
                logits = model.calibrated_logits(examples.x[chosen])
                found = sigmoid(model.group_logits(examples.x[chosen], seconds, labels, logits))
            out[chosen] = found
        return out


def cross_validate(
    sets: list[Examples],
    labels: np.ndarray,
    folds: np.ndarray,
    config: NetConfig,
    speakers: np.ndarray | None = None,
    bank: PieceBank | None = None,
) -> CrossValidation:
    models = [
        fit_model(sets, labels, folds != f, config, seed=f, speakers=speakers, bank=bank)
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


@dataclass(frozen=True)
class PieceBank:
    """Short pieces (2-8 s crops) of every utterance, per condition, to draw speaker groups
    from: a group is one condition's pieces of one speaker, as one clip's group is."""

    pieces: list[Examples]  # one per condition

    def sample(
        self,
        labels: np.ndarray,
        speakers: np.ndarray,
        chosen: np.ndarray,
        per_speaker: int,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`per_speaker` pooled groups of each speaker in `chosen`: features and labels."""
        rng = np.random.default_rng(seed)
        rows = [
            {str(s): np.flatnonzero(speakers[p.source] == s) for s in chosen} for p in self.pieces
        ]
        pooled, y = [], []
        for name in chosen:
            for _ in range(per_speaker):
                condition = int(rng.integers(len(self.pieces)))
                pooled.append(self._group(condition, rows[condition][str(name)], rng))
                y.append(labels[speakers == name][0])
        return np.stack(pooled), np.array(y, np.float64)

    def _group(self, condition: int, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pieces, goal = self.pieces[condition], rng.uniform(*GROUP_SECONDS)
        picked: list[int] = []
        while pieces.frames[picked].sum() * FRAME_S < goal:
            picked.append(int(rng.choice(rows)))
        weights = pieces.frames[picked].astype(np.float64)
        return np.asarray(weights @ pieces.x[picked] / weights.sum())


def fit_group_classifier(
    bank: PieceBank,
    labels: np.ndarray,
    speakers: np.ndarray,
    use: np.ndarray,
    config: NetConfig,
    seed: int,
) -> GroupClassifier:
    """Logistic regression on pooled groups of the speakers whose utterances `use` marks."""
    chosen = np.unique(speakers[use])
    x, y = bank.sample(labels, speakers, chosen, GROUPS_PER_SPEAKER, seed)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    (weight, bias), *_ = fit_networks((x - mean) / scale, y, config, seed)[0]
    return GroupClassifier(mean, scale, weight.ravel().astype(np.float64), float(bias[0]))

"""Training and evaluating the child-voice classifier on a labelled folder of utterances:
the two entry points of `bwv voice` (and a spot check for known turns of a recording).

This module only orchestrates: frames come from `data` (cached, see `data.cache_dir`),
body-worn copies from `augment`, the classifier's arithmetic from `network`, speaker-
disjoint folds and calibration from `crossval`, the figures from `metrics` and the
simulated conversations from `simulate`. Every figure is speaker-disjoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

# Speech counts as a child's when its speaker group's pooled probability reaches this: the
# compliance policy's default too. Chosen from the simulated conversations `train` prints:
# the highest sensitivity that keeps adult-only clips called child "rarely" (a few %).
from bwv.core.child_speech import DEFAULT_THRESHOLD
from bwv.core.errors import BwvError
from ingest.encoder import Piece, pack_windows
from ingest.voice.model import ChildVoiceModel, segment_embedding
from ingest.voice.training.confound import ConfoundFigures, measure_confound
from ingest.voice.training.crossval import (
    HELD_OUT_PER_CLASS,
    CrossValidation,
    PieceBank,
    cross_validate,
    fit_model,
    held_out_speakers,
    speaker_folds,
)
from ingest.voice.training.data import (
    CHILD_MAX_AGE,
    Examples,
    FrameSet,
    Utterance,
    cache_dir,
    cache_path,
    embed_crops,
    embed_utterances,
    extract_frames,
    frames_per_piece,
    load_audio,
    read_labels,
    with_acoustics,
)
from ingest.voice.training.metrics import Scores, auc, score
from ingest.voice.training.network import NetConfig
from ingest.voice.training.simulate import (
    Conversations,
    FalseAttribution,
    false_attribution,
    simulate_conversations,
)

CLEAN = "clean"
BODYWORN_TEST = "bodyworn1"  # the augmented copy figures are reported on
HARD_TEST = "hard1"  # harder body-worn conditions (overlap, TV, wind...): test only
REVERSED = "reversed"  # the same voices played backwards: the confound test
AUGMENTED = ("clean", "bodyworn1")
# Test-only conditions are encoded for a share of the utterances (every n-th), to bound the
# encoding time; every speaker keeps several utterances in each.
SUBSET_EVERY = {BODYWORN_TEST: 2, HARD_TEST: 4, REVERSED: 5}
CROP_SECONDS = (1.0, 2.0, 3.0, 5.0)
BANK_PIECES = 4  # random 2-8 s pieces per utterance and condition to draw speaker groups from


@dataclass(frozen=True)
class TrainOptions:
    folds: int = 5
    augment: bool = True
    crops: int = 0  # extra random 1-5 s crops per utterance and condition in training
    config: NetConfig = field(default_factory=NetConfig)
    conversations: int = 200
    model_name: str = "tiny.en"
    # judge each speaker group with a classifier of pooled group features instead of the
    # mean of its segments' logits (measured, not shipped: see the model card)
    group_classifier: bool = False


@dataclass(frozen=True)
class RecipeFigures:
    """Speaker-disjoint cross-validation of one training recipe."""

    recipe: str
    clean: Scores
    bodyworn: Scores | None  # None when trained without body-worn copies (not encoded)
    hard: Scores
    crop_auc: dict[float, float]  # segment seconds -> utterance AUC on clean crops

    def lines(self) -> list[str]:
        crops = ", ".join(f"{s:g} s {a:.3f}" for s, a in self.crop_auc.items())
        return [
            f"== trained on {self.recipe}",
            "-- tested on clean utterances",
            *self.clean.lines(),
            *(
                [
                    "-- tested on body-worn augmented utterances (noise, room, gain, AAC)",
                    *self.bodyworn.lines(),
                ]
                if self.bodyworn
                else []
            ),
            "-- tested on harder body-worn utterances (another adult talking over, TV or radio, "
            "reverberant room, rubbing and wind, band-limited or muffled, AAC; every "
            f"{SUBSET_EVERY[HARD_TEST]}th utterance)",
            *self.hard.lines(),
            f"-- utterance AUC on clean segments cut to a fixed length: {crops}",
        ]


@dataclass(frozen=True)
class TrainResult:
    out_path: Path
    model: ChildVoiceModel
    folds: int
    recipes: list[RecipeFigures]
    false_attributions: list[FalseAttribution]
    confound: ConfoundFigures

    def lines(self) -> list[str]:
        header = (
            f"speaker-disjoint {self.folds}-fold cross-validation "
            "(probabilities calibrated on the other folds)"
        )
        lines = [header]
        for figures in self.recipes:
            lines += figures.lines()
        for attribution in self.false_attributions:
            first, *rest = attribution.lines()
            lines += [f"-- {first}", *rest]
        lines += self.confound.lines()
        return [*lines, f"wrote {self.out_path} (threshold {self.model.threshold:.2f})"]


def train(
    data_dir: Path,
    out_path: Path,
    options: TrainOptions | None = None,
    log: Callable[[str], None] = lambda _message: None,
) -> TrainResult:
    """Cross-validates clean and augmented training by speaker, then fits and saves the model
    on every speaker but the held-out ones, with the augmented recipe (clean when `augment`
    is off) and the Platt scaling fitted on its out-of-fold scores."""
    options = options or TrainOptions()
    _make_output_folder(out_path)  # now, not after the encoding and fitting it would waste
    utterances = read_labels(data_dir)
    _check_trainable(utterances, options.folds)
    conditions = AUGMENTED if options.augment else (CLEAN,)
    chosen = {c: utterances[:: SUBSET_EVERY.get(c, 1)] for c in (*conditions, HARD_TEST, REVERSED)}
    sets = {
        c: with_acoustics(_extract_logged(chosen_u, c, options.model_name, log), c)
        for c, chosen_u in chosen.items()
    }
    data = _TrainingData(
        sets, speaker_folds(sets[CLEAN].speakers, sets[CLEAN].labels, options.folds)
    )
    recipes: list[tuple[str, tuple[str, ...]]] = [("clean utterances only", (CLEAN,))]
    if options.augment:
        recipes.append(("clean + a body-worn augmented copy", AUGMENTED))
    log("cross-validating")
    results = [data.cross_validate(name, chosen, options) for name, chosen in recipes]
    _, cv, calibration = results[-1]
    false_attributions = [
        data.false_attribution(cv, c, options.conversations)
        for c in (CLEAN, BODYWORN_TEST, HARD_TEST)
        if c in sets
    ]
    log("measuring what the score rests on")
    confound = data.confound(recipes[-1][1], options)
    log("fitting the final model on every speaker but the held-out ones")
    model = data.final_model(recipes[-1][1], options, calibration)
    model.meta = _model_meta(data_dir, options, [r[0] for r in results], false_attributions)
    model.meta["held_out_speakers"] = data.held_out
    model.meta["confound"] = asdict(confound)
    _write_model(model, out_path)
    figures = [r[0] for r in results]
    return TrainResult(out_path, model, options.folds, figures, false_attributions, confound)


@dataclass
class _TrainingData:
    """Frame sets per condition, their embeddings, and the speaker folds shared by all."""

    sets: dict[str, FrameSet]
    folds: np.ndarray
    examples: dict[str, Examples] = field(init=False)

    def __post_init__(self) -> None:
        self.examples = {c: self.in_clean(c, embed_utterances(s)) for c, s in self.sets.items()}

    @cached_property
    def index(self) -> dict[str, np.ndarray]:
        """Per condition, each of its utterances' index in the clean set (conditions may
        hold a subset), so that folds, labels and speakers are always the clean set's."""
        position = {u.path: i for i, u in enumerate(self.sets[CLEAN].utterances)}
        return {c: np.array([position[u.path] for u in s.utterances]) for c, s in self.sets.items()}

    def in_clean(self, condition: str, examples: Examples) -> Examples:
        return Examples(examples.x, self.index[condition][examples.source], examples.frames)

    @property
    def labels(self) -> np.ndarray:
        return self.sets[CLEAN].labels

    @property
    def speakers(self) -> np.ndarray:
        return self.sets[CLEAN].speakers

    @cached_property
    def held_out(self) -> list[str]:
        return held_out_speakers(self.speakers, self.labels)

    @cached_property
    def final_use(self) -> np.ndarray:
        """Utterances the final model learns from: all but the held-out speakers'."""
        return ~np.isin(self.speakers, self.held_out)

    def training_examples(self, conditions: tuple[str, ...], crops: int) -> list[Examples]:
        whole = [self.examples[c] for c in conditions]
        cut = [
            self.in_clean(c, embed_crops(self.sets[c], (1.0, 5.0), seed=k))
            for k in range(crops)
            for c in conditions
        ]
        return whole + cut

    def bank(self, conditions: tuple[str, ...]) -> PieceBank:
        """Random 2-8 s pieces of every utterance under each training condition."""
        return PieceBank([self._pieces(c) for c in conditions])

    def _pieces(self, condition: str) -> Examples:
        cut = [
            embed_crops(self.sets[condition], (2.0, 8.0), seed=100 + k) for k in range(BANK_PIECES)
        ]
        joined = Examples(
            *(np.concatenate([getattr(e, a) for e in cut]) for a in ("x", "source", "frames"))
        )
        return self.in_clean(condition, joined)

    def cross_validate(
        self, recipe: str, conditions: tuple[str, ...], options: TrainOptions
    ) -> tuple[RecipeFigures, CrossValidation, tuple[tuple[float, float], tuple[float, float]]]:
        """The recipe's figures, its cross-validation, and the calibrations (segment, group)
        for the final model."""
        train_sets = self.training_examples(conditions, options.crops)
        bank = self.bank(conditions) if options.group_classifier else None
        cv = cross_validate(
            train_sets, self.labels, self.folds, options.config, self.speakers, bank
        )
        tests = [self.examples[c] for c in (CLEAN, BODYWORN_TEST) if c in self.examples]
        calibration = cv.calibrate(tests, self.labels, self.final_use)
        group_calibration = (
            cv.calibrate_groups(bank, self.labels, self.speakers, self.final_use)
            if bank is not None
            else (1.0, 0.0)
        )
        clean, hard, *bodyworn = (
            score(
                self.labels[t.source],
                cv.probabilities(t),
                self.speakers[t.source],
                DEFAULT_THRESHOLD,
                cv.speaker_logits(t, self.speakers)[1],
            )
            for t in (tests[0], self.examples[HARD_TEST], *tests[1:])
        )
        crop_auc = {
            s: auc(self.labels, cv.logits(embed_crops(self.sets[CLEAN], (s, s), seed=99)))
            for s in CROP_SECONDS
        }
        figures = RecipeFigures(recipe, clean, bodyworn[0] if bodyworn else None, hard, crop_auc)
        return figures, cv, (calibration, group_calibration)

    def false_attribution(
        self, cv: CrossValidation, condition: str, count: int
    ) -> FalseAttribution:
        adults, mixed = (
            self.conversations(cv, condition, count, with_child) for with_child in (False, True)
        )
        return false_attribution(condition, adults, mixed, DEFAULT_THRESHOLD)

    def conversations(
        self, cv: CrossValidation, condition: str, count: int, with_child: bool
    ) -> Conversations:
        index = self.index[condition]
        segments, conversation = simulate_conversations(
            self.sets[condition], self.folds[index], count, with_child
        )
        segments = self.in_clean(condition, segments)
        kind = "adult-and-child" if with_child else "adult-only"
        probs = cv.probabilities(segments)
        grouped = cv.speaker_probabilities(segments, conversation)
        oracle = cv.speaker_probabilities(segments, conversation, self.speakers[segments.source])
        ages = self.child_ages(segments, conversation) if with_child else None
        return Conversations(kind, segments, conversation, probs, grouped, 120.0, oracle, ages)

    def child_ages(self, segments: Examples, conversation: np.ndarray) -> np.ndarray:
        """Per conversation, the age of its child (the one child speaker in it)."""
        ages = np.array([u.age for u in self.sets[CLEAN].utterances])[segments.source]
        is_child = self.labels[segments.source] == 1
        out = np.full(int(conversation.max()) + 1, -1)
        np.maximum.at(out, conversation[is_child], ages[is_child])
        return out

    def confound(self, conditions: tuple[str, ...], options: TrainOptions) -> ConfoundFigures:
        """Each feature group alone, and the same utterances forwards and reversed."""
        reversed_index = self.index[REVERSED]
        clean = self.examples[CLEAN]
        forward = Examples(clean.x[reversed_index], reversed_index, clean.frames[reversed_index])
        tests = {
            "clean": clean,
            "hard": self.examples[HARD_TEST],
            "forward": forward,
            "reversed": self.examples[REVERSED],
        }
        return measure_confound(
            self.training_examples(conditions, options.crops),
            tests,
            self.labels,
            self.speakers,
            self.folds,
            options.config,
            int(self.sets[CLEAN].frames.shape[1]),
        )

    def final_model(
        self,
        conditions: tuple[str, ...],
        options: TrainOptions,
        calibrations: tuple[tuple[float, float], tuple[float, float]],
    ) -> ChildVoiceModel:
        train_sets = self.training_examples(conditions, options.crops)
        model = fit_model(
            train_sets,
            self.labels,
            self.final_use,
            options.config,
            12345,
            self.speakers,
            self.bank(conditions) if options.group_classifier else None,
        )
        model.calibration = calibrations[0]
        if model.group is not None:
            model.group = replace(model.group, calibration=calibrations[1])
        model.threshold = DEFAULT_THRESHOLD
        return model


def _check_trainable(utterances: list[Utterance], folds: int) -> None:
    """Refuses, before any encoding, a folder too small for every fold to hold both kinds
    of speaker and for the final fit to keep some of each once the held-out ones are out."""
    children = {u.speaker for u in utterances if u.child}
    adults = {u.speaker for u in utterances if not u.child}
    needed = max(folds, HELD_OUT_PER_CLASS + 1)
    if len(children) < needed or len(adults) < needed:
        raise BwvError(
            f"training needs at least {needed} child and {needed} adult speakers "
            f"({folds}-fold cross-validation, and {HELD_OUT_PER_CLASS} of each held out of "
            f"the final fit); found {len(children)} and {len(adults)}"
        )
    if children & adults:
        raise BwvError(f"speaker(s) {sorted(children & adults)[:3]} have both child and adult ages")


def _make_output_folder(out_path: Path) -> None:
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BwvError(f"cannot write {out_path}: {exc.strerror or exc}") from None


def _write_model(model: ChildVoiceModel, out_path: Path) -> None:
    try:
        model.save(out_path)
    except OSError as exc:
        raise BwvError(f"cannot write {out_path}: {exc.strerror or exc}") from None


def _extract_logged(
    utterances: list[Utterance], condition: str, model_name: str, log: Callable[[str], None]
) -> FrameSet:
    if not cache_path(utterances, condition, model_name).is_file():
        log(f"encoding {len(utterances)} utterances ({condition}); cached under {cache_dir()}")
    return extract_frames(utterances, condition, model_name)


def _model_meta(
    data_dir: Path,
    options: TrainOptions,
    figures: list[RecipeFigures],
    false_attributions: list[FalseAttribution],
) -> dict[str, object]:
    """What the shipped file records about its own making, so it can be audited alone."""

    return {
        "encoder": options.model_name,
        "child_max_age": CHILD_MAX_AGE,
        "training_data": Path(data_dir).name,
        "network": asdict(options.config),
        "augmented": options.augment,
        "crops": options.crops,
        "group_classifier": options.group_classifier,
        "cross_validation": [asdict(f) for f in figures],
        "false_attribution": [asdict(f) for f in false_attributions],
    }


def piece_probabilities(
    audio_path: Path, pieces: list[Piece], model: ChildVoiceModel | None = None
) -> list[float]:
    """Child probability of each stretch of a recording, packed and encoded as ingest would.

    For spot checks on known turns of a clip (the sample media, a reviewer's own recording).
    """
    from ingest.encoder import load_model

    model = model or ChildVoiceModel.load()
    whisper = load_model(str(model.meta.get("encoder", "tiny.en")))
    audio = load_audio(audio_path)
    windows = pack_windows(audio, pieces)
    found = {
        index: float(model.probabilities(_piece_embedding(audio, pieces[index], enc, mel))[0])
        for index, enc, mel in frames_per_piece(whisper, windows)
    }
    return [found[i] for i in range(len(pieces))]


def _piece_embedding(
    audio: np.ndarray, piece: Piece, enc: np.ndarray, mel: np.ndarray
) -> np.ndarray:
    from ingest.encoder import SAMPLE_RATE
    from ingest.voice.acoustic import acoustic_frames

    samples = audio[int(piece.start_s * SAMPLE_RATE) : int(piece.end_s * SAMPLE_RATE)]
    return segment_embedding(enc, slice(0, len(enc)), mel, acoustic_frames(samples, len(enc)))

"""`bwv voice evaluate`: a shipped classifier, unchanged, on someone else's labelled folder.

Three views of the same recordings, each with the definitions training used: per utterance
and per speaker (AUC, calibration), per simulated conversation (is a child found when one
speaks, is one called in adults-only talk, at the shipped threshold), and, when the folder
says what was read, the word error rate of the transcripts by age group: the child's words
matter as much as the fact that they spoke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bwv.core.errors import BwvError
from ingest.encoder import FRAME_S
from ingest.voice.model import ChildVoiceModel
from ingest.voice.training.data import (
    FrameSet,
    embed_utterances,
    extract_frames,
    read_labels,
    read_texts,
    with_acoustics,
)
from ingest.voice.training.metrics import Scores, score
from ingest.voice.training.simulate import Conversations, simulate_conversations
from ingest.voice.training.wer import WerFigures, word_error_rates

MIN_CHILD_S = 2.0  # the compliance policy's default min_child_speech_s


@dataclass(frozen=True)
class ConversationFigures:
    """Simulated two-minute conversations of the folder's speakers, at the shipped threshold."""

    conversations: int
    found: float  # with a child taking a quarter of the turns: share where a child is found
    false_child: float  # adults only: share called child

    def lines(self) -> list[str]:
        return [
            f"conversations ({self.conversations} of each kind, 2 minutes): child found "
            f"{self.found:.1%} (child in 25% of turns), adults-only called child "
            f"{self.false_child:.1%}"
        ]


@dataclass(frozen=True)
class EvalResult:
    data_dir: Path
    model: str
    scores: Scores
    conversations: ConversationFigures | None = None
    wer: WerFigures | None = None

    def lines(self) -> list[str]:
        lines = [f"{self.model} on {self.data_dir}", *self.scores.lines()]
        if self.conversations is not None:
            lines += self.conversations.lines()
        if self.wer is not None:
            lines += self.wer.lines()
        return lines

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: undefined figures (one class only) become null, not NaN."""
        scores = {k: None if v != v else v for k, v in asdict(self.scores).items()}
        extra = {
            "conversations": asdict(self.conversations) if self.conversations else None,
            "wer": asdict(self.wer) if self.wer else None,
        }
        return {"data": str(self.data_dir), "model": self.model, **scores, **extra}


def evaluate(
    data_dir: Path,
    model_path: Path | None = None,
    log: Callable[[str], None] = lambda _message: None,
    conversations: int = 100,
    wer: bool = False,
) -> EvalResult:
    """Scores a classifier, unchanged, on a labelled folder (child means age 12 or under);
    `wer` also transcribes every utterance (slow) when labels.csv has a `text` column."""
    utterances = read_labels(data_dir)
    texts = read_texts(data_dir) if wer else None
    if wer and texts is None:  # refused now, not after the encoding it would waste
        raise BwvError(f"{Path(data_dir) / 'labels.csv'} has no text column: --wer needs it")
    model = ChildVoiceModel.load(model_path)
    encoder = str(model.meta.get("encoder", "tiny.en"))
    log(f"encoding {len(utterances)} utterances")
    frame_set = extract_frames(utterances, "clean", encoder, cache_frames=False)
    frame_set = with_acoustics(frame_set, "clean", cache_frames=False)
    probs = model.probabilities(embed_utterances(frame_set).x)
    scores = score(frame_set.labels, probs, frame_set.speakers, model.threshold)
    talk = conversation_figures(frame_set, model, conversations) if conversations else None
    if texts is not None:
        log(f"transcribing {len(utterances)} utterances for the word error rate")
    errors = word_error_rates(utterances, texts, encoder) if texts is not None else None
    return EvalResult(Path(data_dir), f"{model.name} {model.version}", scores, talk, errors)


def conversation_figures(
    frame_set: FrameSet, model: ChildVoiceModel, count: int
) -> ConversationFigures | None:
    """None when the folder lacks children, or adults, to converse."""
    kinds = set(frame_set.labels.tolist())
    if kinds != {0.0, 1.0}:
        return None
    folds = np.zeros(len(frame_set.utterances), np.int64)  # every speaker is unseen
    rates = []
    for with_child in (True, False):
        segments, conversation = simulate_conversations(frame_set, folds, count, with_child)
        grouped = np.zeros(len(segments.x))
        for c in np.unique(conversation):
            chosen = conversation == c
            seconds = segments.frames[chosen] * FRAME_S
            grouped[chosen] = model.attribute(segments.x[chosen], seconds).speaker_probabilities
        talk = Conversations("", segments, conversation, grouped, grouped, 120.0)
        rates.append(talk.rate(model.threshold, MIN_CHILD_S, grouped=True))
    return ConversationFigures(count, rates[0], rates[1])

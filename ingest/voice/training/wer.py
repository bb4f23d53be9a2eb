"""Word error rate of the transcripts, by age group, against what the speakers read.

A child's words matter as much as the fact that they spoke, and Whisper tiny.en hears
children worse than adults. Each utterance is transcribed alone by the ingest transcriber
(greedy, as ingest decodes) and compared, after the usual normalisation (case, punctuation),
with the text the folder says was read. The reference is the prompt: where a learner
misread it, that counts as an error too, so figures on read learner speech overstate the
transcriber's own errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.voice.training.data import Utterance, load_audio


@dataclass(frozen=True)
class WerFigures:
    children: float  # word error rate over all children's words
    adults: float
    child_words: int
    adult_words: int
    beam_size: int = 1

    def lines(self) -> list[str]:
        decoding = "greedy" if self.beam_size == 1 else f"beam {self.beam_size}"
        return [
            f"word error rate (tiny.en, {decoding}, against the read text): children "
            f"{self.children:.3f} ({self.child_words} words), adults {self.adults:.3f} "
            f"({self.adult_words} words)"
        ]


def normalised_words(text: str) -> list[str]:
    """Upper case words without punctuation (apostrophes kept: DON'T is one word)."""
    return re.sub(r"[^A-Z0-9' ]+", " ", text.upper()).split()


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Substitutions, insertions and deletions (Levenshtein distance over words)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_error_rates(
    utterances: list[Utterance],
    texts: dict[str, str],
    model_name: str = "tiny.en",
    beam_size: int = 1,
) -> WerFigures:
    from dataclasses import replace

    from ingest.encoder import SAMPLE_RATE, Piece
    from ingest.transcribe import load_transcriber, transcribe

    transcriber = load_transcriber(model_name, "en", child_voice=False)
    transcriber = replace(transcriber, beam_size=beam_size)
    totals = {True: [0, 0], False: [0, 0]}  # child? -> [errors, reference words]
    for utterance in utterances:
        reference = normalised_words(texts.get(str(utterance.path), ""))
        if not reference:
            continue
        audio = load_audio(utterance.path)
        segments = transcribe(transcriber, audio, [Piece(0.0, len(audio) / SAMPLE_RATE)])
        hypothesis = normalised_words(" ".join(s.text for s in segments))
        totals[utterance.child][0] += word_errors(reference, hypothesis)
        totals[utterance.child][1] += len(reference)
    (child_errors, child_words), (adult_errors, adult_words) = totals[True], totals[False]
    return WerFigures(
        child_errors / child_words if child_words else float("nan"),
        adult_errors / adult_words if adult_words else float("nan"),
        child_words,
        adult_words,
        beam_size,
    )

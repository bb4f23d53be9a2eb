"""The voice rules on plain values: acoustic cues on synthetic sound, the wearer's group,
whose speech counts for older children, and the transcript marks. No model, no media."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest

from compliance.policy import Policy
from compliance.verdicts import judge, voice_rule
from ingest.transcript_formats import render
from ingest.voice.acoustic import STATS, acoustic_frames, segment_acoustics
from ingest.voice.speakers import level_db, wearer_group
from ingest.voice.training.augment import augmenter, band_limit
from tests.unit.test_rules import CAMERAS, clip, incident

RATE = 16_000


def vowel(f0: float, formants: tuple[float, ...], seconds: float = 1.0) -> np.ndarray:
    """A glottal pulse train at `f0` through resonators at `formants` (a synthetic vowel)."""
    n = int(seconds * RATE)
    pulses = np.zeros(n)
    pulses[:: int(RATE / f0)] = 1.0
    spectrum = np.fft.rfft(pulses)
    z = np.exp(-2j * np.pi * np.fft.rfftfreq(n, 1 / RATE) / RATE)
    for f in formants:  # a two-pole resonator of 100 Hz bandwidth per formant
        r = np.exp(-np.pi * 100.0 / RATE)
        spectrum /= 1 - 2 * r * np.cos(2 * np.pi * f / RATE) * z + r * r * z * z
    audio = np.fft.irfft(spectrum, n)
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def stats(audio: np.ndarray) -> dict[str, float]:
    return dict(zip(STATS, segment_acoustics(acoustic_frames(audio)), strict=True))


def test_pitch_and_formants_of_a_synthetic_vowel_are_found() -> None:
    adult = stats(vowel(120.0, (700.0, 1200.0, 2600.0)))
    child = stats(vowel(280.0, (1000.0, 1700.0, 3600.0)))
    assert np.exp(adult["f0_p50"]) == pytest.approx(120.0, rel=0.05)
    assert np.exp(child["f0_p50"]) == pytest.approx(280.0, rel=0.05)
    assert np.exp(adult["f1"]) == pytest.approx(700.0, rel=0.15)
    assert child["formant_spacing"] > adult["formant_spacing"] + np.log(1.2)
    assert adult["voiced_share"] > 0.9


def test_acoustic_rows_line_up_with_encoder_frames_and_survive_silence() -> None:
    rows = acoustic_frames(np.zeros(RATE, np.float32))
    assert rows.shape == (50, 8) and np.isnan(rows[:, 2]).all()
    assert acoustic_frames(vowel(200.0, (800.0,)), rows=60).shape == (60, 8)
    quiet = segment_acoustics(rows)
    assert np.isfinite(quiet).all() and quiet[0] == 0.0  # no voiced frame: "no evidence"
    assert np.isfinite(segment_acoustics(rows[:0])).all()


def test_the_wearer_is_the_loudest_group_with_a_real_share_and_never_a_child() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    seconds = np.array([3.0, 3.0, 4.0, 4.0, 1.0])
    levels = np.array([-30.0, -31.0, -18.0, -19.0, -5.0])  # group 2: one loud shout, 7%
    assert wearer_group(labels, seconds, levels, np.zeros(5, bool)) == 1
    child = np.array([False, False, True, True, False])
    assert wearer_group(labels, seconds, levels, child) == 0
    assert wearer_group(labels[:0], seconds[:0], levels[:0], child[:0]) is None
    assert level_db(np.zeros(10)) == -120.0 and level_db(np.ones(10)) == 0.0


@pytest.mark.parametrize(
    ("ages", "rule"),
    [("7", "child_voice"), ("", "other_voice"), ("12", "other_voice"), ("15;8", "child_voice"),
     ("1;14", "other_voice")],
)  # fmt: skip
def test_older_or_unknown_children_are_heard_through_other_voices(ages: str, rule: str) -> None:
    assert voice_rule(incident(ages=ages).incident, Policy()) == rule


def test_other_voice_evidence_has_times_and_stays_needs_review_unless_policy_says() -> None:
    heard = clip(1, 0.5, 9.5, child=0.5, other_voice_seconds=6.0, other_voice_first_s=30.0)
    judged = judge(incident(heard, ages="15"), Policy(), CAMERAS)
    assert judged.verdict == "needs_review"
    evidence = judged.reasons[0].evidence
    assert evidence["voice_rule"] == "other_voice" and evidence["other_voice_seconds"] == 6.0
    assert heard.started_at is not None
    assert evidence["other_voice"][0]["first_at"] == heard.started_at + timedelta(seconds=30)
    lenient = Policy(other_voice_compliant=True)
    assert judge(incident(heard, ages="15"), lenient, CAMERAS).verdict == "compliant"
    assert judge(incident(heard, ages="7"), lenient, CAMERAS).verdict == "needs_review"
    quiet = clip(1, 0.5, 9.5, child=0.5, other_voice_seconds=1.0)
    assert judge(incident(quiet, ages="15"), lenient, CAMERAS).verdict == "needs_review"


@dataclass
class View:
    start_s: float
    end_s: float
    text: str
    child: bool
    wearer: bool | None


def test_transcript_exports_mark_the_child_and_the_wearer() -> None:
    segments = [View(0.0, 1.0, "hello", False, True), View(1.0, 2.0, "hi", True, False),
                View(2.0, 3.0, "and you", False, False)]  # fmt: skip
    txt = render(segments, "txt", "clip").splitlines()
    assert txt[1].endswith("] [wearer] hello") and txt[2].endswith("] [child] hi")
    assert txt[3].endswith("] and you")
    assert "\n[wearer] hello\n" in render(segments, "srt", "clip")
    vtt = render(segments, "vtt", "clip")
    assert "<v wearer>hello" in vtt and "<v child>hi" in vtt and "\nand you\n" in vtt


def test_hard_conditions_keep_length_and_band_limit_removes_what_it_should() -> None:
    rng = np.random.default_rng(0)
    audio = vowel(200.0, (800.0, 1500.0), 2.0)
    voices = [vowel(110.0, (600.0, 1100.0), 3.0), vowel(130.0, (650.0, 1000.0), 1.0)]
    for index in range(6):
        out = augmenter("hard1", lambda _i: voices)(audio, index)
        assert out.shape == audio.shape and np.isfinite(out).all()
    assert np.array_equal(augmenter("reversed")(audio, 0)[::-1], audio)
    narrow = np.abs(np.fft.rfft(band_limit(rng.normal(size=RATE).astype(np.float32), 300, 3400)))
    freqs = np.fft.rfftfreq(RATE, 1 / RATE)
    assert narrow[freqs > 3500].max() < 1e-3 and narrow[(freqs > 500) & (freqs < 3000)].min() > 0
    with pytest.raises(ValueError):
        augmenter("hard1")


def test_a_speaker_group_is_judged_on_its_pooled_features_by_the_group_classifier() -> None:
    """With a group classifier in the file, every segment of a group gets that classifier's
    calibrated probability of the group's duration-weighted mean embedding; the file
    round-trips through its JSON form unchanged."""
    from ingest.voice.model import ChildVoiceModel, GroupClassifier, sigmoid
    from ingest.voice.speakers import SpeakerSpace, pooled_features

    rng = np.random.default_rng(5)
    features = 6
    first, second = np.eye(features)[0] * 3, np.eye(features)[1] * 3
    x = np.stack([first, second, first, second, first]) + 0.01 * rng.standard_normal((5, 6))
    seconds = np.array([5.0, 6.0, 4.0, 5.0, 1.0])
    group = GroupClassifier(np.zeros(features), np.ones(features), np.arange(6.0), -1.0, (2.0, 0.5))
    model = ChildVoiceModel(
        "t",
        "0",
        np.zeros(features, np.float32),
        np.ones(features, np.float32),
        [[(np.zeros((features, 1), np.float32), np.zeros(1, np.float32))]],
        speakers=SpeakerSpace(np.zeros(features), np.eye(features), 0.5, 2.0),
        group=group,
    )
    found = model.attribute(x, seconds)
    assert found.speakers.tolist() == [0, 1, 0, 1, 0]
    pooled = pooled_features(x, seconds, found.speakers)
    assert np.allclose(pooled[0], np.average(x[[0, 2, 4]], axis=0, weights=seconds[[0, 2, 4]]))
    expected = sigmoid(2.0 * (pooled @ np.arange(6.0) - 1.0) + 0.5)
    assert np.allclose(found.speaker_probabilities, expected[found.speakers])
    assert not np.allclose(found.speaker_probabilities, found.probabilities)
    again = ChildVoiceModel.from_dict(model.to_dict())
    assert np.allclose(again.attribute(x, seconds).speaker_probabilities, expected[found.speakers])

"""The shipped child-voice classifier: loads safely, stays calibrated on unseen speakers, and
`bwv voice evaluate` works on a labelled folder and fails cleanly on a bad one.

Real model, real audio, no mocks. Tests that need the speechocean762 utterances skip with a
clear message when ../shared/data is absent, so a fresh clone still passes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bwv.cli import main
from ingest.voice.model import DEFAULT_MODEL_PATH, ChildVoiceModel

ROOT = Path(__file__).resolve().parents[2]
SPEECHOCEAN = ROOT.parent / "shared" / "data" / "speechocean762-train"
CLIP_WITH_CHILD = ROOT / "sample_media" / "X60390007_20240116_072330.mp4"
UTTERANCES_PER_SPEAKER = 5  # 8 held-out speakers x 5 = 40 utterances: about 6 windows

# Slow: the real model over the speech corpus.
pytestmark = pytest.mark.slow


def _need_speechocean() -> None:
    if not (SPEECHOCEAN / "labels.csv").is_file():
        pytest.skip(
            f"{SPEECHOCEAN} absent: the speechocean762 utterances (CC BY 4.0) are not in this "
            "checkout; place them in ../shared/data to run the calibration checks"
        )


@pytest.fixture(scope="module")
def model() -> ChildVoiceModel:
    return ChildVoiceModel.load()


@pytest.fixture(scope="module")
def held_out_folder(tmp_path_factory: pytest.TempPathFactory, model: ChildVoiceModel) -> Path:
    """A labelled folder of the speakers the shipped model never learned from (symlinks)."""
    _need_speechocean()
    speakers = set(model.meta["held_out_speakers"])
    with (SPEECHOCEAN / "labels.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["speaker"] in speakers]
    per_speaker = {s: [r for r in rows if r["speaker"] == s] for s in sorted(speakers)}
    rows = [r for chosen in per_speaker.values() for r in chosen[:UTTERANCES_PER_SPEAKER]]
    folder = tmp_path_factory.mktemp("held_out")
    for row in rows:
        target = folder / row["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(SPEECHOCEAN / row["file"])
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["file", "speaker", "age"], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_shipped_model_is_plain_json_and_gives_probabilities(model: ChildVoiceModel) -> None:
    raw = DEFAULT_MODEL_PATH.read_bytes()
    assert raw.lstrip()[:1] == b"{", "the classifier must be JSON, never a pickle"
    assert json.loads(raw)["format"] == "bwv-child-voice/1"
    assert model.name and model.version and 0 < model.threshold < 1
    embeddings = np.random.default_rng(0).normal(size=(7, len(model.mean))) * model.scale
    probs = model.probabilities(embeddings + model.mean)
    assert probs.shape == (7,)
    assert np.all(np.isfinite(probs)) and np.all((probs >= 0) & (probs <= 1))


def test_calibrated_on_speakers_it_never_heard(held_out_folder: Path) -> None:
    from ingest.voice.training.evaluate import evaluate

    scores = evaluate(held_out_folder).scores
    observed = scores.child_speakers / scores.speakers  # equal utterances per speaker
    assert scores.utterances == 8 * UTTERANCES_PER_SPEAKER
    assert scores.ece < 0.15, scores
    assert scores.brier < 0.2, scores
    assert scores.utterance_auc > 0.8, scores
    assert abs(observed - 0.5) < 1e-9  # four children, four adults


def test_cli_evaluate_prints_the_figures(held_out_folder: Path) -> None:
    result = CliRunner().invoke(main, ["voice", "evaluate", "--data", str(held_out_folder)])
    assert result.exit_code == 0, result.output
    assert "utterance AUC" in result.stdout and "speaker AUC" in result.stdout
    assert "precision" in result.stdout and "expected calibration error" in result.stdout


def test_cli_evaluate_on_a_missing_folder_is_one_error_line() -> None:
    result = CliRunner().invoke(main, ["voice", "evaluate", "--data", "/nonexistent"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output


def test_cli_evaluate_rejects_labels_without_age(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,speaker\na.flac,1\n")
    result = CliRunner().invoke(main, ["voice", "evaluate", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path / 'labels.csv'} lacks column(s) age"


def test_sample_clip_voices_get_sane_probabilities(model: ChildVoiceModel) -> None:
    """espeak-ng voices are synthetic, so only sanity is asserted (values are reported in
    the model card): each speech turn of clip 1 gets a finite probability in [0, 1]."""
    from ingest.encoder import Piece
    from ingest.voice.training.train import piece_probabilities

    if not CLIP_WITH_CHILD.is_file():
        pytest.skip(f"{CLIP_WITH_CHILD} absent")
    turns = {  # sample_media/README.md: officer, child, officer, child
        Piece(1.0, 4.8): "officer",
        Piece(6.0, 10.6): "child",
        Piece(11.8, 15.3): "officer",
        Piece(16.5, 19.2): "child",
    }
    probs = piece_probabilities(CLIP_WITH_CHILD, list(turns), model)
    assert len(probs) == 4
    assert all(np.isfinite(p) and 0.0 <= p <= 1.0 for p in probs)


def test_speaker_grouping_finds_two_voices_and_absorbs_a_stray_segment() -> None:
    """Average linkage on cosine distance stops at the shipped distance; a group with less
    than the minimum speech joins its nearest group; labels follow first appearance."""
    from ingest.voice.speakers import SpeakerSpace, group_speakers

    rng = np.random.default_rng(3)
    first, second = np.eye(32)[0], np.eye(32)[1]  # two voices at cosine distance 1
    voices = [second, first, second, first, second, first]
    points = np.stack([v + 0.05 * rng.standard_normal(32) for v in voices] + [-first - second])
    seconds = np.array([4.0, 5.0, 3.0, 6.0, 5.0, 4.0, 1.0])  # the last: 1 s, far from both
    space = SpeakerSpace(np.zeros(32), np.eye(32), max_distance=0.9, min_group_s=4.0)
    labels = group_speakers(points, seconds, space)
    assert labels[:6].tolist() == [0, 1, 0, 1, 0, 1]
    assert labels[6] in (0, 1)
    alone = SpeakerSpace(np.zeros(32), np.eye(32), max_distance=0.9, min_group_s=0.0)
    assert group_speakers(points, seconds, alone)[6] == 2


def test_held_out_child_and_adult_are_told_apart_as_speakers(
    held_out_folder: Path, model: ChildVoiceModel
) -> None:
    """Utterances of a held-out child and a held-out adult, as one clip's segments: the
    shipped speaker space groups them by voice, and the child's group scores higher."""
    from ingest.voice.training.data import (
        embed_utterances,
        extract_frames,
        read_labels,
        with_acoustics,
    )

    assert model.speakers is not None, "the shipped model must carry a speaker space"
    utterances = read_labels(held_out_folder)
    child = next(u.speaker for u in utterances if u.child)
    adult = next(u.speaker for u in utterances if not u.child)
    chosen = [u for u in utterances if u.speaker in (child, adult)]
    frames = with_acoustics(extract_frames(chosen, cache_frames=False), "clean", False)
    examples = embed_utterances(frames)
    found = model.attribute(examples.x, examples.frames * 0.02)
    truth = np.array([u.speaker == child for u in chosen])
    groups = found.speakers
    purity = sum(max(np.sum(truth[groups == g]), np.sum(~truth[groups == g])) for g in set(groups))
    assert purity / len(chosen) >= 0.8
    assert found.speaker_probabilities[truth].mean() > found.speaker_probabilities[~truth].mean()


def test_shipped_model_was_trained_for_the_default_threshold(model: ChildVoiceModel) -> None:
    """The classifier file records the threshold its figures were measured at; it must be
    the one the policy defaults to (bwv.core.child_speech, the single definition)."""
    from bwv.core.child_speech import DEFAULT_THRESHOLD
    from compliance.policy import load_policy

    assert model.threshold == DEFAULT_THRESHOLD
    assert load_policy(None).child_probability_threshold == DEFAULT_THRESHOLD


def test_training_frames_are_cached_privately_in_bwv_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real encoder, one sample clip: the frames land in $BWV_CACHE_DIR (a 0700 folder, not
    /tmp), are read back unchanged, and a torn cache file is recomputed, not trusted."""
    from ingest.voice.training.data import Utterance, cache_path, extract_frames

    folder = tmp_path / "cache"
    monkeypatch.setenv("BWV_CACHE_DIR", str(folder))
    utterances = [Utterance(CLIP_WITH_CHILD, "clip", 8)]
    first = extract_frames(utterances)
    cache = cache_path(utterances, "clean", "tiny.en")
    assert cache.parent == folder and cache.is_file()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in folder.iterdir()] == [cache.name]  # no partial file left
    again = extract_frames(utterances)
    assert np.array_equal(again.frames, first.frames) and np.array_equal(again.mels, first.mels)
    cache.write_bytes(cache.read_bytes()[:100])  # torn, as by a full disk or a crash
    recomputed = extract_frames(utterances)
    assert np.array_equal(recomputed.frames, first.frames)
    assert np.load(cache)["frames"].shape == first.frames.shape

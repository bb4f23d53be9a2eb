"""Voice training before any encoding: where it caches encoder frames, and what it refuses.

Frames are derived from voices, so they belong in the user's own cache folder, never a
shared temporary one. An unusable cache folder, or a folder with too few speakers to train
and hold some out, is one clear error before the slow encoding starts. No model is run
here: a cache hit needs none, and every refusal comes before the encoder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bwv.cli import main
from bwv.core.errors import BwvError
from ingest.voice.training.data import (
    Utterance,
    cache_dir,
    cache_path,
    extract_frames,
    read_labels,
)

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "sample_media" / "X60390007_20240116_072330.mp4"


@pytest.fixture
def no_cache_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No cache variable set and a home of the test's own; returns that home."""
    for name in ("BWV_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_cache_folder_defaults_to_the_users_own_cache(no_cache_settings: Path) -> None:
    assert cache_dir() == no_cache_settings / ".cache" / "bwv" / "voice"


def test_xdg_cache_home_is_followed_unless_empty_or_relative(
    no_cache_settings: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "bwv" / "voice"
    for ignored in ("", "relative/cache"):
        monkeypatch.setenv("XDG_CACHE_HOME", ignored)
        assert cache_dir() == no_cache_settings / ".cache" / "bwv" / "voice"


def test_bwv_cache_dir_wins_over_xdg(
    no_cache_settings: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BWV_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    utterances = [Utterance(CLIP, "s1", 8)]
    assert cache_path(utterances, "clean", "tiny.en").parent == tmp_path / "mine"


def test_frames_cached_before_are_read_from_the_cache_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A cache hit in $BWV_CACHE_DIR is returned as saved (no encoder is loaded)."""
    monkeypatch.setenv("BWV_CACHE_DIR", str(tmp_path))
    utterances = [Utterance(CLIP, "s1", 8), Utterance(CLIP, "s2", 40)]
    frames = np.arange(5 * 4, dtype=np.float16).reshape(5, 4)
    bounds = np.array([[0, 2], [2, 5]])
    mels = np.ones((10, 3), dtype=np.float16)
    np.savez(cache_path(utterances, "clean", "tiny.en"), frames=frames, bounds=bounds, mels=mels)
    found = extract_frames(utterances)
    assert np.array_equal(found.frames, frames) and np.array_equal(found.bounds, bounds)
    assert found.of(1).shape == (3, 4) and found.mel_of(0).shape == (3, 4)
    assert found.labels.tolist() == [1.0, 0.0]


def test_a_cache_folder_that_is_a_file_is_refused_before_encoding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("BWV_CACHE_DIR", str(blocker))
    with pytest.raises(BwvError, match="set BWV_CACHE_DIR to a writable folder"):
        extract_frames([Utterance(CLIP, "s1", 8)], model_name="no-such-model")
    assert blocker.read_text() == "x"


def _labelled_folder(folder: Path, ages: tuple[int, ...]) -> Path:
    """One speaker per age, every utterance the same sample clip (a symlink)."""
    folder.mkdir()
    (folder / "clip.mp4").symlink_to(CLIP)
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "speaker", "age"])
        writer.writerows([["clip.mp4", f"s{n}", age] for n, age in enumerate(ages)])
    assert len(read_labels(folder)) == len(ages)
    return folder


ENOUGH = (6, 7, 8, 9, 10, 20, 30, 40, 50, 60)  # five children, five adults


def test_cli_train_with_an_unusable_cache_folder_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "cache-file"
    blocker.write_text("x")
    monkeypatch.setenv("BWV_CACHE_DIR", str(blocker / "voice"))  # under a file: unusable
    data, out = _labelled_folder(tmp_path / "data", ENOUGH), tmp_path / "out" / "model.json"
    result = CliRunner().invoke(
        main, ["voice", "train", "--data", str(data), "--out", str(out), "--folds", "2"]
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"Error: cannot use {blocker / 'voice'} as the frame cache (")
    assert errors[0].endswith("; set BWV_CACHE_DIR to a writable folder")
    assert "Traceback" not in result.output
    assert not out.exists()


def test_cli_train_refuses_a_folder_whose_speakers_would_all_be_held_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two children and two adults satisfy 2-fold cross-validation, but the final fit holds
    four of each out to test the shipped file: nothing would be left to learn from."""
    monkeypatch.setenv("BWV_CACHE_DIR", str(tmp_path / "cache"))
    data, out = _labelled_folder(tmp_path / "data", (7, 9, 30, 50)), tmp_path / "model.json"
    result = CliRunner().invoke(
        main, ["voice", "train", "--data", str(data), "--out", str(out), "--folds", "2"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Error: training needs at least 5 child and 5 adult speakers (2-fold cross-validation, "
        "and 4 of each held out of the final fit); found 2 and 2"
    )
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_a_cache_file_that_does_not_fit_its_utterances_is_recomputed_not_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Bounds past the end of the frames (a torn or foreign file) mean recomputing: here
    with an encoder that does not exist, so the attempt shows as that encoder's error."""
    monkeypatch.setenv("BWV_CACHE_DIR", str(tmp_path))
    utterances = [Utterance(CLIP, "s1", 8)]
    cache = cache_path(utterances, "clean", "no-such-model")
    frames, mels = np.ones((3, 4), dtype=np.float16), np.ones((6, 2), dtype=np.float16)
    np.savez(cache, frames=frames, bounds=np.array([[0, 9]]), mels=mels)
    with pytest.raises(BwvError, match="no-such-model"):
        extract_frames(utterances, model_name="no-such-model")


def test_cli_train_to_an_unwritable_place_is_refused_before_encoding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BWV_CACHE_DIR", str(tmp_path / "cache"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    data, out = _labelled_folder(tmp_path / "data", ENOUGH), blocker / "model.json"
    result = CliRunner().invoke(main, ["voice", "train", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith(f"Error: cannot write {out}: ")
    assert not (tmp_path / "cache").exists() and blocker.read_text() == "x"


def test_cli_evaluate_wer_without_a_text_column_is_refused_before_encoding(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.flac").write_bytes(b"not audio: never decoded, the refusal comes first")
    (tmp_path / "labels.csv").write_text("file,speaker,age\na.flac,1,7\n")
    result = CliRunner().invoke(main, ["voice", "evaluate", "--data", str(tmp_path), "--wer"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: {tmp_path / 'labels.csv'} has no text column: --wer needs it"
    )


def test_speaker_groups_are_pooled_pieces_of_one_speaker_and_learnable() -> None:
    """The group classifier learns from pooled groups of one speaker and one condition, as a
    clip's speaker group holds; a feature that tells the classes apart is learned."""
    from ingest.voice.training.crossval import (
        GROUP_CONFIG,
        PieceBank,
        fit_group_classifier,
    )
    from ingest.voice.training.data import Examples
    from ingest.voice.training.metrics import auc

    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(10)], 4)  # 10 speakers, 4 utterances each
    labels = (np.arange(40) >= 20).astype(float)  # s5..s9 are children
    pieces = Examples(
        rng.standard_normal((40, 3)) + labels[:, None] * [1.0, 0.0, 0.0],
        np.arange(40),
        rng.integers(100, 400, 40),  # 2 to 8 s of 20 ms frames
    )
    bank = PieceBank([pieces])
    x, y = bank.sample(labels, speakers, np.array(["s0", "s9"]), 5, seed=1)
    assert x.shape == (10, 3) and y.tolist() == [0.0] * 5 + [1.0] * 5
    assert np.all(x.min(axis=0) >= pieces.x.min(axis=0) - 1e-9)  # means of real pieces
    group = fit_group_classifier(bank, labels, speakers, np.ones(40, bool), GROUP_CONFIG, 0)
    assert auc(y, group.logits(x)) == 1.0


def test_found_by_age_counts_each_conversation_in_its_child_s_age_band() -> None:
    from ingest.voice.training.data import Examples
    from ingest.voice.training.simulate import Conversations

    # Four conversations of one 3 s segment (150 frames of 20 ms) each, children aged
    # 7, 8, 10 and 12; the children of 7 and 12 reach the threshold, the others do not.
    frames = np.full(4, 150)
    segments = Examples(np.zeros((4, 1)), np.arange(4), frames)
    probs = np.array([0.9, 0.2, 0.5, 0.8])
    talk = Conversations(
        "adult-and-child", segments, np.arange(4), probs, probs, 120.0, probs,
        np.array([7, 8, 10, 12]),
    )  # fmt: skip
    assert talk.found_by_age(0.65, True) == [("0-8", 2, 0.5), ("9-10", 1, 0.0), ("11-12", 1, 1.0)]
    # A segment of 1 s is under the 2 s a conversation needs, whatever its probability.
    short = Examples(np.zeros((4, 1)), np.arange(4), np.full(4, 50))
    brief = Conversations("", short, np.arange(4), probs, probs, 120.0, None, np.array([7] * 4))
    assert brief.found_by_age(0.65, True) == [("0-8", 4, 0.0)]

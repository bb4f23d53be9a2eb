"""The redaction rules on their own: model check, tracking, choices, spans, the render script.

Fast: no catalogue and no Whisper; the model check reads real files, the tracker and the
plan run on boxes and words given here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bwv.core.errors import BwvError
from redact.model import MODEL_SHA256, FaceModelError, checked_model, model_path
from redact.plan import (
    PlanError,
    Span,
    chosen_tracks,
    merged,
    parse_span,
    speaker_spans,
    word_spans,
)
from redact.render import HiddenTrack, gate, sendcmd_script, slots
from redact.tracks import Tracker, TrackSettings


def test_the_installed_model_is_the_pinned_file() -> None:
    assert checked_model() == model_path()


def test_a_different_model_file_is_refused_with_both_hashes(tmp_path: Path) -> None:
    impostor = tmp_path / "centerface.onnx"
    impostor.write_bytes(model_path().read_bytes()[:-1] + b"\0")
    with pytest.raises(FaceModelError, match=MODEL_SHA256) as caught:
        checked_model(impostor)
    assert "tasks.py setup" in str(caught.value)


def test_a_missing_model_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FaceModelError, match="cannot read the face model"):
        checked_model(tmp_path / "absent.onnx")


def _black() -> np.ndarray:
    return np.zeros((360, 640, 3), np.uint8)


def _walk(tracker: Tracker, frames: range, box_at) -> None:  # type: ignore[no-untyped-def]
    for frame in frames:
        box = box_at(frame)
        tracker.update(frame, frame / 30, [(box, 0.9)] if box else [], _black)


def test_a_face_hidden_for_half_a_second_stays_one_track() -> None:
    tracker = Tracker(640, 360, 30.0, TrackSettings())

    def moving(frame: int):  # type: ignore[no-untyped-def]
        if 100 <= frame < 115:  # behind a pillar
            return None
        x = 50 + 2 * frame
        return (x, 100.0, x + 60.0, 170.0)

    _walk(tracker, range(0, 200, 2), moving)
    tracks = tracker.finish(200)
    assert [t.label for t in tracks] == ["T1"]
    frames = [k[0] for k in tracks[0].keys]
    assert frames == list(range(0, 200))  # every frame boxed, the gap interpolated
    gap_box = next(k for k in tracks[0].keys if k[0] == 107)
    assert 50 + 2 * 100 < (gap_box[2] + gap_box[4]) / 2 < 50 + 2 * 116 + 60


def test_two_faces_apart_are_two_tracks_and_a_flicker_is_none() -> None:
    tracker = Tracker(640, 360, 30.0, TrackSettings())
    for frame in range(0, 60, 2):
        faces = [((10.0, 10.0, 60.0, 70.0), 0.9), ((400.0, 100.0, 460.0, 170.0), 0.8)]
        if frame == 30:
            faces.append(((200.0, 250.0, 230.0, 280.0), 0.5))  # a one-frame false alarm
        tracker.update(frame, frame / 30, faces, _black)
    tracks = tracker.finish(60)
    assert len(tracks) == 2
    assert all(t.thumbnail.startswith(b"\xff\xd8") for t in tracks)  # JPEG
    assert tracks[0].keys[5][2] < 100 < tracks[1].keys[5][2]


def test_boxes_are_enlarged_and_held_past_the_last_detection() -> None:
    tracker = Tracker(640, 360, 30.0, TrackSettings(enlarge=1.3, hold_frames=3))
    _walk(tracker, range(10, 20, 2), lambda f: (100.0, 100.0, 200.0, 200.0))
    (track,) = tracker.finish(100)
    assert track.keys[0][0] == 7 and track.keys[-1][0] == 21
    assert track.keys[0][2:] == pytest.approx((85.0, 85.0, 215.0, 215.0))


def test_face_choices_are_checked_against_the_tracks() -> None:
    labels = ["T1", "T2", "T3"]
    assert chosen_tracks("none", labels) == []
    assert chosen_tracks("all", labels) == labels
    assert chosen_tracks("t3, T1", labels) == ["T1", "T3"]
    with pytest.raises(PlanError, match=r"unknown face track T9.*T1, T2, T3"):
        chosen_tracks("T1,T9", labels)
    with pytest.raises(PlanError, match="bwv redact detect"):
        chosen_tracks("T1", [])


@pytest.mark.parametrize("text", ["5", "5-", "-3", "4-2", "a-b", "3-3"])
def test_bad_mute_spans_are_refused(text: str) -> None:
    with pytest.raises(PlanError, match="--mute"):
        parse_span(text)


def test_speakers_words_and_spans() -> None:
    segments = [("S1", 0.0, 2.0), ("S2", 2.5, 4.0), ("S1", 5.0, 6.0)]
    assert [(s.start_s, s.end_s) for s in speaker_spans(("s1",), segments)] == [(0, 2), (5, 6)]
    with pytest.raises(PlanError, match=r"unknown speaker S3; .*S1, S2"):
        speaker_spans(("S3",), segments)
    words = [
        (1.0, 1.4, " My"),
        (1.4, 1.9, " name's"),
        (2.0, 2.5, " Jayden,"),
        (2.6, 3.0, " 14"),
        (3.0, 3.3, " Elm"),
        (3.3, 3.8, " Road."),
    ]
    assert word_spans("jayden", words) == [Span(2.0, 2.5, "words: jayden")]
    (span,) = word_spans("14 Elm Road", words)
    assert (span.start_s, span.end_s) == (2.6, 3.8)
    assert word_spans("Elm Street", words) == []


def test_spans_are_padded_clipped_and_merged() -> None:
    spans = [Span(1.0, 2.0, "a"), Span(2.05, 3.0, "b"), Span(9.9, 12.0, "c")]
    out = merged(spans, 10.0, pad_s=0.03)
    assert [(round(s.start_s, 2), round(s.end_s, 2), s.why) for s in out] == [
        (0.97, 3.03, "a; b"),
        (9.87, 10.0, "c"),
    ]


def test_tracks_share_a_drawbox_slot_only_when_apart_in_time() -> None:
    def track(label: str, first: int, last: int) -> HiddenTrack:
        return HiddenTrack(label, [(f, f / 30, 1.0, 2.0, 11.0, 12.0) for f in range(first, last)])

    packed = slots([track("T1", 0, 10), track("T2", 5, 20), track("T3", 12, 30)])
    assert [[t.label for t in slot] for slot in packed] == [["T1", "T3"], ["T2"]]
    script = sendcmd_script(packed, 30.0).splitlines()
    assert script[0].startswith("0.0000 drawbox@hide0 x 1, drawbox@hide0 y 2, drawbox@hide0 w 10")
    assert any("drawbox@hide1 x -16" in line for line in script)  # parked after T2 ends
    times = [float(line.split()[0]) for line in script]
    assert times == sorted(times)


def test_the_mute_gate_covers_every_span() -> None:
    assert gate([]) == "0"
    assert gate([(1.0, 2.0), (3.5, 4.0)]) == (
        "min(1,between(t,1.0000,2.0000)+between(t,3.5000,4.0000))"
    )


def test_export_never_writes_over_a_file(tmp_path: Path) -> None:
    from bwv.services.redaction import export_copy

    stored, out = tmp_path / "stored.mp4", tmp_path / "out.mp4"
    stored.write_bytes(b"copy")
    out.write_bytes(b"earlier copy")
    with pytest.raises(BwvError, match="already exists"):
        export_copy(stored, out)
    assert out.read_bytes() == b"earlier copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "stored.mp4"]

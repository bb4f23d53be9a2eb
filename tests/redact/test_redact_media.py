"""Redacted copies of the committed faces clip, checked the way a sceptic would check them.

The clip (tests/redact/data, made by make_clip.py) shows two real faces; faces.json says,
frame by frame, where each one is. The astronaut is hidden, the camera man is kept, the
spoken name and street are muted. Each check measures the rendered file itself: the face
detector run again on it, the audio level in every muted span, a new Whisper transcript.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sqlmodel import Session, col, select

from bwv.cli import main
from bwv.core.db import get_engine
from bwv.core.models import AuditEvent, Derivative, FaceTrack, Redaction
from bwv.core.store import sha256_file, temp_files
from redact.detect import Detector, DetectSettings
from redact.model import model_path
from redact.plan import SPAN_PAD_S
from redact.tracks import iou

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parent / "data"
CLIP = DATA / "faces.mp4"
TRUTH = json.loads((DATA / "faces.json").read_text())
WORDS = "Daniel Cooper,church street"
ROOT = Path(__file__).resolve().parents[2]


def bwv(*args: object) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The clip ingested (real Whisper) with a store, its faces detected, one copy rendered."""
    root = tmp_path_factory.mktemp("redact")
    media = root / "media"
    media.mkdir()
    shutil.copy(CLIP, media / "faces.mp4")
    db, store = root / "bwv.db", root / "store"
    done = bwv("--db", db, "ingest", "--workers", "1", "--store", store, media)
    assert done.exit_code == 0, done.output
    detected = bwv("--db", db, "--actor", "alice", "redact", "detect", "1", "--json")
    assert detected.exit_code == 0, detected.output
    tracks = _tracks(db)
    child, officer = _track_of(tracks, "child"), _track_of(tracks, "officer")
    original = sha256_file(media / "faces.mp4")
    rendered = bwv(
        "--db",
        db,
        "--actor",
        "alice",
        "redact",
        "render",
        "1",
        "--faces",
        child.label,
        "--mute-words",
        WORDS,
        "--reason",
        "training: first contact",
        "--out",
        root / "copy.mp4",
        "--json",
    )
    assert rendered.exit_code == 0, rendered.output
    return {
        "root": root,
        "db": db,
        "store": store,
        "media": media,
        "child": child,
        "officer": officer,
        "original": original,
        "result": json.loads(rendered.output),
    }


def _tracks(db: Path) -> list[FaceTrack]:
    with Session(get_engine(f"sqlite:///{db}")) as session:
        return list(session.exec(select(FaceTrack).order_by(col(FaceTrack.label))).all())


def _boxes(track: FaceTrack) -> dict[int, tuple[float, float, float, float]]:
    return {int(k[0]): tuple(k[2:6]) for k in json.loads(track.keys_json)}  # type: ignore[misc]


def _track_of(tracks: list[FaceTrack], who: str) -> FaceTrack:
    """The track that covers the named face on the most frames."""

    def hits(track: FaceTrack) -> int:
        boxes = _boxes(track)
        return sum(
            1
            for f in TRUTH["frames"]
            if f["frame"] in boxes and iou(boxes[f["frame"]], f[who]) > 0.2
        )

    return max(tracks, key=hits)


def _visible(who: str) -> list[dict[str, Any]]:
    """Frames where the face is in view (not behind the pillar) and at least 24 px wide."""
    return [
        f
        for f in TRUTH["frames"]
        if f[who][2] - f[who][0] >= 24 and (who != "child" or f["child_visible"])
    ]


def _covered(track: FaceTrack, who: str) -> float:
    boxes = _boxes(track)
    frames = _visible(who)
    inside = [f for f in frames if f["frame"] in boxes and _contains(boxes[f["frame"]], f[who])]
    return len(inside) / len(frames)


def _contains(box: tuple[float, ...], face: list[float], slack: float = 0.15) -> bool:
    """The box holds the face's centre and at least 1 - slack of its area."""
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    if not (box[0] <= cx <= box[2] and box[1] <= cy <= box[3]):
        return False
    w = max(0.0, min(box[2], face[2]) - max(box[0], face[0]))
    h = max(0.0, min(box[3], face[3]) - max(box[1], face[1]))
    return w * h >= (1 - slack) * (face[2] - face[0]) * (face[3] - face[1])


def test_the_chosen_face_is_tracked_on_at_least_95_percent_of_its_frames(world) -> None:  # type: ignore[no-untyped-def]
    assert world["child"].label != world["officer"].label
    assert _covered(world["child"], "child") >= 0.95
    assert _covered(world["officer"], "officer") >= 0.95


def _frames(path: Path, step: int = 2):  # type: ignore[no-untyped-def]
    import av

    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n % step == 0:
                yield n, frame.to_ndarray(format="rgb24")


def test_the_detector_finds_no_face_inside_a_hidden_box_of_the_copy(world) -> None:  # type: ignore[no-untyped-def]
    detector = Detector(model_path(), 640, 360, DetectSettings(threshold=0.3))
    hidden = _boxes(world["child"])
    found_inside, officer_seen, looked = [], 0, 0
    for n, rgb in _frames(Path(world["result"]["path"]), step=1):
        import cv2

        faces = detector.faces(cv2.resize(rgb, detector.size))
        box = hidden.get(n)
        found_inside += [(n, f) for f, _s in faces if box and _centre_in(f, box)]
        officer = TRUTH["frames"][n]["officer"]
        officer_seen += any(iou(f, officer) > 0.3 for f, _s in faces)
        looked += 1
    assert found_inside == []
    assert officer_seen / looked >= 0.95  # the face not chosen is still there to see


def _centre_in(face: tuple[float, ...], box: tuple[float, ...]) -> bool:
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def test_the_face_not_chosen_stays_sharp(world) -> None:  # type: ignore[no-untyped-def]
    original = dict(_frames(CLIP, step=10))
    for n, rgb in _frames(Path(world["result"]["path"]), step=10):
        x1, y1, x2, y2 = (int(v) for v in TRUTH["frames"][n]["officer"])
        before = original[n][y1:y2, x1:x2].astype(float)
        after = rgb[y1:y2, x1:x2].astype(float)
        psnr = 10 * np.log10(255**2 / max(np.mean((before - after) ** 2), 1e-9))
        assert psnr > 28, f"frame {n}: the officer's face changed (PSNR {psnr:.1f} dB)"


def _audio(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [
            f.to_ndarray().reshape(-1, f.samples).mean(axis=0) for f in container.decode(stream)
        ]
    return np.concatenate(chunks), rate


def _asked(span: dict[str, Any], rate: int) -> tuple[int, int]:
    """The span as asked for: the listed span less the pad that absorbs the codec's edges."""
    return int((span["start_s"] + SPAN_PAD_S) * rate), int((span["end_s"] - SPAN_PAD_S) * rate)


def test_every_muted_span_is_at_or_below_minus_60_dbfs(world) -> None:  # type: ignore[no-untyped-def]
    samples, rate = _audio(Path(world["result"]["path"]))
    original, _ = _audio(CLIP)
    spans = world["result"]["spans"]
    assert [s["why"] for s in spans] == ["words: Daniel Cooper", "words: church street"]
    for span in spans:
        a, b = _asked(span, rate)
        peak = 20 * np.log10(max(np.abs(samples[a:b]).max(), 1e-12))
        assert peak <= -60, f"{span}: peak {peak:.1f} dBFS"
        assert 20 * np.log10(np.abs(original[a:b]).max()) > -20  # there was speech to mute


def _transcript(path: Path) -> str:
    from faster_whisper import decode_audio

    from ingest.encoder import load_model

    segments, _ = load_model("tiny.en").transcribe(
        decode_audio(str(path), 16_000), language="en", beam_size=1
    )
    return " ".join(s.text for s in segments).lower()


def test_a_transcript_of_the_copy_lacks_the_muted_words(world) -> None:  # type: ignore[no-untyped-def]
    before, after = _transcript(CLIP), _transcript(Path(world["result"]["path"]))
    for word in ("daniel", "cooper", "church", "street"):
        assert word in before
        assert word not in after, after
    assert "wait here" in after  # the rest is still heard


def test_the_original_never_changes_and_the_copy_is_logged_and_audited(world) -> None:  # type: ignore[no-untyped-def]
    assert sha256_file(world["media"] / "faces.mp4") == world["original"]
    result = world["result"]
    assert sha256_file(Path(result["path"])) == result["sha256"]
    assert sha256_file(world["root"] / "copy.mp4") == result["sha256"]
    log = json.loads(Path(result["log_path"]).read_text())
    assert log["clip"]["sha256"] == world["original"] and log["copy_sha256"] == result["sha256"]
    assert (log["reason"], log["actor"]) == ("training: first contact", "alice")
    assert (
        log["face_model"]["sha256"]
        == "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
    )
    assert [t["label"] for t in log["tracks_hidden"]] == [world["child"].label]
    assert len(log["tracks_hidden"][0]["boxes"]) == world["child"].frames
    assert [s["why"] for s in log["spans_muted"]] == [
        "words: Daniel Cooper",
        "words: church street",
    ]
    with Session(get_engine(f"sqlite:///{world['db']}")) as session:
        events = session.exec(select(AuditEvent).where(col(AuditEvent.action) == "redact")).all()
        kinds = session.exec(select(Derivative.kind).where(col(Derivative.clip_id) == 1)).all()
    assert len(events) >= 1 and events[0].actor == "alice"
    assert {"redacted_copy", "redaction_log", "store_copy"} <= set(kinds)


def _store_files(store: Path) -> dict[str, str]:
    return {str(p): sha256_file(p) for p in store.rglob("*") if p.is_file()}


def _redactions(db: Path) -> int:
    with Session(get_engine(f"sqlite:///{db}")) as session:
        return len(session.exec(select(Redaction)).all())


def test_unknown_tracks_are_refused_before_anything_renders(world) -> None:  # type: ignore[no-untyped-def]
    before, count = _store_files(world["store"]), _redactions(world["db"])
    result = bwv(
        "--db",
        world["db"],
        "redact",
        "render",
        "1",
        "--faces",
        "T1,T99",
        "--reason",
        "x",
        "--out",
        world["root"] / "never.mp4",
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: unknown face track T99")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert _store_files(world["store"]) == before and _redactions(world["db"]) == count
    assert not (world["root"] / "never.mp4").exists()


def test_a_render_needs_a_reason_and_something_to_hide(world) -> None:  # type: ignore[no-untyped-def]
    no_reason = bwv("--db", world["db"], "redact", "render", "1", "--faces", "all")
    assert no_reason.exit_code == 2 and "give a reason" in no_reason.output
    nothing = bwv("--db", world["db"], "redact", "render", "1", "--reason", "x")
    assert nothing.exit_code == 2 and "nothing to redact" in nothing.output


def test_a_redaction_never_overwrites_an_earlier_copy(world) -> None:  # type: ignore[no-untyped-def]
    before, count = _store_files(world["store"]), _redactions(world["db"])
    clash = bwv(
        "--db",
        world["db"],
        "redact",
        "render",
        "1",
        "--faces",
        "all",
        "--reason",
        "x",
        "--out",
        world["root"] / "copy.mp4",
    )
    assert clash.exit_code == 2 and "already exists" in clash.output
    again = bwv(
        "--db",
        world["db"],
        "redact",
        "render",
        "1",
        "--faces",
        "all",
        "--bleep",
        "--mute",
        "6-7",
        "--reason",
        "both faces, bleeped",
        "--json",
    )
    assert again.exit_code == 0, again.output
    after = _store_files(world["store"])
    assert {k: after[k] for k in before} == before  # every earlier file as it was
    assert _redactions(world["db"]) == count + 1
    copy = json.loads(again.output)
    assert copy["path"] != world["result"]["path"]
    samples, rate = _audio(Path(copy["path"]))
    bleep = samples[int(6.1 * rate) : int(6.9 * rate)]
    spectrum = np.abs(np.fft.rfft(bleep)) ** 2
    tone = spectrum[np.abs(np.fft.rfftfreq(len(bleep), 1 / rate) - 1000) < 20].sum()
    assert tone / spectrum.sum() > 0.99  # only the bleep is heard there


def test_mute_words_without_a_transcript_is_one_line(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(CLIP, media / "faces.mp4")
    db = tmp_path / "bwv.db"
    done = bwv(
        "--db",
        db,
        "ingest",
        "--no-transcribe",
        "--workers",
        "1",
        "--store",
        tmp_path / "store",
        media,
    )
    assert done.exit_code == 0, done.output
    result = bwv("--db", db, "redact", "plan", "1", "--mute-words", "Daniel")
    assert result.exit_code == 2
    assert result.output == (
        "Error: clip 1 has no transcript, so --mute-words cannot find the words; "
        "mute them by time with --mute FROM-TO\n"
    )


def test_a_clip_without_video_gets_audio_only_redaction(tmp_path: Path) -> None:
    import imageio_ffmpeg

    media = tmp_path / "media"
    media.mkdir()
    audio = media / "faces_audio.mp4"  # an MP4 holding only the sound
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            str(CLIP),
            "-vn",
            "-c:a",
            "copy",
            str(audio),
        ],
        check=True,
    )
    db, store = tmp_path / "bwv.db", tmp_path / "store"
    done = bwv("--db", db, "ingest", "--no-transcribe", "--workers", "1", "--store", store, media)
    assert done.exit_code == 0, done.output
    detect = bwv("--db", db, "redact", "detect", "1")
    assert detect.exit_code == 2
    assert detect.output == "Error: clip 1 has no video stream: there are no faces to find\n"
    faces = bwv("--db", db, "redact", "render", "1", "--faces", "all", "--reason", "x")
    assert faces.exit_code == 2 and "only its audio can be redacted" in faces.output
    muted = bwv("--db", db, "redact", "render", "1", "--mute", "1-4.5", "--reason", "x", "--json")
    assert muted.exit_code == 0, muted.output
    copy = Path(json.loads(muted.output)["path"])
    assert copy.suffix == ".m4a"
    samples, rate = _audio(copy)
    assert (
        20 * np.log10(max(np.abs(samples[int(1.0 * rate) : int(4.5 * rate)]).max(), 1e-12)) <= -60
    )


def test_an_interrupted_render_leaves_no_file_in_the_store(world) -> None:  # type: ignore[no-untyped-def]
    before, count = _store_files(world["store"]), _redactions(world["db"])
    command = [
        sys.executable,
        "-c",
        "from bwv.cli import run; run()",
        "--db",
        str(world["db"]),
        "redact",
        "render",
        "1",
        "--faces",
        "all",
        "--reason",
        "to be killed",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _ffmpeg_running(process.pid):
            time.sleep(0.05)
        assert _ffmpeg_running(process.pid), "the render never started ffmpeg"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    after = _store_files(world["store"])
    assert after == before and temp_files(world["store"]) == []
    assert _redactions(world["db"]) == count


def _ffmpeg_running(pid: int) -> bool:
    # Children come and go while we look (a short ffprobe, say), so a vanished
    # /proc entry means "not this one", never an error.
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return False
    return any(b"ffmpeg" in _cmdline(child) for child in children)


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_words_not_in_the_transcript_are_one_line_and_nothing_renders(world) -> None:  # type: ignore[no-untyped-def]
    count = _redactions(world["db"])
    result = bwv(
        "--db", world["db"], "redact", "render", "1", "--mute-words", "Zebedee", "--reason", "x"
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: 'Zebedee' is not in clip 1's transcript; mute it by time with --mute FROM-TO\n"
    )
    assert _redactions(world["db"]) == count
    speaker = bwv("--db", world["db"], "redact", "plan", "1", "--mute-speaker", "S7")
    assert speaker.exit_code == 2 and "unknown speaker S7" in speaker.output


def test_a_changed_original_without_a_store_copy_is_never_redacted(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(CLIP, media / "faces.mp4")
    db = tmp_path / "bwv.db"
    done = bwv("--db", db, "ingest", "--no-transcribe", "--workers", "1", media)
    assert done.exit_code == 0, done.output
    no_store = bwv("--db", db, "redact", "detect", "1")
    assert no_store.exit_code == 2 and "give --store DIR" in no_store.output
    with (media / "faces.mp4").open("ab") as handle:
        handle.write(b"tampered")
    result = bwv("--db", db, "redact", "detect", "1", "--store", tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith("Error: clip 1: neither the original nor a store copy")


def test_a_muted_speaker_is_silent_in_every_segment_of_theirs(world) -> None:  # type: ignore[no-untyped-def]
    result = bwv(
        "--db",
        world["db"],
        "redact",
        "render",
        "1",
        "--mute-speaker",
        "S1",
        "--reason",
        "the caller asked not to be heard",
        "--json",
    )
    assert result.exit_code == 0, result.output
    copy = json.loads(result.output)
    assert copy["spans"] and all(s["why"] == "S1" for s in copy["spans"])
    samples, rate = _audio(Path(copy["path"]))
    for span in copy["spans"]:
        a, b = _asked(span, rate)
        assert 20 * np.log10(max(np.abs(samples[a:b]).max(), 1e-12)) <= -60
    assert _transcript(Path(copy["path"])).strip(" .") in ("", "you")  # nothing said is left


def test_a_rotated_recording_gets_its_boxes_where_the_faces_are(tmp_path: Path) -> None:
    """A display-rotation flag must not turn the copy under boxes found on upright frames."""
    import imageio_ffmpeg

    media = tmp_path / "media"
    media.mkdir()
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(CLIP),
            "-c",
            "copy",
            str(media / "rotated.mp4"),
        ],
        check=True,
    )
    db, store = tmp_path / "bwv.db", tmp_path / "store"
    done = bwv("--db", db, "ingest", "--no-transcribe", "--workers", "1", "--store", store, media)
    assert done.exit_code == 0, done.output
    assert bwv("--db", db, "redact", "detect", "1").exit_code == 0
    result = bwv("--db", db, "redact", "render", "1", "--faces", "all", "--reason", "x", "--json")
    assert result.exit_code == 0, result.output
    detector = Detector(model_path(), 640, 360, DetectSettings(threshold=0.3))
    import cv2

    for n, rgb in _frames(Path(json.loads(result.output)["path"]), step=15):
        assert rgb.shape[:2] == (360, 640), "the copy's frames were turned"
        assert detector.faces(cv2.resize(rgb, detector.size)) == [], f"a face at frame {n}"

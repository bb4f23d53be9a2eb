"""Ingest end to end: real sample media, the real tiny.en model, a real SQLite catalogue."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bwv.core.db import database_url, get_engine
from bwv.core.models import AuditEvent, Clip, ClipField, Derivative, TranscriptSegment

AUDIO_STATES = {
    "X60390007_20240116_072330.mp4": "present",
    "X60390008_20240116_093000.mp4": "present",
    "X60390009_20240220_101500.mkv": "absent",
    "X60390010_20240305_183000.mov": "silent",
    "X60390011_20240412_090000.mp4": "present",
    "VID_0042.mp4": "present",
    "20240702T083005Z_0001.mp4": "present",
}
SPOKEN_WORDS = {
    "X60390007_20240116_072330.mp4": ["police", "officer", "scared", "safe", "name", "amy"],
    "X60390008_20240116_093000.mp4": ["children", "upstairs", "hurt"],
    "VID_0042.mp4": ["room", "brave"],
    "20240702T083005Z_0001.mp4": ["kicked", "door", "wait"],
}
TRUNCATED = "X60390012_20240518_140000.mp4"

# Slow: the real model over the sample media.
pytestmark = pytest.mark.slow


def _clips(db: Path) -> dict[str, Clip]:
    with Session(get_engine(database_url(str(db)))) as session:
        return {c.file_name: c for c in session.exec(select(Clip)).all()}


def _rows(db: Path, model: type, **where: object) -> list:  # type: ignore[type-arg]
    with Session(get_engine(database_url(str(db)))) as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.exec(query).all())


def test_ingest_catalogues_every_sample_and_reports_the_failure(catalogue):
    result = catalogue["result"]
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Ingested 7, skipped 0, failed 1 (0.04 h of footage)")
    assert f"failed: {catalogue['media'] / TRUNCATED}: not readable as media" in result.output


@pytest.mark.parametrize(("name", "state"), AUDIO_STATES.items())
def test_audio_state_of_each_clip(catalogue, name, state):
    assert _clips(catalogue["db"])[name].audio_state == state


def test_speech_found_only_where_someone_speaks(catalogue):
    clips = _clips(catalogue["db"])
    for name in SPOKEN_WORDS:
        assert clips[name].speech_seconds > 5, name
    for name in ("X60390009_20240220_101500.mkv", "X60390010_20240305_183000.mov",
                 "X60390011_20240412_090000.mp4"):  # fmt: skip
        assert clips[name].speech_seconds == 0, name


@pytest.mark.parametrize(("name", "words"), SPOKEN_WORDS.items())
def test_transcript_contains_the_spoken_words(catalogue, name, words):
    clip = _clips(catalogue["db"])[name]
    segments = _rows(catalogue["db"], TranscriptSegment, clip_id=clip.id)
    text = " ".join(s.text for s in segments).lower()
    for word in words:
        assert word in text, f"{word!r} missing from {text!r}"
    assert all(0 <= s.start_s < s.end_s <= clip.duration_s + 0.5 for s in segments)
    assert [s.start_s for s in segments] == sorted(s.start_s for s in segments)


def test_child_probability_stored_for_every_segment(catalogue):
    from ingest.voice.model import DEFAULT_MODEL_PATH

    if not DEFAULT_MODEL_PATH.is_file():
        pytest.fail("the child-voice classifier must ship in ingest/data")
    segments = _rows(catalogue["db"], TranscriptSegment)
    assert segments
    assert all(s.child_probability is not None and 0 <= s.child_probability <= 1 for s in segments)


def test_segments_are_grouped_by_speaker_and_clip_child_speech_follows(catalogue, invoke):
    """Every transcribed clip's segments carry a speaker group and its pooled probability,
    one probability per group, and the clip's child seconds are the speech of segments
    whose group reaches the default threshold."""
    listed = json.loads(invoke("--db", catalogue["db"], "clips", "--json").output)
    child_seconds = {c["id"]: c["child_speech_seconds"] for c in listed}
    for clip in _clips(catalogue["db"]).values():
        segments = _rows(catalogue["db"], TranscriptSegment, clip_id=clip.id)
        if not segments:
            continue
        assert all(
            s.speaker is not None and 0 <= s.speaker_child_probability <= 1 for s in segments
        )
        assert min(s.speaker for s in segments) == 0
        for group in {s.speaker for s in segments}:
            pooled = {s.speaker_child_probability for s in segments if s.speaker == group}
            assert len(pooled) == 1, clip.file_name
        child = sum(s.speech_s for s in segments if s.speaker_child_probability >= 0.65)
        assert child_seconds[clip.id] == pytest.approx(child, abs=0.01)


def _provenance(db: Path, name: str) -> dict[str, tuple[str, str]]:
    clip = _clips(db)[name]
    return {f.field: (f.value, f.source) for f in _rows(db, ClipField, clip_id=clip.id)}


def test_metadata_from_sidecar(catalogue):
    fields = _provenance(catalogue["db"], "VID_0042.mp4")
    assert fields["device_serial"] == ("X60390013", "sidecar")
    assert fields["officer_id"] == ("O104", "sidecar")
    assert fields["started_at"] == ("2024-06-10T14:00:00+00:00", "sidecar")
    assert fields["latitude"] == ("51.5072", "sidecar")
    clip = _clips(catalogue["db"])["VID_0042.mp4"]
    assert clip.started_at.isoformat() == "2024-06-10T14:00:00+00:00"
    assert clip.ended_at.isoformat() == "2024-06-10T14:00:20+00:00"


def test_metadata_from_file_name_container_tag_and_axis_layout(catalogue):
    mkv = _provenance(catalogue["db"], "X60390009_20240220_101500.mkv")
    assert mkv["device_serial"] == ("X60390009", "file_name")
    assert mkv["started_at"] == ("2024-02-20T10:15:00+00:00", "file_name")
    tagged = _provenance(catalogue["db"], "X60390008_20240116_093000.mp4")
    assert tagged["device_serial"] == ("X60390008", "container_tag")
    axis = _provenance(catalogue["db"], "20240702T083005Z_0001.mp4")
    assert axis["officer_id"] == ("O105", "file_name")
    assert axis["device_serial"] == ("B8A44F1A2B3C", "file_name")
    assert axis["started_at"][0] == "2024-07-02T08:30:05+00:00"


def test_failed_clip_keeps_file_name_metadata(catalogue):
    clip = _clips(catalogue["db"])[TRUNCATED]
    assert clip.status == "failed"
    assert clip.failure_reason.startswith("not readable as media")
    assert clip.device_serial == "X60390012"
    assert clip.started_at.isoformat() == "2024-05-18T14:00:00+00:00"


def test_frame_facts_and_thumbnail(catalogue):
    clips = _clips(catalogue["db"])
    assert clips["X60390011_20240412_090000.mp4"].dark_frame_share > 0.9
    assert clips["X60390007_20240116_072330.mp4"].dark_frame_share < 0.1
    assert clips["X60390007_20240116_072330.mp4"].frames_sampled >= 8
    thumb = _rows(catalogue["db"], Derivative, clip_id=clips["VID_0042.mp4"].id)[0]
    assert thumb.kind == "thumbnail" and thumb.content[:2] == b"\xff\xd8"
    assert thumb.sha256 == hashlib.sha256(thumb.content).hexdigest()


def test_every_stored_file_is_audited(catalogue):
    events = _rows(catalogue["db"], AuditEvent, action="ingest")
    assert len(events) == 8
    assert sum(e.outcome == "failed" for e in events) == 1


def test_reingest_adds_nothing(catalogue, invoke):
    result = invoke("--db", catalogue["db"], "ingest", "--no-transcribe", catalogue["media"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Ingested 0, skipped 8, failed 0")
    assert len(_clips(catalogue["db"])) == 8


def test_originals_are_never_modified(catalogue, sample_media):
    originals = [p for p in sample_media.rglob("*") if p.suffix in {".mp4", ".mkv", ".mov"}]
    assert len(originals) == 8
    for original in originals:
        copy = catalogue["media"] / original.relative_to(sample_media)
        assert copy.read_bytes() == original.read_bytes(), original.name


def test_bad_files_fail_with_reasons_while_the_batch_completes(tmp_path, sample_media, invoke):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video, just words\n" * 50)
    (tmp_path / "half.mp4").write_bytes((sample_media / "VID_0042.mp4").read_bytes()[:5000])
    shutil.copy(sample_media / "X60390009_20240220_101500.mkv", tmp_path / "good.mkv")
    result = invoke("--db", tmp_path / "c.db", "ingest", "--no-transcribe", tmp_path)
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith("Ingested 1, skipped 0, failed 3")
    assert f"failed: {tmp_path / 'empty.mp4'}: zero-length file" in result.output
    assert f"failed: {tmp_path / 'notes.mp4'}: not readable as media" in result.output
    assert f"failed: {tmp_path / 'half.mp4'}: " in result.output


def test_parallel_workers_give_the_same_catalogue(tmp_path, sample_media, invoke):
    media = tmp_path / "m"
    media.mkdir()
    for name in ("VID_0042.mp4", "VID_0042.json", "X60390010_20240305_183000.mov"):
        shutil.copy(sample_media / name, media / name)
    result = invoke("--db", tmp_path / "c.db", "ingest", "--workers", "2", media)
    assert result.exit_code == 0, result.output
    clips = _clips(tmp_path / "c.db")
    assert clips["VID_0042.mp4"].officer_id == "O104"
    assert "brave" in " ".join(s.text.lower() for s in _rows(tmp_path / "c.db", TranscriptSegment))
    assert clips["X60390010_20240305_183000.mov"].audio_state == "silent"


def test_clips_listing_and_filters(catalogue, invoke):
    listing = json.loads(invoke("--db", catalogue["db"], "clips", "--json").output)
    assert len(listing) == 8
    failed = json.loads(invoke("--db", catalogue["db"], "clips", "--failed", "--json").output)
    assert [c["file_name"] for c in failed] == [TRUNCATED]
    by_officer = json.loads(
        invoke("--db", catalogue["db"], "clips", "--officer", "O104", "--json").output
    )
    assert [c["file_name"] for c in by_officer] == ["VID_0042.mp4"]
    window = invoke(
        "--db", catalogue["db"], "clips", "--since", "2024-06-01", "--until", "2024-06-30", "--json"
    )
    assert [c["file_name"] for c in json.loads(window.output)] == ["VID_0042.mp4"]
    table = invoke("--db", catalogue["db"], "clips", "--device", "X60390010")
    assert table.exit_code == 0 and "X60390010_20240305_183000.mov" in table.output


def test_show_and_transcript_formats(catalogue, invoke):
    shown = invoke("--db", catalogue["db"], "show", "VID_0042.mp4", "--json")
    detail = json.loads(shown.output)
    assert detail["provenance"]["officer_id"] == {
        "value": "O104",
        "source": "sidecar",
        "confidence": "high",
    }
    assert detail["clip"]["audio_state"] == "present" and detail["transcript"]
    text = invoke("--db", catalogue["db"], "show", "VID_0042.mp4").output
    assert "officer_id: O104  (from sidecar, high)" in text
    srt = invoke("--db", catalogue["db"], "transcript", "VID_0042.mp4", "--format", "srt").output
    assert srt.startswith("1\n00:00:") and " --> " in srt
    vtt = invoke("--db", catalogue["db"], "transcript", "VID_0042.mp4", "--format", "vtt").output
    assert vtt.startswith("WEBVTT\n\n00:00:")
    body = json.loads(
        invoke("--db", catalogue["db"], "transcript", "VID_0042.mp4", "--format", "json").output
    )
    assert body["clip"] == "VID_0042.mp4" and "brave" in json.dumps(body).lower()


def test_full_text_search(catalogue, invoke):
    hits = json.loads(invoke("--db", catalogue["db"], "search", "brave", "--json").output)
    assert [h["file_name"] for h in hits] == ["VID_0042.mp4"]
    assert "[brave]" in hits[0]["snippet"].lower()
    odd = invoke("--db", catalogue["db"], "search", 'grandma" OR *')
    assert odd.exit_code == 0
    assert invoke("--db", catalogue["db"], "search", "zebra").output == "No matches.\n"


def test_no_transcribe_keeps_speech_regions_without_text(tmp_path, sample_media, invoke):
    media = tmp_path / "m"
    media.mkdir()
    shutil.copy(sample_media / "VID_0042.mp4", media / "VID_0042.mp4")
    result = invoke("--db", tmp_path / "c.db", "ingest", "--no-transcribe", media)
    assert result.exit_code == 0, result.output
    clip = _clips(tmp_path / "c.db")["VID_0042.mp4"]
    assert clip.speech_seconds > 5 and not clip.transcribed
    assert _rows(tmp_path / "c.db", TranscriptSegment) == []


def test_user_errors_are_one_clear_line(tmp_path, invoke):
    missing = invoke("--db", tmp_path / "c.db", "ingest", tmp_path / "nope")
    assert (missing.exit_code, missing.output) == (
        2,
        f"Error: path not found: {tmp_path / 'nope'}\n",
    )
    no_folder = invoke("--db", tmp_path / "no" / "c.db", "clips")
    assert no_folder.exit_code == 2
    assert no_folder.output.startswith("Error: cannot create catalogue")
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database" * 100)
    unreadable = invoke("--db", junk, "clips")
    assert unreadable.exit_code == 2
    assert unreadable.output == f"Error: cannot open catalogue {junk}: file is not a database\n"
    unknown = invoke("--db", tmp_path / "c.db", "show", "42")
    assert (
        unknown.output == "Error: no clip '42' in the catalogue (give an id, hash or file name)\n"
    )
    bad_model = invoke("--db", tmp_path / "c.db", "ingest", "--model", tmp_path, tmp_path)
    assert bad_model.exit_code == 2 and "neither the embedded 'tiny.en'" in bad_model.output
    bad_option = invoke("--db", tmp_path / "c.db", "ingest", "--workers", "0", tmp_path)
    assert bad_option.exit_code == 2 and "Invalid value for '--workers'" in bad_option.output

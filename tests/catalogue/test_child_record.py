"""`bwv child-record`: the child's words as an audited disclosure (issue 15).

Real SQLite catalogue built with the compliance helpers; the real CLI; the audit trail
read back from the database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from compliance_helpers import (
    add_attendance,
    add_clip,
    add_incident,
    make_engine,
    relink,
    standard_incident,
)
from sqlmodel import col, select

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import AuditEvent, Clip, TranscriptSegment

NASTY = '<script>alert("x")</script> *bold* [link](http://evil) \x1b[31m'


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """INC-1: a child says NASTY at 10:00:11 UTC, an adult speaks too. INC-2: no footage."""
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        clip_id = add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590)
        session.add(_segment(clip_id, 1.0, 4.5, NASTY, 0.91, speaker=0))
        session.add(_segment(clip_id, 6.0, 9.0, "Adult officer speaking", 0.1, speaker=1))
        add_incident(session, "INC-2", "2024-07-02T09:00:00", notes="<b>notes</b>")
        add_attendance(session, "INC-2", "O1", "2024-07-02T09:10:00", "2024-07-02T09:40:00")
    relink(engine)
    return tmp_path / "bwv.db"


def _segment(
    clip_id: int, start: float, end: float, text: str, p: float, speaker: int
) -> TranscriptSegment:
    return TranscriptSegment(
        clip_id=clip_id,
        start_s=start,
        end_s=end,
        text=text,
        confidence=-0.2,
        child_probability=p,
        speaker=speaker,
        speaker_child_probability=p,
    )


def bwv(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), "--actor", "DS Khan", *args])


def _events(db: Path) -> list[AuditEvent]:
    with session_scope(make_engine(db.parent)) as session:
        query = select(AuditEvent).where(col(AuditEvent.action) == "child_record")
        return list(session.exec(query.order_by(col(AuditEvent.id))))


def test_record_with_child_speech_as_json(db: Path) -> None:
    result = bwv(db, "child-record", "INC-1", "--reason", "Strategy meeting", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["protective_marking"] == "OFFICIAL-SENSITIVE"
    assert (data["generated_by"], data["reason"]) == ("DS Khan", "Strategy meeting")
    assert data["incident"]["incident_ref"] == "INC-1"
    assert data["officers_present"][0]["officer_id"] == "O1"
    assert data["officers_present"][0]["name"] == "PC O1"
    assert data["child_speech"] is True and data["no_child_speech"] is None
    [clip] = data["clips"]
    assert clip["child_segments"] == [  # the adult's segment is left out
        {
            "start_s": 1.0,
            "end_s": 4.5,
            "started_at": "2024-01-16T10:00:11Z",
            "ended_at": "2024-01-16T10:00:14.500000Z",
            "text": NASTY,
            "probability": 0.91,
            "segment_probability": 0.91,
            "speaker": 0,
            "source": "classifier",
        }
    ]
    assert clip["review"] is None and data["reviews"] == []
    assert data["verdict"]["verdict"] == "compliant"


def test_record_without_child_speech_says_why(db: Path) -> None:
    result = bwv(db, "child-record", "INC-2", "--reason", "Referral")
    assert result.exit_code == 0, result.output
    assert "**No child speech (no footage).** No footage: no clip is linked" in result.stdout
    data = json.loads(bwv(db, "child-record", "INC-2", "--reason", "R", "--format", "json").stdout)
    assert data["child_speech"] is False
    assert data["no_child_speech"]["kind"] == "no footage"
    assert data["clips"] == []


@pytest.mark.parametrize(
    ("audio", "speech", "adult", "kind"),
    [
        ("silent", 0.0, 0.0, "no audio"),
        ("present", 0.0, 0.0, "not detected"),
        ("present", 10.0, 8.0, "not detected"),
    ],
)
def test_each_reason_for_no_child_speech(
    db: Path, audio: str, speech: float, adult: float, kind: str
) -> None:
    engine = make_engine(db.parent)
    with session_scope(engine) as session:
        add_clip(
            session,
            serial="CAM1",
            start="2024-07-02T09:10:05",
            seconds=600,
            audio=audio,
            speech=speech,
            adult_segment=adult,
        )
    relink(engine)
    data = json.loads(bwv(db, "child-record", "INC-2", "--reason", "R", "--format", "json").stdout)
    assert data["no_child_speech"]["kind"] == kind


def test_unreadable_footage_needs_review(db: Path) -> None:
    engine = make_engine(db.parent)
    with session_scope(engine) as session:
        add_clip(session, serial="CAM1", start="2024-07-02T09:10:05", status="failed")
    relink(engine)
    data = json.loads(bwv(db, "child-record", "INC-2", "--reason", "R", "--format", "json").stdout)
    assert data["no_child_speech"]["kind"] == "needs review"


def test_html_is_self_contained_escaped_and_marked_for_a4(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "record.html"
    result = bwv(db, "child-record", "INC-1", "--reason", "<i>why</i>", "--format", "html",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 child segments; disclosure audited" in result.stderr
    page = out.read_text()
    assert "<script" not in page and "<i>why" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "\x1b" not in page and "\\x1b[31m" in page
    assert "@page { size: A4" in page
    assert page.count("OFFICIAL-SENSITIVE") == 3  # title, top and foot of every page
    assert "default-src 'none'" in page and "http://" not in page.replace("http://evil", "")
    assert "Adult officer speaking" not in page


def test_markdown_neutralises_transcript_markup(db: Path) -> None:
    text = bwv(db, "child-record", "INC-1", "--reason", "R").stdout
    line = next(row for row in text.splitlines() if "alert" in row)
    assert "\\<script\\>" in line and "\\*bold\\*" in line and "\\[link\\]" in line
    assert "\x1b" not in text


def test_the_marking_comes_from_the_policy(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('protective_marking = "OFFICIAL-SENSITIVE: PERSONAL"\n')
    monkeypatch.setenv("BWV_POLICY", str(policy))
    text = bwv(db, "child-record", "INC-1", "--reason", "R").stdout
    assert text.startswith("**OFFICIAL\\-SENSITIVE: PERSONAL**")


def test_writing_a_record_is_one_audited_disclosure(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    assert bwv(db, "child-record", "INC-1", "--reason", "Strategy meeting",
               "--out", str(out)).exit_code == 0  # fmt: skip
    [event] = _events(db)
    assert (event.actor, event.outcome) == ("DS Khan", "ok")
    assert "incident:INC-1" in event.object_ids and "clip:" in event.object_ids
    details = json.loads(event.details)
    assert details["reason"] == "Strategy meeting"
    assert (details["format"], details["out"], details["child_segments"]) == ("md", str(out), 1)
    assert bwv(db, "audit", "verify").exit_code == 0


def test_refusals_disclose_nothing_and_audit_nothing(db: Path, tmp_path: Path) -> None:
    missing_reason = bwv(db, "child-record", "INC-1")
    assert missing_reason.exit_code == 2 and "--reason" in missing_reason.output
    blank = bwv(db, "child-record", "INC-1", "--reason", "  ")
    assert blank.exit_code == 2
    assert "Error: give a reason for the disclosure" in blank.stderr
    unknown = bwv(db, "child-record", "INC-404", "--reason", "R")
    assert unknown.exit_code == 2 and "no incident 'INC-404'" in unknown.stderr
    folder = bwv(db, "child-record", "INC-1", "--reason", "R", "--out", str(tmp_path / "no/x"))
    assert folder.exit_code == 2 and "cannot write the record" in folder.stderr
    assert "Traceback" not in folder.output + blank.output + unknown.output
    assert _events(db) == []


def test_never_written_over_an_original(db: Path, tmp_path: Path) -> None:
    original = tmp_path / "evidence.mp4"
    original.write_bytes(b"original footage")
    with session_scope(make_engine(db.parent)) as session:
        clip = session.exec(select(Clip)).first()
        assert clip is not None
        clip.path = str(original)
        session.add(clip)
    link = tmp_path / "innocent.md"
    link.symlink_to(original)
    result = bwv(db, "child-record", "INC-1", "--reason", "R", "--out", str(link))
    assert result.exit_code == 2 and "is a catalogued original" in result.stderr
    assert original.read_bytes() == b"original footage"
    assert _events(db) == []


# People's reviews of the child's voice (heard / not_heard) ------------------------------


def _clip_for_inc2(db: Path, audio: str = "present") -> int:
    """A clip at INC-2 with 10 s of speech, 8 s of it an unattributed voice from 20 s."""
    engine = make_engine(db.parent)
    with session_scope(engine) as session:
        clip_id = add_clip(session, serial="CAM1", start="2024-07-02T09:10:05", seconds=600,
                           audio=audio, speech=10.0, adult_segment=8.0)  # fmt: skip
    relink(engine)
    return clip_id


def _record(db: Path, ref: str, fmt: str = "json") -> Result:
    result = bwv(db, "child-record", ref, "--reason", "Referral", "--format", fmt)
    assert result.exit_code == 0, result.output
    return result


def test_a_heard_review_adds_the_words_in_its_span_and_who_heard_them(db: Path) -> None:
    clip_id = _clip_for_inc2(db)
    assert json.loads(_record(db, "INC-2").stdout)["no_child_speech"]["kind"] == "not detected"
    reviewed = bwv(db, "review", str(clip_id), "heard", "--start", "21", "--end", "24",
                   "--reason", "a girl answers at 21 s")  # fmt: skip
    assert reviewed.exit_code == 0, reviewed.output
    data = json.loads(_record(db, "INC-2").stdout)
    assert data["child_speech"] is True and data["no_child_speech"] is None
    assert data["verdict"]["verdict"] == "compliant"
    [clip] = data["clips"]
    [segment] = clip["child_segments"]
    assert (segment["start_s"], segment["source"], segment["probability"]) == (20.0, "review", 0.2)
    [review] = data["reviews"]
    assert review["code"] == "REVIEWED_CHILD_VOICE_HEARD" and review["clip_id"] == clip_id
    assert (review["decision"], review["start_s"], review["end_s"]) == ("heard", 21.0, 24.0)
    assert (review["actor"], review["reason"]) == ("DS Khan", "a girl answers at 21 s")
    assert review["decided_at"].endswith("Z") and clip["review"]["decision"] == "heard"
    text = _record(db, "INC-2", "md").stdout
    assert "A person heard the child: clip" in text and "(heard by a person)" in text
    assert "REVIEWED\\_CHILD\\_VOICE\\_HEARD" in text and "a girl answers at 21 s" in text


def test_a_heard_review_settles_capture_without_words_or_sound(db: Path) -> None:
    clip_id = _clip_for_inc2(db, audio="silent")
    assert json.loads(_record(db, "INC-2").stdout)["no_child_speech"]["kind"] == "no audio"
    bwv(db, "review", str(clip_id), "heard", "--start", "100", "--end", "110", "--reason", "lip")
    data = json.loads(_record(db, "INC-2").stdout)
    assert data["child_speech"] is True and data["no_child_speech"] is None
    assert data["clips"][0]["child_segments"] == []  # nothing transcribed in that span
    page = _record(db, "INC-2", "html").stdout
    assert "A person heard the child: clip" in page and "DS Khan" in page


def test_a_not_heard_review_removes_the_classifiers_child_speech(db: Path) -> None:
    before = json.loads(_record(db, "INC-1").stdout)
    assert before["child_speech"] is True
    clip_id = before["clips"][0]["clip_id"]
    reviewed = bwv(db, "review", str(clip_id), "not_heard", "--reason", "adult voices only")
    assert reviewed.exit_code == 0, reviewed.output
    data = json.loads(_record(db, "INC-1").stdout)
    assert data["child_speech"] is False and data["clips"][0]["child_segments"] == []
    assert data["no_child_speech"]["kind"] == "not heard"
    assert data["verdict"]["verdict"] == "needs_review"  # as the verdicts count it: 0 s
    [review] = data["reviews"]
    assert (review["code"], review["actor"], review["reason"]) == (
        "REVIEWED_NO_CHILD_VOICE", "DS Khan", "adult voices only",
    )  # fmt: skip
    html = _record(db, "INC-1", "html").stdout
    assert "REVIEWED_NO_CHILD_VOICE" in html and "No child speech (not heard)" in html
    assert "alert" not in html  # the classifier's segment is no longer the child's


def test_a_not_heard_review_of_one_clip_leaves_the_others(db: Path) -> None:
    clip_id = _clip_for_inc2(db)
    engine = make_engine(db.parent)
    with session_scope(engine) as session:
        add_clip(session, serial="CAM1", start="2024-07-02T09:20:05", seconds=60, speech=5.0,
                 adult_segment=3.0)  # fmt: skip
    relink(engine)
    bwv(db, "review", str(clip_id), "not_heard", "--reason", "adults")
    data = json.loads(_record(db, "INC-2").stdout)
    assert data["no_child_speech"]["kind"] == "not detected"  # one clip nobody listened to

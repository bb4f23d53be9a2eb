"""A person's review of a clip's child voice, honoured by every verdict and report format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner
from compliance_helpers import add_clip, catalogue_arg, relink, standard_incident
from sqlalchemy import Engine
from sqlmodel import select

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import AuditEvent
from compliance.facts import Period
from compliance.report import build_report
from compliance.verdicts import IncidentVerdict


def _setup(engine: Engine, child: float) -> int:
    with session_scope(engine) as session:
        standard_incident(session)
        clip_id = add_clip(
            session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590, speech=40, child=child
        )
    relink(engine)
    return clip_id


def _bwv(db: str, *args: object, actor: str = "insp.jones") -> object:
    return CliRunner().invoke(main, ["--db", db, "--actor", actor, *map(str, args)])


def _verdict(engine: Engine) -> IncidentVerdict:
    report = build_report(engine=engine, period=Period())
    return next(v for v in report.verdicts if v.incident.incident_ref == "INC-1")


def _incident_json(db: str) -> dict:  # type: ignore[type-arg]
    result = _bwv(db, "incident", "INC-1", "--json")
    return json.loads(result.output)  # type: ignore[attr-defined]


def test_heard_review_turns_needs_review_compliant_with_who_and_when(
    engine: Engine, tmp_path: Path
) -> None:
    clip_id = _setup(engine, child=0.0)
    db = catalogue_arg(tmp_path)
    assert _verdict(engine).verdict == "needs_review"
    result = _bwv(db, "review", clip_id, "heard", "--start", 5, "--end", 9, "--reason", "girl")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "Verdicts of INC-1 now follow it" in result.output  # type: ignore[attr-defined]
    data = _incident_json(db)
    assert data["verdict"] == "compliant"
    [review] = data["reviews"]
    assert review["code"] == "REVIEWED_CHILD_VOICE_HEARD"
    assert (review["clip_id"], review["start_s"], review["end_s"]) == (clip_id, 5.0, 9.0)
    assert review["actor"] == "insp.jones" and review["decided_at"].endswith("Z")
    assert data["clips"][0]["child_voice_review"]["decision"] == "heard"
    assert data["clips"][0]["child_speech_seconds"] == 0.0  # the classifier's figure is kept
    assert data["attendance"][0]["child_voice_captured"] is True


def test_not_heard_review_overrides_the_classifier(engine: Engine, tmp_path: Path) -> None:
    clip_id = _setup(engine, child=2.5)
    assert _verdict(engine).verdict == "compliant"
    result = _bwv(catalogue_arg(tmp_path), "review", clip_id, "not_heard", "--reason", "adult only")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    verdict = _verdict(engine)
    assert verdict.verdict == "needs_review"
    [reason] = verdict.reasons
    assert reason.code == "CHILD_VOICE_NOT_DETECTED"
    assert reason.evidence["reviewed_no_child_voice_clip_ids"] == [clip_id]
    assert reason.evidence["child_speech_seconds"] == 0.0


def test_a_new_review_replaces_the_old_and_survives_relinking(
    engine: Engine, tmp_path: Path
) -> None:
    clip_id = _setup(engine, child=0.0)
    db = catalogue_arg(tmp_path)
    _bwv(db, "review", clip_id, "heard", "--start", 1, "--end", 3, "--reason", "first")
    result = _bwv(db, "review", clip_id, "not_heard", "--reason", "listened again")
    assert "replacing heard" in result.output  # type: ignore[attr-defined]
    _bwv(db, "unlink", clip_id, "INC-1", "--reason", "wrong job")
    _bwv(db, "link", clip_id, "INC-1", "--reason", "right job after all")
    relink(engine)
    data = _incident_json(db)
    assert [r["code"] for r in data["reviews"]] == ["REVIEWED_NO_CHILD_VOICE"]
    assert data["reviews"][0]["reason"] == "listened again"
    assert data["verdict"] == "needs_review"


def test_each_review_is_audited_with_its_actor(engine: Engine, tmp_path: Path) -> None:
    clip_id = _setup(engine, child=0.0)
    _bwv(catalogue_arg(tmp_path), "review", clip_id, "not_heard", "--reason", "r", actor="insp.a")
    with session_scope(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "voice_review")).all()
    [event] = events
    assert event.actor == "insp.a"
    assert event.object_ids == f"clip:{clip_id},incident:INC-1"
    assert json.loads(event.details)["decision"] == "not_heard"


def test_bad_reviews_are_one_error_line_and_store_nothing(engine: Engine, tmp_path: Path) -> None:
    clip_id = _setup(engine, child=0.0)
    db = catalogue_arg(tmp_path)
    cases = [
        (["heard", "--reason", "x"], "--start SECONDS and --end SECONDS"),
        (["heard", "--start", 9, "--end", 5, "--reason", "x"], "empty or negative"),
        (["heard", "--start", 1, "--end", 900, "--reason", "x"], "590.0 s long"),
        (["not_heard", "--start", 1, "--reason", "x"], "whole clip"),
        (["heard", "--start", 1, "--end", 2, "--reason", "  "], "give a reason"),
    ]
    for args, message in cases:
        result = _bwv(db, "review", clip_id, *args)
        assert result.exit_code == 2, (args, result.output)  # type: ignore[attr-defined]
        assert message in result.output, result.output  # type: ignore[attr-defined]
        assert "Traceback" not in result.output  # type: ignore[attr-defined]
    missing = _bwv(db, "review", clip_id, "heard", "--start", 1, "--end", 2)
    assert missing.exit_code == 2  # type: ignore[attr-defined]
    assert _verdict(engine).verdict == "needs_review"
    assert _incident_json(db)["reviews"] == []


def test_every_report_format_shows_the_review(engine: Engine, tmp_path: Path) -> None:
    clip_id = _setup(engine, child=0.0)
    db = catalogue_arg(tmp_path)
    _bwv(db, "review", clip_id, "heard", "--start", 5, "--end", 9, "--reason", "<b>girl</b>")
    table = _bwv(db, "report").output  # type: ignore[attr-defined]
    assert f"REVIEWED_CHILD_VOICE_HEARD(clip {clip_id})" in table
    rows = list(csv.DictReader(io.StringIO(_bwv(db, "report", "--format", "csv").output)))  # type: ignore[attr-defined]
    assert "REVIEWED_CHILD_VOICE_HEARD" in rows[0]["reviews"]
    assert "insp.jones" in rows[0]["reviews"]
    html = _bwv(db, "report", "--format", "html").output  # type: ignore[attr-defined]
    assert "REVIEWED_CHILD_VOICE_HEARD" in html and "&lt;b&gt;girl&lt;/b&gt;" in html
    report = json.loads(_bwv(db, "report", "--format", "json").output)  # type: ignore[attr-defined]
    assert report["incidents"][0]["reviews"][0]["reason"] == "<b>girl</b>"
    text = _bwv(db, "incident", "INC-1").output  # type: ignore[attr-defined]
    assert "REVIEWED_CHILD_VOICE_HEARD: clip" in text

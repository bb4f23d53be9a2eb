"""CHILD_VOICE_NOT_DETECTED evidence from a real catalogue: the likeliest child segments to
listen to first, and for older children the speech of people other than the wearer."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from compliance_helpers import add_clip, catalogue_arg, relink, standard_incident
from sqlalchemy import Engine

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import TranscriptSegment
from compliance.facts import Period
from compliance.report import build_report
from compliance.verdicts import IncidentVerdict


def segment(
    clip_id: int, start: float, seconds: float, p: float, wearer: bool
) -> TranscriptSegment:
    return TranscriptSegment(
        clip_id=clip_id, start_s=start, end_s=start + seconds, text="words", confidence=-0.2,
        child_probability=p, speaker=0 if wearer else 1, speaker_child_probability=p,
        wearer=wearer,
    )  # fmt: skip


def catalogue(engine: Engine, ages: str) -> int:
    """INC-1 with one clip: the wearer talks (p 0.1) and another adult-sounding voice
    (p 0.4 to 0.6, under the 0.65 threshold) speaks 7 s starting 30 s in."""
    with session_scope(engine) as session:
        standard_incident(session, ages=ages)
        clip_id = add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590)
        session.add_all(
            [segment(clip_id, 1.0, 20.0, 0.1, True), segment(clip_id, 30.0, 3.0, 0.6, False),
             segment(clip_id, 40.0, 4.0, 0.4, False), segment(clip_id, 50.0, 2.0, 0.5, False)]
        )  # fmt: skip
    relink(engine)
    return clip_id


def verdict(engine: Engine, policy: Path | None = None) -> IncidentVerdict:
    report = build_report(engine=engine, period=Period(), policy_path=policy)
    return report.verdicts[0]


def test_not_detected_lists_the_likeliest_child_segments_with_times(engine: Engine) -> None:
    clip_id = catalogue(engine, ages="7")
    judged = verdict(engine)
    [reason] = judged.reasons
    assert (judged.verdict, reason.code) == ("needs_review", "CHILD_VOICE_NOT_DETECTED")
    evidence = reason.evidence
    assert evidence["voice_rule"] == "child_voice" and "other_voice" not in evidence
    assert [(c["start_s"], c["child_probability"]) for c in evidence["candidates"]] == [
        (30.0, 0.6), (50.0, 0.5), (40.0, 0.4)
    ]  # fmt: skip
    assert evidence["candidates"][0]["clip_id"] == clip_id
    assert evidence["candidates"][0]["at"].isoformat() == "2024-01-16T10:00:40"


def test_an_older_child_is_heard_through_other_voices_and_stays_needs_review(
    engine: Engine, tmp_path: Path
) -> None:
    catalogue(engine, ages="14")
    evidence = verdict(engine).reasons[0].evidence
    assert evidence["voice_rule"] == "other_voice"
    assert evidence["other_voice_seconds"] == 9.0
    [heard] = evidence["other_voice"]
    assert heard["first_at"].isoformat() == "2024-01-16T10:00:40" and heard["seconds"] == 9.0
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("other_voice_compliant = true\n")
    assert verdict(engine, lenient).verdict == "compliant"
    strict = tmp_path / "strict.toml"
    strict.write_text("other_voice_compliant = true\nchild_voice_age = 16\n")
    assert verdict(engine, strict).verdict == "needs_review"  # a 14-year-old is a child now


def test_the_json_contract_carries_the_new_evidence(engine: Engine, tmp_path: Path) -> None:
    catalogue(engine, ages="")
    db = catalogue_arg(tmp_path)
    result = CliRunner().invoke(main, ["--db", db, "incident", "INC-1", "--json"])
    assert result.exit_code == 0, result.output
    [reason] = json.loads(result.output)["reasons"]
    assert reason["code"] == "CHILD_VOICE_NOT_DETECTED" and reason["voice_rule"] == "other_voice"
    assert reason["candidates"][0]["at"] == "2024-01-16T10:00:40Z"
    assert reason["other_voice"][0]["first_at"] == "2024-01-16T10:00:40Z"


def test_a_policy_with_a_non_boolean_switch_is_refused(engine: Engine, tmp_path: Path) -> None:
    catalogue(engine, ages="14")
    bad = tmp_path / "bad.toml"
    bad.write_text("other_voice_compliant = 1\n")
    result = CliRunner().invoke(
        main, ["--db", catalogue_arg(tmp_path), "report", "--policy", str(bad)]
    )
    assert result.exit_code == 2
    assert "other_voice_compliant: must be true or false, not 1" in result.output


def test_show_and_transcripts_mark_the_wearer(engine: Engine, tmp_path: Path) -> None:
    clip_id = catalogue(engine, ages="7")
    db = catalogue_arg(tmp_path)
    shown = CliRunner().invoke(main, ["--db", db, "show", str(clip_id)])
    lines = [line for line in shown.output.splitlines() if "words" in line]
    assert "WEARER" in lines[0] and not any("WEARER" in line for line in lines[1:]), lines
    as_json = json.loads(
        CliRunner().invoke(main, ["--db", db, "show", str(clip_id), "--json"]).output
    )
    assert [s["wearer"] for s in as_json["transcript"]] == [True, False, False, False]
    txt = CliRunner().invoke(main, ["--db", db, "transcript", str(clip_id), "--format", "txt"])
    assert txt.output.count("[wearer]") == 1


def test_every_report_format_renders_the_new_evidence(engine: Engine, tmp_path: Path) -> None:
    catalogue(engine, ages="")
    db = catalogue_arg(tmp_path)
    for fmt in ("table", "csv", "json", "html"):
        out = tmp_path / f"report.{fmt}"
        result = CliRunner().invoke(
            main, ["--db", db, "report", "--format", fmt, "--output", str(out)]
        )
        assert result.exit_code == 0, (fmt, result.output)
        text = out.read_text() if out.exists() else result.output
        assert "CHILD_VOICE_NOT_DETECTED" in text, fmt
    assert "2024-01-16T10:00:40" in (tmp_path / "report.json").read_text()

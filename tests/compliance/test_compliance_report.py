"""`bwv report`, `bwv incident`, `bwv link` / `unlink` through the real command line."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from compliance_helpers import (
    add_assignment,
    add_attendance,
    add_clip,
    add_incident,
    add_officer,
    make_engine,
    relink,
    standard_incident,
)

from bwv.cli import main
from bwv.core.db import session_scope
from compliance import parts
from compliance.facts import Period

NASTY = '<script>alert("x")</script>'


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWV_ACTOR", "inspector")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """INC-1 compliant, INC-2 non-compliant (no footage), INC-3 not applicable."""
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590, child=3.0)
        add_officer(session, "O2", team="Team B", station="North")
        add_assignment(session, "CAM2", "O2", "2024-01-01T00:00:00")
        add_incident(session, "INC-2", "2024-07-02T09:00:00", notes=NASTY,
                     location="=HYPERLINK(\"http://evil\")", kind="@SUM(A1)")  # fmt: skip
        add_attendance(session, "INC-2", "O2", "2024-07-02T09:10:00", "2024-07-02T09:40:00")
        add_incident(session, "INC-3", "2024-03-01T12:00:00", child_contact=False)
    relink(engine)
    return tmp_path / "bwv.db"


def bwv(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args])


def test_json_contract(db: Path) -> None:
    result = bwv(db, "report", "--format", "json")
    assert result.exit_code == 1  # INC-2 is non-compliant
    data = json.loads(result.stdout)
    assert list(data) == [
        "generated_at", "policy", "summary", "officers", "incidents", "unassigned_clips",
    ]  # fmt: skip
    assert data["officers"]["O2"] == {"name": "PC O2", "team": "Team B", "station": "North"}
    assert data["generated_at"].endswith("Z")
    assert data["policy"]["min_child_speech_s"] == 2.0
    assert data["policy"]["link_pre_arrival_s"] == 300.0
    summary = data["summary"]
    assert summary["verdicts"] == {
        "non_compliant": 1, "needs_review": 0, "compliant": 1, "not_applicable": 1,
    }  # fmt: skip
    assert summary["reasons"]["NO_FOOTAGE"] == 1
    assert summary["officer_findings"]["NOT_RECORDING"] == 1
    assert (summary["applicable_attendances"], summary["activation_rate"]) == (2, 0.5)
    assert [i["incident_ref"] for i in data["incidents"]] == ["INC-2", "INC-1", "INC-3"]
    worst = data["incidents"][0]
    for key in ("incident_ref", "type", "reported_at", "verdict", "reasons",
                "officer_findings", "clips"):  # fmt: skip
        assert key in worst
    assert worst["reported_at"] == "2024-07-02T09:00:00Z"
    assert worst["reasons"][0]["code"] == "NO_FOOTAGE"
    assert worst["officer_findings"][0] == {
        "officer_id": "O2",
        "code": "NOT_RECORDING",
        "arrived_at": "2024-07-02T09:10:00Z",
        "left_at": "2024-07-02T09:40:00Z",
        "cameras": ["CAM2"],
    }
    clip = data["incidents"][1]["clips"][0]
    assert (clip["link_source"], clip["ambiguous"], clip["overlap_s"]) == ("auto", False, 590.0)
    assert clip["child_speech_seconds"] == 3.0
    assert "attendance" not in worst  # per-attendance figures are in `bwv incident --json`


def _without_time(text: str) -> dict[str, object]:
    data = json.loads(text)
    data.pop("generated_at")
    return dict(data)


@pytest.mark.parametrize("options", [(), ("--by", "team"), ("--by", "month")])
@pytest.mark.parametrize(("part", "chunk"), [(1, 10_000), (10**9, 1)], ids=["parts", "chunks"])
def test_report_judged_in_parallel_parts_is_the_same(
    db: Path, monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...], part: int, chunk: int
) -> None:
    """Three parts in three processes, or one part three chunks at a time: the same report."""
    engine = make_engine(db.parent)
    with session_scope(engine) as session:  # unassigned clips fall in the first and last part
        add_clip(session, serial="SPARE1", start="2024-01-02T08:00:00", seconds=60)
        add_clip(session, serial="SPARE2", start="2024-08-02T08:00:00", seconds=60)
        for month in (2, 4, 5):  # more non-compliant incidents, so order within a verdict counts
            add_incident(session, f"INC-M{month}", f"2024-0{month}-03T09:00:00")
            add_attendance(
                session, f"INC-M{month}", "O2", f"2024-0{month}-03T09:10:00",
                f"2024-0{month}-03T09:40:00",
            )  # fmt: skip
    relink(engine)
    whole = bwv(db, "report", "--format", "json", *options)
    assert json.loads(whole.stdout)["summary"]["unassigned_clips"] == 2
    assert json.loads(whole.stdout)["summary"]["verdicts"]["non_compliant"] == 4
    monkeypatch.setattr(parts, "MIN_PART_INCIDENTS", part)
    monkeypatch.setattr(parts, "CHUNK_INCIDENTS", chunk)
    monkeypatch.setattr(parts, "_usable_cores", lambda: 3)
    cut = parts._split(engine, Period(), most=3, each_at_least=1)
    assert [(p.since is None, p.until is None) for p in cut] == [
        (True, False), (False, False), (False, True),
    ]  # fmt: skip
    in_parts = bwv(db, "report", "--format", "json", *options)
    assert (whole.exit_code, in_parts.exit_code) == (1, 1)
    assert isinstance(in_parts.exception, SystemExit)  # not an error
    assert _without_time(in_parts.stdout) == _without_time(whole.stdout)


def test_installed_command_reports_and_exits_cleanly(db: Path) -> None:
    """The real `bwv` script (its quick ending included) gives the same report and status."""
    script = Path(sys.executable).with_name("bwv")
    if not script.is_file():
        pytest.skip(f"{script} is not installed (run through `python3 tasks.py test`)")
    run = subprocess.run(
        [str(script), "--db", str(db), "report", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stderr) == (1, "")
    assert _without_time(run.stdout) == _without_time(bwv(db, "report", "--format", "json").stdout)


def test_exit_status_is_zero_without_non_compliance(db: Path) -> None:
    result = bwv(db, "report", "--since", "2024-01-01", "--until", "2024-02-01")
    assert result.exit_code == 0, result.output
    assert "INC-1" in result.stdout and "INC-2" not in result.stdout
    assert "1 incidents: 0 non_compliant, 0 needs_review, 1 compliant" in result.stdout


def test_errors_exit_two(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("min_child_speech_s = 'two'\nsurprise = 1\n")
    result = bwv(db, "report", "--policy", str(bad))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"Error: policy file {bad}: min_child_speech_s: must be a number, not str",
        f"Error: policy file {bad}: surprise: unknown setting (known: min_speaking_age, "
        "child_probability_threshold, min_child_speech_s, start_grace_s, stop_grace_s, "
        "link_pre_arrival_s, link_post_departure_s, flag_below_points, flag_min_attendances, "
        "first_arrival_target_s, protective_marking, child_voice_age, other_voice_compliant)",
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("min_speaking_age = [")
    assert "is not valid TOML" in bwv(db, "report", "--policy", str(broken)).stderr
    missing = bwv(db, "report", "--policy", str(tmp_path / "none.toml"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert bwv(db, "report", "--since", "last tuesday").exit_code == 2


def test_csv_neutralises_formulas(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    result = bwv(db, "report", "--format", "csv", "--output", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    nasty = rows[0]
    assert nasty["location"] == '\'=HYPERLINK("http://evil")'
    assert nasty["type"] == "'@SUM(A1)"
    assert nasty["notes"] == NASTY
    assert nasty["reasons"] == "NO_FOOTAGE"
    assert nasty["officer_findings"] == "O2:NOT_RECORDING"


def test_html_escapes_catalogue_text(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert bwv(db, "report", "--format", "html", "--output", str(out)).exit_code == 1
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<svg" in page and "http://evil" in page
    assert "src=" not in page and "<link" not in page  # nothing is fetched from outside


def test_consistency_by_team(db: Path) -> None:
    table = bwv(db, "report", "--by", "team")
    assert table.exit_code == 1
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["TEAM", "ATTENDED", "RECORDED", "CHILD", "VOICE"]
    assert lines[1].split()[:4] == ["Force-wide", "2", "50%", "50%"]
    data = json.loads(bwv(db, "report", "--by", "team", "--format", "json").stdout)
    assert data["by"] == "team"
    assert data["force"]["activation_rate"] == 0.5
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["Team B"]["activation_rate"] == 0.0
    assert groups["Team B"]["findings"]["NOT_RECORDING"] == 1
    assert groups["Team A"]["median_start_delay_s"] == 10.0
    assert not groups["Team B"]["flagged"]  # one attendance is too few to flag


def test_small_groups_are_flagged_when_policy_allows(db: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("flag_min_attendances = 1\n")
    data = json.loads(bwv(db, "report", "--by", "station", "--format", "json",
                          "--policy", str(policy)).stdout)  # fmt: skip
    flagged = {g["group"]: g["flags"] for g in data["groups"]}
    assert flagged == {
        "North": ["ACTIVATION_BELOW_FORCE", "CHILD_VOICE_BELOW_FORCE"],
        "Central": [],
    }


def test_incident_view_text_and_json(db: Path) -> None:
    text = bwv(db, "incident", "INC-1")
    assert text.exit_code == 0, text.output
    assert "Verdict: compliant" in text.stdout
    assert (
        "O1 PC O1 (Team A, Central): 2024-01-16 10:00:00 GMT to 10:10:00, camera CAM1"
        in text.stdout
    )
    data = json.loads(bwv(db, "incident", "INC-2", "--json").stdout)
    assert data["verdict"] == "non_compliant" and data["notes"] == NASTY
    assert data["officers"] == {"O2": {"name": "PC O2", "team": "Team B", "station": "North"}}
    assert data["attendance"] == [
        {
            "officer_id": "O2",
            "arrived_at": "2024-07-02T09:10:00Z",
            "left_at": "2024-07-02T09:40:00Z",
            "cameras": ["CAM2"],
            "clip_ids": [],
            "recorded": False,
            "child_voice_captured": False,
            "start_delay_s": None,
        }
    ]
    missing = bwv(db, "incident", "INC-404")
    assert missing.exit_code == 2
    assert missing.stderr == "Error: no incident 'INC-404' in the catalogue\n"


def test_link_and_unlink_commands(db: Path) -> None:
    assert bwv(db, "link", "1", "INC-2").exit_code == 2  # --reason is required
    linked = bwv(db, "link", "1", "INC-2", "--reason", "seen on the footage")
    assert linked.exit_code == 0, linked.output
    first, second = linked.stdout.splitlines()
    assert first.startswith("Recorded link by inspector: clip 1 (CAM1_")
    assert first.endswith(".mp4) is now linked to INC-2.")
    assert second == "Clip 1 is also linked to INC-1 (auto)."
    data = json.loads(bwv(db, "incident", "INC-2", "--json").stdout)
    assert [c["link_source"] for c in data["clips"]] == ["manual"]
    unlinked = bwv(db, "unlink", "1", "INC-2", "--reason", "wrong address")
    assert "is now not linked to INC-2" in unlinked.stdout
    missing = bwv(db, "unlink", "12345", "INC-2", "--reason", "x")
    assert missing.exit_code == 2 and missing.stderr.startswith("Error: no clip '12345'")


def test_output_to_an_unwritable_place(db: Path, tmp_path: Path) -> None:
    result = bwv(db, "report", "--output", str(tmp_path / "no" / "such" / "dir.txt"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot write report to ")


def test_unknown_time_zone_is_a_clear_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWV_TIMEZONE", "Mars/Olympus")
    result = bwv(db, "report")
    assert result.exit_code == 2
    assert result.stderr == "Error: unknown time zone 'Mars/Olympus' in BWV_TIMEZONE\n"


def test_demo_without_sample_media_is_a_clear_error(tmp_path: Path) -> None:
    from bwv.core.errors import BwvError
    from bwv.services.demo import run_demo

    with pytest.raises(BwvError, match=r"sample media folder .*nothing is missing; run `bwv demo`"):
        run_demo(tmp_path / "out", actor="tester", media=tmp_path / "nothing")

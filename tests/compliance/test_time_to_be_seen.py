"""Time to be seen: priority on import, first-arrival targets, SLOW_RESPONSE, NOT_ATTENDED,
and the arrival figures of the --by views (issue 15). Real SQLite, real CSV files."""

from __future__ import annotations

import json
from datetime import timedelta
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
)
from sqlmodel import select

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.errors import BwvError, ImportRejected
from bwv.core.models import Incident
from bwv.services.compliance import import_file, incident_detail
from compliance import parts
from compliance.consistency import percentile
from compliance.facts import Period
from compliance.policy import Policy, load_policy
from compliance.report import build_report

HEADER = "incident_ref,type,reported_at,child_contact,child_ages,priority\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """INC-P1: P1 (15 min) first reached after 25 min. INC-NONE: nobody attended.
    INC-P3: P3 reached in 30 min, within its 4 hours. INC-ADULT: no child, not measured."""
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        add_officer(session, "O1", team="Team A")
        add_officer(session, "O2", team="Team B")
        add_assignment(session, "CAM1", "O1", "2024-01-01T00:00:00")
        add_incident(session, "INC-P1", "2024-01-16T10:00:00", priority="P1")
        add_attendance(session, "INC-P1", "O2", "2024-01-16T10:40:00", "2024-01-16T11:00:00")
        add_attendance(session, "INC-P1", "O1", "2024-01-16T10:25:00", "2024-01-16T11:00:00")
        add_clip(session, serial="CAM1", start="2024-01-16T10:25:10", seconds=2000, child=5.0)
        add_incident(session, "INC-NONE", "2024-02-01T10:00:00", priority="P2")
        add_incident(session, "INC-P3", "2024-03-01T10:00:00", priority="P3")
        add_attendance(session, "INC-P3", "O1", "2024-03-01T10:30:00", "2024-03-01T10:50:00")
        add_incident(session, "INC-ADULT", "2024-03-02T10:00:00", child_contact=False)
        add_attendance(session, "INC-ADULT", "O2", "2024-03-02T15:00:00", "2024-03-02T15:30:00")
    relink(engine)
    return tmp_path / "bwv.db"


def bwv(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args])


def _report(db: Path, *args: str) -> dict:
    return json.loads(bwv(db, "report", "--format", "json", *args).stdout)


def test_p1_attended_after_its_target_is_slow_and_keeps_its_verdict(db: Path) -> None:
    entries = {i["incident_ref"]: i for i in _report(db)["incidents"]}
    p1 = entries["INC-P1"]
    assert p1["verdict"] == "compliant"  # the finding never changes the verdict
    assert (p1["priority"], p1["first_arrival_target_s"]) == ("P1", 900.0)
    assert p1["time_to_first_arrival_s"] == 1500.0  # O1 at 10:25, not O2 at 10:40
    assert p1["incident_findings"] == [
        {
            "code": "SLOW_RESPONSE",
            "priority": "P1",
            "reported_at": "2024-01-16T10:00:00Z",
            "target_s": 900.0,
            "officer_id": "O1",
            "first_arrived_at": "2024-01-16T10:25:00Z",
            "time_to_first_arrival_s": 1500.0,
            "over_by_s": 600.0,
        }
    ]
    assert entries["INC-P3"]["incident_findings"] == []
    assert entries["INC-P3"]["time_to_first_arrival_s"] == 1800.0
    adult = entries["INC-ADULT"]  # not applicable: not measured
    assert (adult["time_to_first_arrival_s"], adult["incident_findings"]) == (None, [])


def test_incident_nobody_attended_is_not_attended(db: Path) -> None:
    data = _report(db)
    entry = next(i for i in data["incidents"] if i["incident_ref"] == "INC-NONE")
    assert entry["time_to_first_arrival_s"] is None
    assert entry["incident_findings"] == [
        {
            "code": "NOT_ATTENDED",
            "priority": "P2",
            "reported_at": "2024-02-01T10:00:00Z",
            "target_s": 3600.0,
        }
    ]
    assert entry["verdict"] == "non_compliant"  # NO_FOOTAGE, as before
    summary = data["summary"]
    assert summary["incident_findings"] == {"SLOW_RESPONSE": 1, "NOT_ATTENDED": 1}
    assert summary["median_first_arrival_s"] == 1650.0  # 1500 and 1800
    assert summary["p90_first_arrival_s"] == 1800.0
    assert summary["over_target_rate"] == 0.5


def test_text_views_name_both_findings(db: Path) -> None:
    table = bwv(db, "report").stdout
    assert "25 min (P1 15 min) SLOW_RESPONSE" in table
    assert "not attended NOT_ATTENDED" in table
    shown = bwv(db, "incident", "INC-P1").stdout
    assert "Priority: P1   Seen in: 25 min (P1 15 min)" in shown
    assert "SLOW_RESPONSE: First officer O1 arrived 10:25:00, 25 min after the report" in shown


def test_by_team_counts_the_team_that_arrived_first(db: Path) -> None:
    data = _report(db, "--by", "team")
    groups = {g["group"]: g for g in data["groups"]}
    team_a = groups["Team A"]  # O1 reached both INC-P1 and INC-P3 first
    assert (team_a["arrivals_measured"], team_a["over_target"]) == (2, 1)
    assert (team_a["median_first_arrival_s"], team_a["p90_first_arrival_s"]) == (1650.0, 1800.0)
    assert team_a["over_target_rate"] == 0.5
    assert groups["Team B"]["arrivals_measured"] == 0  # O2 arrived second
    assert groups["(no officer attended)"]["not_attended"] == 1
    assert data["force"]["not_attended"] == 1
    months = {g["group"]: g for g in _report(db, "--by", "month")["groups"]}
    assert months["2024-02"]["not_attended"] == 1
    assert months["2024-01"]["over_target_rate"] == 1.0


@pytest.mark.parametrize("options", [(), ("--by", "team"), ("--by", "month")])
def test_arrival_figures_add_up_across_parallel_parts(
    db: Path, monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...]
) -> None:
    whole = bwv(db, "report", "--format", "json", *options)
    monkeypatch.setattr(parts, "MIN_PART_INCIDENTS", 1)
    monkeypatch.setattr(parts, "_usable_cores", lambda: 3)
    in_parts = bwv(db, "report", "--format", "json", *options)
    first, second = json.loads(whole.stdout), json.loads(in_parts.stdout)
    first.pop("generated_at"), second.pop("generated_at")
    assert first == second


def test_gmt_and_bst_times_are_measured_in_utc(tmp_path: Path) -> None:
    """Local London times: GMT in January, BST in July, and across the spring change."""
    engine = make_engine(tmp_path)
    incidents = tmp_path / "incidents.csv"
    incidents.write_text(
        HEADER + "WINTER,Domestic,2024-01-10T10:00,yes,7,P1\n"
        "SUMMER,Domestic,2024-07-10T10:00,yes,7,p1\n"
        "CHANGE,Domestic,2024-03-31T00:50,yes,7,P1\n"
    )
    attendance = tmp_path / "attendance.csv"
    attendance.write_text(
        "incident_ref,officer_id,arrived_at,left_at\n"
        "WINTER,O1,2024-01-10T10:10,2024-01-10T11:00\n"
        "SUMMER,O1,2024-07-10T10:20,2024-07-10T11:00\n"
        "CHANGE,O1,2024-03-31T02:05,2024-03-31T03:00\n"
    )
    import_file("incidents", incidents, engine=engine, actor="t")
    import_file("attendance", attendance, engine=engine, actor="t")
    report = build_report(engine=engine, period=Period())
    seen = {v.incident.incident_ref: v.response for v in report.verdicts}
    assert seen["WINTER"] is not None and seen["WINTER"].first_arrival_s == 600.0
    assert seen["SUMMER"] is not None and seen["SUMMER"].first_arrival_s == 1200.0
    assert seen["SUMMER"].priority == "P1"  # upper-cased on import
    # 00:50 GMT is 00:50Z; 02:05 BST is 01:05Z: 15 minutes, not 75.
    assert seen["CHANGE"] is not None and seen["CHANGE"].first_arrival_s == 900.0
    codes = {ref: [f.code for f in r.findings] for ref, r in seen.items() if r}
    assert codes == {"WINTER": [], "SUMMER": ["SLOW_RESPONSE"], "CHANGE": []}
    summer = seen["SUMMER"].findings[0].evidence
    assert summer["reported_at"].isoformat() == "2024-07-10T09:00:00"  # naive UTC


def test_unknown_priority_is_refused_with_file_line_and_nothing_imported(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    incidents = tmp_path / "incidents.csv"
    incidents.write_text(
        HEADER + "GOOD,Domestic,2024-01-10T10:00,yes,7,P2\n"
        "BAD,Domestic,2024-01-10T11:00,yes,7,P9\n"
        "ODD,Domestic,2024-01-10T12:00,yes,7,P 1\n"
    )
    with pytest.raises(ImportRejected) as caught:
        import_file("incidents", incidents, engine=engine, actor="t")
    assert caught.value.problems == [
        f"{incidents}:3: priority: unknown priority P9 (the policy sets targets for P1, P2, "
        "P3; leave empty for the default)",
        f"{incidents}:4: priority: 'P 1' is not a priority such as P1 (letters and digits)",
    ]
    with session_scope(engine) as session:
        assert session.exec(select(Incident)).all() == []
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "bwv.db"), "import", "incidents", str(incidents)]
    )
    assert result.exit_code == 2
    assert "3:" in result.stderr and "nothing was imported" in result.stderr


def test_a_policy_file_adds_priorities_and_changes_targets(db: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[first_arrival_target_s]\nP1 = 1800\nP4 = 86400\n")
    loaded = load_policy(policy)
    assert loaded.priorities == ["P1", "P2", "P3", "P4"]
    assert (loaded.arrival_target("P1"), loaded.arrival_target("X")) == (1800.0, 3600.0)
    detail = incident_detail("INC-P1", engine=make_engine(db.parent), actor="t", policy_path=policy)
    assert detail.verdict.response is not None and detail.verdict.response.findings == []
    # Existing CSVs without the column stay valid; old incidents are held to the default.
    assert Policy().arrival_target("") == 3600.0


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("[first_arrival_target_s]\nP1 = -5\n", "P1: must be between 1 and 604800, not -5"),
        ("[first_arrival_target_s]\n'P 1' = 60\n", "'P 1': a priority is letters, digits"),
        ("first_arrival_target_s = 60\n", "must be a table of priority = seconds"),
        ("protective_marking = ''\n", "protective_marking: must be one line of text"),
    ],
)
def test_bad_targets_are_refused(tmp_path: Path, table: str, problem: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(table)
    with pytest.raises(BwvError, match="policy file") as caught:
        load_policy(policy)
    assert problem in str(caught.value)


def test_nearest_rank_percentile() -> None:
    assert percentile([], 90) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([float(n) for n in range(1, 11)], 90) == 9.0
    assert percentile([float(n) for n in range(1, 12)], 90) == 10.0


def test_html_report_charts_time_to_be_seen(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert bwv(db, "report", "--format", "html", "--output", str(out)).exit_code == 1
    page = out.read_text()
    assert "<h2>Time to be seen</h2>" in page
    assert 'aria-label="By team"' in page and "median 25 min" in page
    assert "100% over target" in page and "SLOW_RESPONSE" in page and "NOT_ATTENDED" in page


def test_csv_and_groups_csv_gain_columns(db: Path) -> None:
    rows = bwv(db, "report", "--format", "csv").stdout.splitlines()
    assert rows[0].endswith(
        "priority,first_arrival_target_s,time_to_first_arrival_s,incident_findings,reviews"
    )
    assert any(row.endswith("P1,900.0,1500.0,SLOW_RESPONSE,") for row in rows)
    groups = bwv(db, "report", "--by", "team", "--format", "csv").stdout.splitlines()
    assert groups[0].endswith("over_target,over_target_rate,not_attended")


def test_incident_without_priority_is_held_to_the_default(db: Path) -> None:
    """An incident imported before priorities existed has '' and the default target."""
    engine = make_engine(db.parent)
    with session_scope(engine) as session:
        add_incident(session, "INC-OLD", "2024-04-01T10:00:00")
        add_attendance(session, "INC-OLD", "O1", "2024-04-01T12:00:00", "2024-04-01T12:30:00")
    entry = next(i for i in _report(db)["incidents"] if i["incident_ref"] == "INC-OLD")
    assert (entry["priority"], entry["first_arrival_target_s"]) == (None, 3600.0)
    assert entry["incident_findings"][0]["priority"] is None
    assert entry["incident_findings"][0]["over_by_s"] == 3600.0


def test_exactly_on_target_is_not_slow_and_arrival_before_report_counts() -> None:
    """Pure rule: over means more than the target; an officer already there waited 0 or less."""
    from datetime import datetime

    from compliance.facts import AttendanceFacts, IncidentEvidence, IncidentFacts
    from compliance.response import measure_response

    reported = datetime(2024, 1, 16, 10, 0)
    incident = IncidentFacts("I", "Domestic", reported, "", True, "7", "", "P1")

    def at(minutes: float) -> IncidentEvidence:
        arrived = reported + timedelta(minutes=minutes)
        return IncidentEvidence(incident, [AttendanceFacts("O1", arrived, arrived)])

    on_target = measure_response(at(15), Policy())
    assert (on_target.first_arrival_s, on_target.findings) == (900.0, [])
    assert [f.code for f in measure_response(at(15.01), Policy()).findings] == ["SLOW_RESPONSE"]
    early = measure_response(at(-2), Policy())
    assert (early.first_arrival_s, early.over_target) == (-120.0, False)

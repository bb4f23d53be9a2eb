"""Bad times from users and import files: the calendar's edges, clock-change gaps and overlaps.

Each is refused (or, for a time that happens twice, taken by the documented rule with a
warning) with one clear line, never a traceback; imports name FILE:LINE and write nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from compliance_helpers import catalogue_arg
from sqlalchemy import Engine
from sqlmodel import select

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import Incident

EDGES = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
HEADER = "incident_ref,type,reported_at,location,child_contact,child_ages,notes\n"


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWV_ACTOR", "tester")


def bwv(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", catalogue_arg(tmp_path), *args])


def import_incidents(tmp_path: Path, *times: str) -> Result:
    rows = "".join(f"INC-{n},Domestic,{t},Elm Road,yes,7,\n" for n, t in enumerate(times, 2))
    path = tmp_path / "incidents.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    return bwv(tmp_path, "import", "incidents", str(path))


def incidents(engine: Engine) -> list[Incident]:
    with session_scope(engine) as session:
        return list(session.exec(select(Incident).order_by(Incident.incident_ref)).all())


def assert_clean_refusal(result: Result) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception


@pytest.mark.parametrize("value", EDGES)
@pytest.mark.parametrize(
    "command", [["report"], ["clips"], ["audit", "log"]], ids=["report", "clips", "audit-log"]
)
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_edge_of_calendar_option_is_refused(
    tmp_path: Path, command: list[str], option: str, value: str
) -> None:
    result = bwv(tmp_path, *command, option, value)
    assert_clean_refusal(result)
    assert f"Invalid value for '{option}': time '{value}' is out of range" in result.stderr
    assert "from year 1900 to 2999" in result.stderr


def test_edge_of_calendar_in_an_import_names_file_and_line(tmp_path: Path, engine: Engine) -> None:
    result = import_incidents(tmp_path, "2024-01-16T07:10:00", *EDGES)
    assert_clean_refusal(result)
    path = tmp_path / "incidents.csv"
    assert f"{path}:3: reported_at: time '{EDGES[0]}' is out of range" in result.stderr
    assert f"{path}:4: reported_at: time '{EDGES[1]}' is out of range" in result.stderr
    assert "nothing was imported" in result.stderr
    assert incidents(engine) == []


def test_time_skipped_by_the_clocks_going_forward_is_refused(
    tmp_path: Path, engine: Engine
) -> None:
    result = import_incidents(tmp_path, "2024-01-16T07:10:00", "2024-03-31T01:30")
    assert_clean_refusal(result)
    assert (
        f"{tmp_path / 'incidents.csv'}:3: reported_at: local time 2024-03-31T01:30 does not "
        "exist in Europe/London" in result.stderr
    )
    assert incidents(engine) == []
    option = bwv(tmp_path, "clips", "--since", "2024-03-31T01:30")
    assert_clean_refusal(option)
    assert "local time 2024-03-31T01:30 does not exist in Europe/London" in option.stderr


def test_time_that_happens_twice_is_the_first_with_a_warning(
    tmp_path: Path, engine: Engine
) -> None:
    result = import_incidents(tmp_path, "2024-10-27T01:30", "2024-10-27T01:30+00:00")
    assert result.exit_code == 0, result.output
    warning = (
        f"Warning: {tmp_path / 'incidents.csv'}:2: reported_at: ambiguous local time "
        "2024-10-27T01:30 (it happens twice in Europe/London when the clocks go back) taken "
        "as the first, BST (+01:00); give an offset to choose"
    )
    assert result.stderr.splitlines() == [warning]  # the row with an offset is not ambiguous
    stored = [i.reported_at.replace(tzinfo=None).isoformat() for i in incidents(engine)]
    assert stored == ["2024-10-27T00:30:00", "2024-10-27T01:30:00"]


def test_ambiguous_option_time_warns_and_is_taken_as_summer_time(tmp_path: Path) -> None:
    result = bwv(tmp_path, "audit", "log", "--format", "json", "--since", "2024-10-27T01:30")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "Warning: --since: ambiguous local time 2024-10-27T01:30 (it happens twice in "
        "Europe/London when the clocks go back) taken as the first, BST (+01:00)"
    )
    exact = bwv(tmp_path, "clips", "--since", "2024-10-27T01:30+00:00")
    assert exact.exit_code == 0 and exact.stderr == ""

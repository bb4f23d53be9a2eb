"""The audit trail: `bwv audit verify` names the first tampered event; `bwv audit log` exports.

Tampering is done the way an intruder would: straight SQL on the SQLite file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main
from bwv.core.audit import GENESIS, event_hash, record
from bwv.core.db import HEAD_REVISION, get_engine, session_scope
from bwv.core.models import AuditEvent

PAYLOAD = "=cmd|' /C calc'!A0"


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(db), "--actor", "tester", *args])
    return result.exit_code, result.output


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A catalogue with five audit events by two actors about three clips."""
    path = tmp_path / "bwv.db"
    engine = get_engine(f"sqlite:///{path}")
    events = [
        ("alice", "ingest", ["clip:1"]),
        ("alice", "ingest", ["clip:2"]),
        ("bob", "show", ["clip:1"]),
        (PAYLOAD, "search", []),
        ("bob", "link", ["clip:12", "incident:INC-7"]),
    ]
    for actor, action, objects in events:
        with session_scope(engine) as session:
            record(session, actor=actor, action=action, object_ids=objects, details={"n": 1})
    return path


def sql(db: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement, params)


def rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT * FROM auditevent ORDER BY id").fetchall()


def head(db: Path, event_id: int) -> str:
    with sqlite3.connect(db) as connection:
        query = "SELECT hash FROM auditevent WHERE id = ?"
        return str(connection.execute(query, (event_id,)).fetchone()[0])


def rehash(db: Path, event_id: int) -> None:
    """Recomputes one event's hash after tampering, as a careful intruder would."""
    engine = get_engine(f"sqlite:///{db}")
    with session_scope(engine) as session:
        event = session.get(AuditEvent, event_id)
        assert event is not None
        new_hash = event_hash(event)
    sql(db, "UPDATE auditevent SET hash = ? WHERE id = ?", new_hash, event_id)


def test_intact_chain_passes_and_the_check_is_audited(db: Path) -> None:
    code, output = run(db, "audit", "verify")
    assert (code, output) == (0, f"audit chain intact: 5 events; head event 5 {head(db, 5)}\n")
    last = rows(db)[-1]
    assert last[2:6] == ("tester", "audit_verify", "", "ok")
    assert run(db, "audit", "verify")[1].startswith("audit chain intact: 6 events")


def test_empty_chain_is_intact(tmp_path: Path) -> None:
    assert run(tmp_path / "empty.db", "audit", "verify") == (0, "audit chain intact: 0 events\n")


def test_altered_event_is_named(db: Path) -> None:
    sql(db, "UPDATE auditevent SET actor = 'mallory' WHERE id = 3")
    assert run(db, "audit", "verify") == (
        1,
        "audit chain BROKEN at event 3 (altered): event 3 was altered: its content no longer "
        "matches its stored hash\n2 events verified before the break\n",
    )


def test_altered_details_and_time_are_caught(db: Path) -> None:
    sql(db, "UPDATE auditevent SET details = '{\"n\": 2}' WHERE id = 2")
    assert run(db, "audit", "verify")[1].startswith("audit chain BROKEN at event 2 (altered)")


def test_altered_and_rehashed_event_breaks_the_next_link(db: Path) -> None:
    sql(db, "UPDATE auditevent SET outcome = 'failed' WHERE id = 2")
    rehash(db, 2)
    assert run(db, "audit", "verify") == (
        1,
        "audit chain BROKEN at event 2 (broken): the chain breaks between events 2 and 3: "
        "event 2 was altered and its hash recomputed, or events after it were deleted and "
        "the rest renumbered\n2 events verified before the break\n",
    )


def test_deleted_event_is_named(db: Path) -> None:
    sql(db, "DELETE FROM auditevent WHERE id = 3")
    assert run(db, "audit", "verify") == (
        1,
        "audit chain BROKEN at event 3 (deleted): event 3 is missing: deleted before event 4\n"
        "2 events verified before the break\n",
    )


def test_deleted_first_events_are_named(db: Path) -> None:
    sql(db, "DELETE FROM auditevent WHERE id IN (1, 2)")
    code, output = run(db, "audit", "verify")
    assert code == 1
    assert output.startswith(
        "audit chain BROKEN at event 1 (deleted): event 1-2 is missing: deleted before event 3"
    )


def test_reordered_events_are_named(db: Path) -> None:
    # Events 3 and 4 swap places: their ids are hashed, so the first moved one is caught.
    sql(db, "UPDATE auditevent SET id = -3 WHERE id = 3")
    sql(db, "UPDATE auditevent SET id = 3 WHERE id = 4")
    sql(db, "UPDATE auditevent SET id = 4 WHERE id = -3")
    assert run(db, "audit", "verify")[1].startswith("audit chain BROKEN at event 3 (altered)")


def test_an_event_relinked_past_its_predecessor_is_reported_as_reordered(db: Path) -> None:
    sql(db, "UPDATE auditevent SET prev_hash = ? WHERE id = 4", head(db, 2))
    rehash(db, 4)
    assert run(db, "audit", "verify") == (
        1,
        "audit chain BROKEN at event 4 (reordered): event 4 follows event 2 in the chain, "
        "not event 3: events were reordered\n3 events verified before the break\n",
    )


def test_corrupted_field_is_reported_without_a_traceback(db: Path) -> None:
    sql(db, "UPDATE auditevent SET occurred_at = 'yesterday' WHERE id = 4")
    code, output = run(db, "audit", "verify")
    assert code == 1
    assert output.startswith("audit chain BROKEN at event 4 (unreadable): event 4 cannot be read")
    assert "Traceback" not in output


def test_cut_tail_is_caught_only_with_an_anchor(db: Path) -> None:
    anchor = head(db, 5)
    assert run(db, "audit", "verify", "--anchor", anchor)[0] == 0
    sql(db, "DELETE FROM auditevent WHERE id >= 5")
    assert run(db, "audit", "verify", "--anchor", anchor) == (
        1,
        f"audit chain BROKEN at event 4 (anchor): no event has the anchor hash {anchor}: the "
        "trail was rewritten or cut short after that hash was noted\n"
        "4 events verified before the break\n",
    )
    assert run(db, "audit", "verify")[1].startswith("audit chain intact: 5 events")


def test_a_clock_step_back_is_a_warning_not_a_break(db: Path) -> None:
    sql(db, "UPDATE auditevent SET occurred_at = '2000-01-01 00:00:00.000000' WHERE id = 3")
    rehash(db, 3)
    sql(db, "UPDATE auditevent SET prev_hash = ? WHERE id = 4", head(db, 3))
    rehash(db, 4)
    sql(db, "UPDATE auditevent SET prev_hash = ? WHERE id = 5", head(db, 4))
    rehash(db, 5)
    code, output = run(db, "audit", "verify")
    assert code == 0
    assert output.startswith(
        "warning: event 3 is dated before event 2 (clock change or reordering)"
    )


def test_verify_json_reports_the_problem(db: Path) -> None:
    sql(db, "DELETE FROM auditevent WHERE id = 2")
    code, output = run(db, "audit", "verify", "--json")
    report = json.loads(output)
    assert code == 1
    assert report["ok"] is False and report["events"] == 1
    assert report["problem"]["event_id"] == 2 and report["problem"]["kind"] == "deleted"


def test_log_csv_defuses_formula_payloads(db: Path) -> None:
    code, output = run(db, "audit", "log", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(output)))
    assert code == 0 and len(table) == 5
    assert table[3]["actor"] == "'" + PAYLOAD
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in table for cell in row.values())
    assert table[0]["prev_hash"] == GENESIS


def test_log_json_lets_anyone_recheck_every_hash(db: Path) -> None:
    code, output = run(db, "audit", "log", "--format", "json")
    events = json.loads(output)["events"]
    assert code == 0 and [e["id"] for e in events] == [1, 2, 3, 4, 5]
    for event in events:
        body = {k: v for k, v in event.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == event["hash"]
    assert events[3]["actor"] == PAYLOAD


def test_log_filters_by_actor_object_and_time(db: Path) -> None:
    def ids(*args: str) -> list[int]:
        output = run(db, "audit", "log", "--format", "json", *args)[1]
        return [e["id"] for e in json.loads(output)["events"]]

    assert ids("--actor", "bob") == [3, 5]
    assert ids("--object", "clip:1") == [1, 3]
    assert ids("--object", "INC-7") == [5]
    assert ids("--object", "clip:12") == [5]
    assert ids("--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z") == []
    assert ids("--since", "2000-01-01T00:00:00Z") == list(range(1, 11))  # 5 + 5 reads


def test_reading_the_log_is_audited_after_the_export(db: Path) -> None:
    output = run(db, "audit", "log", "--format", "json", "--actor", "alice")[1]
    assert json.loads(output)["count"] == 2
    last = rows(db)[-1]
    assert last[0] == 6 and last[3] == "audit_log" and last[2] == "tester"
    assert json.loads(str(last[6])) == {"actor": "alice", "count": 2, "format": "json"}
    assert run(db, "audit", "verify")[0] == 0


def test_bad_time_is_a_usage_error(db: Path) -> None:
    code, output = run(db, "audit", "log", "--since", "last tuesday")
    assert code == 2 and "not an ISO 8601 time" in output


def test_catalogue_is_at_the_append_only_revision(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        version = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert version == HEAD_REVISION == "0012"

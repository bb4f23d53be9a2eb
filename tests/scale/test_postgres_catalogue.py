"""PostgreSQL as a catalogue, quick checks on a throw-away cluster (no media, no model):
snapshots shared by a report's parts, the audit trigger, 64-bit sizes, and one clear line
for a server that cannot be used or a queue asked of SQLite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from bwv.cli import main
from bwv.core.db import get_engine, read_scope, session_scope, shared_snapshot
from bwv.core.models import Incident

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"


def test_report_parts_share_one_snapshot(postgres_url: str) -> None:
    """Inside `shared_snapshot`, a write committed meanwhile is not seen, by this
    process nor by a forked one (the report's parallel parts)."""
    from compliance_helpers import add_incident

    engine = get_engine(postgres_url)
    counted = "SELECT count(*) FROM incident"
    with shared_snapshot(engine):
        with session_scope(engine) as session:
            add_incident(session, "INC-NEW", "2024-01-16T10:00:00")
        with read_scope(engine) as session:
            assert session.execute(text(counted)).scalar_one() == 0
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the forked part: its own connection, the same snapshot
            engine.dispose(close=False)
            with read_scope(engine) as session:
                os.write(write, str(session.execute(text(counted)).scalar_one()).encode())
            os._exit(0)
        os.waitpid(child, 0)
        assert os.read(read, 10) == b"0"
    with read_scope(engine) as session:
        assert session.get(Incident, "INC-NEW") is not None


def test_unreachable_database_and_wrong_password_are_one_line(postgres) -> None:  # type: ignore[no-untyped-def]
    from postgres_helpers import free_port

    port = free_port()
    nowhere = f"postgresql://bwv:bwv@127.0.0.1:{port}/bwv"
    result = CliRunner().invoke(main, ["--db", nowhere, "clips"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output
    wrong = postgres.url("postgres", password="not-the-password")
    result = CliRunner().invoke(main, ["--db", wrong, "clips"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and f"127.0.0.1:{postgres.port}" in result.stderr
    assert "password" in result.stderr and "not-the-password" not in result.stderr


def test_queue_and_worker_on_sqlite_say_what_to_set(tmp_path: Path) -> None:
    db = tmp_path / "bwv.db"
    for args in (["ingest", "--queue", str(SAMPLES)], ["worker"], ["queue", "status"]):
        result = CliRunner().invoke(main, ["--db", str(db), *args])
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "BWV_DATABASE_URL" in lines[0] and "postgresql://" in lines[0]


def test_the_audit_trail_refuses_changes_on_postgres(postgres_url: str) -> None:
    from bwv.core.audit import record
    from bwv.core.errors import CatalogueError

    engine = get_engine(postgres_url)
    with session_scope(engine) as session:
        record(session, actor="alice", action="search")
    for statement in ("UPDATE auditevent SET actor = 'mallory'", "DELETE FROM auditevent"):
        with pytest.raises(CatalogueError, match="append-only"), session_scope(engine) as s:
            s.execute(text(statement))
    with read_scope(engine) as session:
        assert session.execute(text("SELECT actor FROM auditevent")).scalars().all() == ["alice"]


def test_a_clip_over_two_gibibytes_fits(postgres_url: str) -> None:
    from compliance_helpers import add_clip

    engine = get_engine(postgres_url)
    with session_scope(engine) as session:
        clip_id = add_clip(session, serial="CAM1", start="2024-01-16T10:00:00")
        session.execute(
            text("UPDATE clip SET size_bytes = :size WHERE id = :id"),
            {"size": 5 * 2**30, "id": clip_id},
        )
    with read_scope(engine) as session:
        size = session.execute(text("SELECT size_bytes FROM clip")).scalar_one()
    assert size == 5 * 2**30


def test_a_worker_takes_every_queue_by_default_and_status_lists_them(postgres_url: str) -> None:
    from bwv.cli.queue import worker_command
    from bwv.services.queue import QUEUES

    default = next(p.default for p in worker_command.params if p.name == "queues")
    assert tuple(str(default).split(",")) == QUEUES and "redact" in QUEUES
    result = CliRunner().invoke(main, ["--db", postgres_url, "queue", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert [row["queue"] for row in json.loads(result.output)] == list(QUEUES)

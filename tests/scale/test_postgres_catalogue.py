"""PostgreSQL as a catalogue, quick checks on a throw-away cluster (no media, no model):
snapshots shared by a report's parts, the audit trigger, 64-bit sizes, one clear line
for a server that cannot be used or a queue asked of SQLite, and the same JSON report as
SQLite's from the same catalogue (PostgreSQL reads some figures by other queries)."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench_scripts import bench_module
from click.testing import CliRunner
from compliance_helpers import relink
from sqlalchemy import Engine, select, text

from bwv.cli import main
from bwv.core.db import database_url, get_engine, read_scope, session_scope, shared_snapshot
from bwv.core.models import Clip, Incident, TranscriptSegment, VoiceReview
from compliance import parts
from compliance.output import ReportRequest, produce_report

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_media"


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


REVIEWED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _voices(engine: Engine) -> None:
    """Every third clip gets speech by someone other than the wearer (one stretch above
    the threshold, two under it), every fiftieth a person's review: the figures PostgreSQL
    reads through one lateral subquery and SQLite through three."""
    with session_scope(engine) as session:
        clip_ids = session.execute(select(Clip.id).order_by(Clip.id)).scalars().all()
        for n, clip_id in enumerate(clip_ids[::3]):
            for start, seconds, p in (
                (3.5, 2.25, 0.7 + n % 3 / 10),
                (9.0, 1.5, 0.3),
                (12.0, 4.0, 0.5),
            ):
                session.add(TranscriptSegment(
                    clip_id=clip_id, start_s=start + n % 7, end_s=start + n % 7 + seconds,
                    text="words", confidence=-0.2, child_probability=p, speech_s=seconds * 0.8,
                    speaker=1, speaker_child_probability=p if n % 2 else None, wearer=False,
                ))  # fmt: skip
        for n, clip_id in enumerate(clip_ids[::50]):
            heard = n % 2 == 0
            session.add(VoiceReview(
                clip_id=clip_id, decision="heard" if heard else "not_heard",
                start_s=2.0 if heard else None, end_s=5.5 if heard else None,
                reason="listened", actor="inspector", decided_at=REVIEWED + timedelta(minutes=n),
            ))  # fmt: skip


def _json_report(engine: Engine) -> dict[str, object]:
    _, rendered = produce_report(ReportRequest(fmt="json"), engine=engine)
    data = json.loads(rendered)
    data.pop("generated_at")
    return dict(data)


def test_the_json_report_is_the_same_on_sqlite_and_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One generated catalogue (other voices, reviews, hundreds of clips to suggest
    segments from) in both databases: the same report, whole, and in parts and chunks."""
    bench = bench_module("report")
    sizes = bench.Sizes(incidents=1_500, clips=4_500, officers=40)
    engines = [get_engine(database_url(str(tmp_path / "bwv.db"))), get_engine(postgres_url)]
    for engine in engines:
        bench.generate(engine, sizes, random.Random(3))
        _voices(engine)
        relink(engine)
    sqlite, postgres = (_json_report(engine) for engine in engines)
    assert sqlite == postgres
    candidates = [r for i in sqlite["incidents"] for r in i["reasons"] if "candidates" in r]  # type: ignore[attr-defined]
    assert len({c for r in candidates for c in r["clip_ids"]}) > 500  # more than one batch
    assert any("other_voice" in r for r in candidates)
    assert any(i["reviews"] for i in sqlite["incidents"])  # type: ignore[attr-defined]
    monkeypatch.setattr(parts, "MIN_PART_INCIDENTS", 400)
    monkeypatch.setattr(parts, "CHUNK_INCIDENTS", 150)
    monkeypatch.setattr(parts, "_usable_cores", lambda: 3)
    assert _json_report(engines[1]) == sqlite


def test_connections_run_without_jit_in_this_process_and_a_forked_part(postgres_url: str) -> None:
    """JIT compiling a report chunk's query took longer than running it: every connection
    bwv opens has it off, a forked part's new connection too, while the server's own
    default stays on."""
    engine = get_engine(postgres_url)
    jit = "SHOW jit"
    with read_scope(engine) as session:
        assert session.execute(text(jit)).scalar_one() == "off"
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        engine.dispose(close=False)
        with session_scope(engine) as session:
            os.write(write, session.execute(text(jit)).scalar_one().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 10) == b"off"
    import psycopg

    with psycopg.connect(postgres_url.replace("+psycopg", "")) as plain:
        assert plain.execute(jit).fetchone() == ("on",)

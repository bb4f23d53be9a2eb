"""Audited views written by group commit (`audit.record_committed`).

Twenty people viewing pages at once share one transaction for their audit events. The
chain must stay whole and in order, every caller must return only once its own event is
committed, and a failed write must fail every caller in it: no view goes unaudited.
Real SQLite and PostgreSQL catalogues, real threads.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select

from bwv.core import audit
from bwv.core.db import read_scope, session_scope
from bwv.core.errors import CatalogueError
from bwv.core.models import AuditEvent
from bwv.custody.chain import walk_chain

THREADS = 24


def _events(engine: Engine) -> list[tuple[int | None, str, str]]:
    """(id, actor, object ids) of every event, in chain order."""
    with read_scope(engine) as session:
        found = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        return [(e.id, e.actor, e.object_ids) for e in found]


def _in_trail(engine: Engine, object_id: str) -> int:
    with read_scope(engine) as session:
        found = session.exec(select(AuditEvent).where(AuditEvent.object_ids == object_id))
        return len(found.all())


def _at_once(engine: Engine, work: object) -> dict[int, BaseException | None]:
    """Runs `work(n)` in THREADS threads released together; what each raised, or None."""
    start = threading.Barrier(THREADS)
    outcome: dict[int, BaseException | None] = {}

    def one(n: int) -> None:
        start.wait()
        try:
            work(n)  # type: ignore[operator]
            outcome[n] = None
        except BaseException as exc:
            outcome[n] = exc

    threads = [threading.Thread(target=one, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


def test_views_at_once_each_committed_before_returning_and_chained(engine: Engine) -> None:
    seen_after_return: dict[int, int] = {}

    def view(n: int) -> None:
        if n % 4 == 0:  # an ordinary audited action meanwhile, in its own transaction
            with session_scope(engine) as session:
                audit.record(session, actor=f"u{n}", action="show", object_ids=[f"clip:{n}"])
        else:
            audit.record_committed(engine, actor=f"u{n}", action="show", object_ids=[f"clip:{n}"])
        seen_after_return[n] = _in_trail(engine, f"clip:{n}")  # a fresh reader sees it

    outcome = _at_once(engine, view)
    assert outcome == dict.fromkeys(range(THREADS))
    assert seen_after_return == dict.fromkeys(range(THREADS), 1)
    events = _events(engine)
    assert sorted(e[2] for e in events) == sorted(f"clip:{n}" for n in range(THREADS))
    assert [e[0] for e in events] == list(range(1, THREADS + 1))
    assert all(actor == f"u{objects.split(':')[1]}" for _, actor, objects in events)
    report = walk_chain(engine)
    assert report.ok and report.events == THREADS


_REFUSE_ONE_ACTOR = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON auditevent WHEN NEW.actor = 'refused' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE INSERT ON auditevent FOR EACH ROW "
        "WHEN (NEW.actor = 'refused') EXECUTE FUNCTION refuse()",
    ],
}


def test_a_failed_write_fails_every_caller_in_it_and_none_goes_unaudited(
    engine: Engine,
) -> None:
    with session_scope(engine) as session:  # the catalogue refuses one actor's events
        for statement in _REFUSE_ONE_ACTOR[engine.dialect.name]:
            session.execute(text(statement))
    with pytest.raises(CatalogueError, match="audit event was not written"):
        audit.record_committed(engine, actor="refused", action="show", object_ids=["clip:0"])
    assert _events(engine) == []

    def view(n: int) -> None:
        actor = "refused" if n == 5 else f"u{n}"
        audit.record_committed(engine, actor=actor, action="show", object_ids=[f"clip:{n}"])

    outcome = _at_once(engine, view)
    assert isinstance(outcome[5], CatalogueError)
    for n, raised in outcome.items():  # returned normally exactly when its event is there
        assert (raised is None) == (_in_trail(engine, f"clip:{n}") == 1), n
        assert raised is None or isinstance(raised, CatalogueError)
    assert walk_chain(engine).ok
    audit.record_committed(engine, actor="u99", action="show", object_ids=["clip:99"])
    assert _in_trail(engine, "clip:99") == 1 and walk_chain(engine).ok

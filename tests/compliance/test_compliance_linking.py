"""Linking clips to attended incidents: window edges, ambiguity, officers, decisions."""

from __future__ import annotations

import pytest
from compliance_helpers import (
    add_assignment,
    add_attendance,
    add_clip,
    add_incident,
    add_officer,
    relink,
    standard_incident,
)
from sqlalchemy import Engine
from sqlmodel import select

from bwv.core.db import session_scope
from bwv.core.errors import BwvError, NotFound
from bwv.core.models import AuditEvent, ClipLink, LinkDecision
from bwv.services.compliance import decide_link
from compliance.facts import Period
from compliance.policy import Policy
from compliance.report import build_report


def links(engine: Engine) -> dict[int, list[tuple[str, bool, str]]]:
    """clip id -> [(incident, ambiguous, source)]."""
    found: dict[int, list[tuple[str, bool, str]]] = {}
    with session_scope(engine) as session:
        for link in session.exec(select(ClipLink).order_by(ClipLink.incident_ref)):
            found.setdefault(link.clip_id, []).append(
                (link.incident_ref, link.ambiguous, link.source)
            )
    return found


@pytest.mark.parametrize(
    ("start", "seconds", "linked"),
    [
        ("2024-01-16T09:54:40", 20, True),  # ends 09:55:00 = arrival - 300 s
        ("2024-01-16T09:54:39", 20, False),  # ends one second before the window
        ("2024-01-16T10:15:00", 20, True),  # starts at leaving + 300 s
        ("2024-01-16T10:15:01", 20, False),  # one second after the window
    ],
)
def test_link_window_edges(engine: Engine, start: str, seconds: int, linked: bool) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start=start, seconds=seconds)
    relink(engine)
    assert (clip in links(engine)) is linked


def test_policy_window_widens_linking(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:20:00")
    relink(engine)
    assert clip not in links(engine)
    relink(engine, Policy(link_post_departure_s=900))
    assert clip in links(engine)


def test_greatest_overlap_wins_and_is_marked_ambiguous(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_incident(session, "INC-2", "2024-01-16T10:00:00")
        add_attendance(session, "INC-2", "O1", "2024-01-16T10:14:00", "2024-01-16T10:30:00")
        # 10:08-10:12: INC-1's window (to 10:15) covers it all; INC-2's starts at 10:09.
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:08:00", seconds=240)
    summary = relink(engine)
    assert links(engine)[clip] == [("INC-1", True, "auto")]
    assert summary.ambiguous == 1


def test_single_candidate_is_not_ambiguous(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00")
    relink(engine)
    assert links(engine)[clip] == [("INC-1", False, "auto")]


def test_sidecar_officer_wins_over_the_camera_assignment(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_officer(session, "O2")
        add_incident(session, "INC-2", "2024-01-16T10:00:00")
        add_attendance(session, "INC-2", "O2", "2024-01-16T10:00:00", "2024-01-16T10:10:00")
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00", officer="O2")
    relink(engine)
    assert links(engine)[clip] == [("INC-2", False, "auto")]


def test_unassigned_clip_is_reported_not_linked(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_assignment(session, "CAM9", "O1", "2024-01-01T00:00:00", "2024-01-10T00:00:00")
        clip = add_clip(session, serial="CAM9", start="2024-01-16T10:01:00")
    summary = relink(engine)
    assert summary.unassigned == 1 and clip not in links(engine)
    report = build_report(engine=engine, period=Period())
    assert [c.clip_id for c in report.unassigned] == [clip]


def test_failed_clip_links_through_its_file_name_time(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00", status="failed")
    relink(engine)
    assert links(engine)[clip] == [("INC-1", False, "auto")]


def test_recomputation_is_idempotent_and_drops_stale_links(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00")
    first = relink(engine)
    again = relink(engine)
    assert (first.added, again.added, again.removed, again.changed) == (1, 0, 0, 0)
    with session_scope(engine) as session:
        from bwv.core.models import Attendance

        for row in session.exec(select(Attendance)):
            session.delete(row)
    assert relink(engine).removed == 1
    assert clip not in links(engine)


def test_manual_link_and_unlink_survive_recomputation(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_incident(session, "INC-2", "2024-01-16T10:00:00")
        add_attendance(session, "INC-2", "O1", "2024-01-16T10:14:00", "2024-01-16T10:30:00")
        ambiguous = add_clip(session, serial="CAM1", start="2024-01-16T10:08:00", seconds=240)
        stray = add_clip(session, serial="CAM1", start="2024-01-16T15:00:00")
    relink(engine)
    decide_link(
        str(ambiguous), "INC-1", action="unlink", reason="wrong job", engine=engine, actor="sgt"
    )
    decide_link(
        str(stray), "INC-1", action="link", reason="late upload", engine=engine, actor="sgt"
    )
    relink(engine)
    relink(engine)
    found = links(engine)
    # Unlinked from the best match, the clip falls to the only other candidate.
    assert found[ambiguous] == [("INC-2", False, "auto")]
    assert found[stray] == [("INC-1", False, "manual")]
    with session_scope(engine) as session:
        decisions = session.exec(select(LinkDecision)).all()
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert {(d.action, d.actor, d.reason) for d in decisions} == {
        ("unlink", "sgt", "wrong job"),
        ("link", "sgt", "late upload"),
    }
    assert actions.count("link") == 1 and actions.count("unlink") == 1


def test_a_later_decision_replaces_the_earlier_one(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00")
    relink(engine)
    result = decide_link(str(clip), "INC-1", action="unlink", reason="x", engine=engine, actor="a")
    assert (result.was_linked, result.now_linked) == (True, False)
    result = decide_link(str(clip), "INC-1", action="link", reason="y", engine=engine, actor="b")
    assert result.now_linked
    with session_scope(engine) as session:
        assert len(session.exec(select(LinkDecision)).all()) == 1


def test_decisions_refuse_unknown_clip_incident_and_empty_reason(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00")
    with pytest.raises(NotFound, match="no clip '999'"):
        decide_link("999", "INC-1", action="link", reason="r", engine=engine, actor="a")
    with pytest.raises(NotFound, match="no incident 'INC-404'"):
        decide_link(str(clip), "INC-404", action="link", reason="r", engine=engine, actor="a")
    with pytest.raises(BwvError, match="give a reason"):
        decide_link(str(clip), "INC-1", action="link", reason="  ", engine=engine, actor="a")


def test_clip_by_file_name(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T15:00:00")
        from bwv.core.models import Clip

        name = session.get(Clip, clip).file_name  # type: ignore[union-attr]
    result = decide_link(name, "INC-1", action="link", reason="r", engine=engine, actor="a")
    assert result.clip_id == clip and result.now_linked

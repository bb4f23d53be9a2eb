"""The inspectors' actions: import, link and unlink, view an incident, take a report.

Each function is one user action: it owns the transaction and writes the action's one
audit event, calling `compliance` functions that work in the session they are given.
A refused import is still an attempt to collect data, so it is audited too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bwv.core import audit
from bwv.core.db import session_scope
from bwv.core.errors import ImportRejected, NotFound
from bwv.core.models import Incident
from bwv.core.timeutil import checked_zone
from compliance import decisions, importer
from compliance.facts import Period
from compliance.linking import recompute_links
from compliance.output import ReportRequest, produce_report
from compliance.policy import load_policy
from compliance.report import (
    IncidentDetail,
    Report,
    build_report,
    judge_incident,
    report_details,
)


def import_file(kind: str, path: Path, *, engine: Engine, actor: str) -> importer.ImportResult:
    """Validates `path` completely, then upserts it and relinks in one audited transaction."""
    try:
        table = importer.read_import(kind, path)
        with session_scope(engine) as session:
            result = importer.import_table(session, kind, table, path)
            details = importer.import_details(result, path)
            audit.record(
                session, actor=actor, action="import", object_ids=[f"file:{path.name}"],
                details=details,
            )  # fmt: skip
        return result
    except ImportRejected as exc:
        _audit_rejection(kind, path, exc, engine=engine, actor=actor)
        raise


def _audit_rejection(
    kind: str, path: Path, exc: ImportRejected, *, engine: Engine, actor: str
) -> None:
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor,
            action="import",
            object_ids=[f"file:{path.name}"],
            outcome="rejected",
            details={"kind": kind, "file": str(path), "problems": exc.total},
        )


def decide_link(
    clip: str, incident_ref: str, *, action: str, reason: str, engine: Engine, actor: str
) -> decisions.DecisionResult:
    """A person's link or unlink of a clip and an incident, with who and why."""
    with session_scope(engine) as session:
        result = decisions.decide_link(
            session, clip, incident_ref, action=action, reason=reason, actor=actor
        )
        audit.record(
            session,
            actor=actor,
            action=action,
            object_ids=[f"clip:{result.clip_id}", f"incident:{incident_ref}"],
            details={"reason": result.reason, "was_linked": result.was_linked},
        )
    return result


def incident_detail(
    ref: str, *, engine: Engine, actor: str, policy_path: Path | None = None
) -> IncidentDetail:
    """One incident's attendance, links, verdict and findings; viewing it is audited."""
    checked_zone()
    policy = load_policy(policy_path)
    with session_scope(engine) as session:
        if session.get(Incident, ref) is None:
            raise NotFound(f"no incident {ref!r} in the catalogue")
        if policy_path is not None:
            recompute_links(session, policy=policy)
        detail = judge_incident(session, ref, policy)
        audit_incident_view(session, detail, actor=actor)
    return detail


def audit_incident_view(session: Session, detail: IncidentDetail, *, actor: str) -> None:
    """Consulting an incident (its facts, verdict and the child's words) is audited."""
    audit.record(session, actor=actor, **_incident_view(detail))


def audit_incident_view_now(engine: Engine, detail: IncidentDetail, *, actor: str) -> None:
    """The same event, committed on its own (with any others waiting) before returning."""
    audit.record_committed(engine, actor=actor, **_incident_view(detail))


def _incident_view(detail: IncidentDetail) -> dict[str, Any]:
    ref = detail.verdict.incident.incident_ref
    return {"action": "incident_view", "object_ids": [f"incident:{ref}"],
            "details": {"verdict": detail.verdict.verdict}}  # fmt: skip


def report(request: ReportRequest, *, engine: Engine, actor: str) -> tuple[Report, bytes]:
    """The report `bwv report` asks for, rendered; giving it out is audited."""
    built, rendered = produce_report(request, engine=engine)
    audit_report(built, engine=engine, actor=actor)
    return built, rendered


def verdicts_report(*, engine: Engine, actor: str, period: Period | None = None) -> Report:
    """Every incident's verdict object in `period` (default all), for the renderings that
    need them (HTML, CSV); giving it out is audited."""
    built = build_report(engine=engine, period=period or Period())
    audit_report(built, engine=engine, actor=actor)
    return built


def audit_report(built: Report, *, engine: Engine, actor: str) -> None:
    with session_scope(engine) as session:
        audit.record(session, actor=actor, action="report", details=report_details(built))

"""Chain-of-custody actions: verify files, verify and read the audit trail, export.

Each is one user action that owns its transactions and records its audit event. Hashing
runs outside any transaction: on SQLite every transaction holds the write lock, and
ingest must not stall behind a verification.

The disclosure folder holds the incident's verdict (compliance) and each clip's
transcript (the catalogue): custody knows neither, so they are handed to it here, read
in the export's own transaction and not audited one by one. An export is one user
action and writes one `export` event.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bwv.core import audit
from bwv.core.db import session_scope
from bwv.core.errors import BwvError
from bwv.core.models import Clip
from bwv.custody.chain import (
    ChainReport,
    LogFilter,
    chain_details,
    check_anchor,
    filter_details,
    render_csv,
    render_json,
    select_events,
    walk_chain,
)
from bwv.custody.files import (
    DisclosureSources,
    ExportResult,
    VerifyReport,
    check_target,
    export_incident,
    load_targets,
    settle_staged_exports,
    verify_details,
)
from bwv.services.catalogue import transcript_text
from compliance.policy import Policy, load_policy
from compliance.report import incident_json, judge_incident


def export(
    incident_ref: str, *, to: Path, engine: Engine, actor: str, derivatives_only: bool = False
) -> ExportResult:
    """Writes the incident's disclosure folder, judged and transcribed by the standing policy."""
    policy = load_policy()
    return export_incident(
        incident_ref,
        to=to,
        engine=engine,
        actor=actor,
        sources=_sources(policy),
        derivatives_only=derivatives_only,
    )


def _sources(policy: Policy) -> DisclosureSources:
    def verdict(session: Session, ref: str) -> dict[str, Any]:
        detail = judge_incident(session, ref, policy)
        return incident_json(detail.verdict, detail.officers)

    def transcript(session: Session, clip: Clip, fmt: str) -> str:
        return transcript_text(session, clip, fmt, policy.child_probability_threshold)

    return DisclosureSources(verdict=verdict, transcript=transcript)


def verify_clips(
    references: list[str], *, engine: Engine, actor: str, all_clips: bool = False
) -> VerifyReport:
    """Re-hashes the named clips (or every clip) and records the outcome as `verify`."""
    if not references and not all_clips:
        raise BwvError("name the clips to verify, or use --all")
    with session_scope(engine) as session:
        targets = load_targets(session, references, all_clips=all_clips)
    report = VerifyReport([check_target(t) for t in targets])
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor,
            action="verify",
            object_ids=[f"clip:{c.clip_id}" for c in report.checks],
            outcome="ok" if report.ok else "mismatch",
            details=verify_details(report),
        )
    return report


def verify_chain(*, engine: Engine, actor: str, anchor: str | None = None) -> ChainReport:
    """Walks the whole trail, then records the check itself as an `audit_verify` event."""
    anchor = None if anchor is None else check_anchor(anchor)
    # Settled first, so that the walk and its head hash include the settling events.
    settled = settle_staged_exports(engine=engine, actor=actor)
    walked = walk_chain(engine, anchor=anchor)
    report = replace(walked, warnings=[*settled, *walked.warnings])
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor,
            action="audit_verify",
            outcome="ok" if report.ok else "broken",
            details=chain_details(report, anchor),
        )
    return report


def export_log(log_filter: LogFilter, fmt: str, *, engine: Engine, actor: str) -> tuple[str, int]:
    """Renders the selected events, then records the disclosure (`audit_log`) itself."""
    events = select_events(engine, log_filter)
    text = render_csv(events) if fmt == "csv" else render_json(events)
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor,
            action="audit_log",
            details={"format": fmt, "count": len(events), **filter_details(log_filter)},
        )
    return text, len(events)

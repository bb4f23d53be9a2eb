"""Disclosure export composed from custody, compliance and the catalogue's transcripts.

The disclosure folder holds the incident's verdict (compliance) and each clip's
transcript (the catalogue): custody knows neither, so they are handed to it here, read
in the export's own transaction and not audited one by one. An export is one user
action and writes one `export` event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bwv.core.models import Clip
from bwv.custody.files import DisclosureSources, ExportResult, export_incident
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

"""Ingest, then relink: new clips are matched to incidents once per batch."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from bwv.core.db import session_scope
from compliance.linking import LinkSummary, recompute_links
from ingest.worker import IngestOptions, IngestSummary, OnProgress, ingest_paths


def ingest(
    paths: list[Path],
    *,
    engine: Engine,
    actor: str,
    options: IngestOptions,
    on_progress: OnProgress | None = None,
) -> IngestSummary:
    """Catalogues the files under `paths`, each in its own audited transaction, then relinks."""
    summary = ingest_paths(
        paths, engine=engine, actor=actor, options=options, on_progress=on_progress
    )
    relink(engine)
    return summary


def relink(engine: Engine) -> LinkSummary:
    with session_scope(engine) as session:
        return recompute_links(session)

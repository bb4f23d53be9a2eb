"""Integrity of the originals: re-hashing them on demand (`bwv verify`).

A court needs to know that the file shown today is the file catalogued then. Each check
re-reads the original (and its evidence-store copy, when there is one) and compares the
SHA-256 with the catalogued one. Hashing can take minutes, so it runs outside any
transaction: on SQLite every transaction holds the write lock, and ingest must not stall
behind a verification. Every run is audited, whatever it finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bwv.audit import record
from bwv.db import session_scope
from bwv.errors import BwvError
from bwv.models import Clip, Derivative
from ingest.store import sha256_file

OK, MODIFIED, MISSING, UNREADABLE = "ok", "modified", "missing", "unreadable"


@dataclass(frozen=True)
class Target:
    """What a check needs from the catalogue, read before any hashing starts."""

    clip_id: int
    file_name: str
    path: str
    sha256: str
    store_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileCheck:
    path: str
    status: str  # ok | modified | missing | unreadable
    actual_sha256: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ClipCheck:
    clip_id: int
    file_name: str
    expected_sha256: str
    original: FileCheck
    store_copies: list[FileCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status == OK for c in [self.original, *self.store_copies])


@dataclass(frozen=True)
class VerifyReport:
    checks: list[ClipCheck]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def counts(self) -> dict[str, int]:
        tally = {OK: 0, MODIFIED: 0, MISSING: 0, UNREADABLE: 0}
        for check in self.checks:
            tally[check.original.status] += 1
        return tally


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
        record(
            session,
            actor=actor,
            action="verify",
            object_ids=[f"clip:{c.clip_id}" for c in report.checks],
            outcome="ok" if report.ok else "mismatch",
            details=_audit_details(report),
        )
    return report


def load_targets(session: Session, references: list[str], *, all_clips: bool) -> list[Target]:
    from ingest.catalogue import find_clip

    if all_clips:
        clips = list(session.exec(select(Clip).order_by(col(Clip.id))).all())
    else:
        clips = list({c.id: c for c in (find_clip(session, r) for r in references)}.values())
    return [_target(session, clip) for clip in clips]


def _target(session: Session, clip: Clip) -> Target:
    assert clip.id is not None
    query = select(Derivative.path).where(
        Derivative.clip_id == clip.id, Derivative.kind == "store_copy"
    )
    stored = tuple(p for p in session.exec(query).all() if p)
    return Target(clip.id, clip.file_name, clip.path, clip.sha256, stored)


def check_target(target: Target) -> ClipCheck:
    return ClipCheck(
        clip_id=target.clip_id,
        file_name=target.file_name,
        expected_sha256=target.sha256,
        original=check_file(Path(target.path), target.sha256),
        store_copies=[check_file(Path(p), target.sha256) for p in target.store_paths],
    )


def check_file(path: Path, expected: str) -> FileCheck:
    """One file against its catalogued hash; never raises for a file that cannot be read."""
    if not path.is_file():
        return FileCheck(str(path), MISSING, reason="no such file")
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return FileCheck(str(path), UNREADABLE, reason=exc.strerror or str(exc))
    return FileCheck(str(path), OK if actual == expected else MODIFIED, actual)


def _audit_details(report: VerifyReport) -> dict[str, object]:
    problems = [
        {"clip_id": c.clip_id, "original": c.original.status}
        | {"store": [s.status for s in c.store_copies]}
        for c in report.checks
        if not c.ok
    ]
    return {"clips": len(report.checks), **report.counts(), "problems": problems}

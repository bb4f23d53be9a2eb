"""Custody of the originals: re-hashing them (`bwv verify`) and disclosing them (`bwv export`).

A court needs to know that the file shown today is the file catalogued then. Each check
re-reads the original (and its evidence-store copy, when there is one) and compares the
SHA-256 with the catalogued one. Hashing can take minutes, so it runs outside any
transaction: on SQLite every transaction holds the write lock, and ingest must not stall
behind a verification. Every run is audited, whatever it finds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bwv.core.audit import record
from bwv.core.clip_ref import find_clip
from bwv.core.db import session_scope
from bwv.core.errors import BwvError, NotFound
from bwv.core.models import (
    Attendance,
    AuditEvent,
    Clip,
    ClipLink,
    Derivative,
    Incident,
    LinkDecision,
)
from bwv.core.store import READ_ONLY, copy_hashing, process_alive, sha256_file
from bwv.core.timeutil import iso_z, json_time
from bwv.custody.chain import ChainReport, event_record, iter_events, walk_chain

OK, MODIFIED, MISSING, UNREADABLE = "ok", "modified", "missing", "unreadable"
# The catalogue row's hash is not the one the ingest audit event recorded: the row (and so
# every check against it) was changed after ingest, e.g. to pass off a swapped recording.
CATALOGUE_ALTERED = "catalogue_altered"
STORE = "store_"  # prefix of the counts of store-copy problems: store_modified, ...
COUNTED = (
    *(OK, MODIFIED, MISSING, UNREADABLE, CATALOGUE_ALTERED),
    *(STORE + s for s in (MODIFIED, MISSING, UNREADABLE)),
)


@dataclass(frozen=True)
class Target:
    """What a check needs from the catalogue, read before any hashing starts."""

    clip_id: int
    file_name: str
    path: str
    sha256: str
    store_paths: tuple[str, ...] = ()
    recorded_sha256: str | None = None  # from the clip's ingest audit event


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
    recorded_sha256: str | None = None  # what the ingest audit event says; None: no record
    status: str = OK  # catalogue_altered, else the original's status

    @property
    def ok(self) -> bool:
        return self.status == OK and all(c.status == OK for c in self.store_copies)


@dataclass(frozen=True)
class VerifyReport:
    checks: list[ClipCheck]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def counts(self) -> dict[str, int]:
        """Clips found entirely ok, and every problem found, store copies included."""
        tally = dict.fromkeys(COUNTED, 0)
        for check in self.checks:
            problems = [check.original.status] + [STORE + c.status for c in check.store_copies]
            if check.status == CATALOGUE_ALTERED:
                problems.append(CATALOGUE_ALTERED)
            for problem in problems:
                if problem not in (OK, STORE + OK):
                    tally[problem] += 1
            tally[OK] += int(check.ok)
        return tally


def load_targets(session: Session, references: list[str], *, all_clips: bool) -> list[Target]:
    if all_clips:
        clips = list(session.exec(select(Clip).order_by(col(Clip.id))).all())
    else:
        clips = list({c.id: c for c in (find_clip(session, r) for r in references)}.values())
    recorded = ingest_records(session, None if all_clips else [c.id for c in clips if c.id])
    return [_target(session, clip, recorded.get(clip.id or 0)) for clip in clips]


def _target(session: Session, clip: Clip, recorded: str | None) -> Target:
    assert clip.id is not None
    query = select(Derivative.path).where(
        Derivative.clip_id == clip.id, Derivative.kind == "store_copy"
    )
    stored = tuple(p for p in session.exec(query).all() if p)
    return Target(clip.id, clip.file_name, clip.path, clip.sha256, stored, recorded)


def ingest_records(session: Session, clip_ids: list[int] | None) -> dict[int, str]:
    """The SHA-256 each clip's ingest audit event recorded (all clips when `clip_ids` is None).

    The audit trail is hash-chained, the clip row is not: an edited row is caught here, and
    an edited event by `bwv audit verify`. A clip with no readable record, or with records
    that disagree, is left out, so it cannot pass as matching.
    """
    query = select(AuditEvent.object_ids, AuditEvent.details).where(AuditEvent.action == "ingest")
    if clip_ids is not None:
        query = query.where(col(AuditEvent.object_ids).in_([f"clip:{i}" for i in clip_ids]))
    found: dict[int, set[str]] = {}
    for object_ids, details in session.exec(query).all():
        clip_id, digest = _ingested(object_ids, details)
        if clip_id is not None:
            found.setdefault(clip_id, set()).add(digest)
    return {i: hashes.pop() for i, hashes in found.items() if len(hashes) == 1}


def _ingested(object_ids: str, details: str) -> tuple[int | None, str]:
    """The clip id and hash an ingest event names; (None, "") when it does not parse."""
    kind, _, number = str(object_ids).partition(":")
    digest = _json_object(details).get("sha256")
    if kind != "clip" or not number.isdigit() or not isinstance(digest, str):
        return None, ""
    return int(number), digest


def check_target(target: Target) -> ClipCheck:
    original = check_file(Path(target.path), target.sha256)
    altered = target.recorded_sha256 != target.sha256
    return ClipCheck(
        clip_id=target.clip_id,
        file_name=target.file_name,
        expected_sha256=target.sha256,
        original=original,
        store_copies=[check_file(Path(p), target.sha256) for p in target.store_paths],
        recorded_sha256=target.recorded_sha256,
        status=CATALOGUE_ALTERED if altered else original.status,
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


def verify_details(report: VerifyReport) -> dict[str, object]:
    problems = [
        {"clip_id": c.clip_id, "original": c.original.status}
        | {"store": [s.status for s in c.store_copies]}
        | ({"catalogue": CATALOGUE_ALTERED} if c.status == CATALOGUE_ALTERED else {})
        for c in report.checks
        if not c.ok
    ]
    return {"clips": len(report.checks), **report.counts(), "problems": problems}


# --- Disclosure export -------------------------------------------------------------------
#
# An export is assembled in a hidden staging folder beside the destination and renamed
# into place only when complete, so a failure never leaves a half-written disclosure under
# the name the user asked for. Originals are re-hashed as they are copied: a file that no
# longer matches its catalogued hash is never disclosed as the original. The manifest
# lists every file with relative paths so `sha256sum -c MANIFEST.sha256` works anywhere.
#
# The rename and its record cannot be one atomic step, so they are three: an `export`
# event with outcome `staged` (naming the staging folder, the destination and the
# manifest's hash) commits before the rename, and one with outcome `ok` after it. A
# process killed in between leaves a `staged` event with no completion; the next export
# or `audit verify` settles it with a third event (`abandoned` or `recovered`), so no
# disclosure folder can exist without an event naming it.

STAGED, ABANDONED, RECOVERED = "staged", "abandoned", "recovered"
# Testing only: the crash tests set it to a step name to SIGKILL bwv at exactly that step.
CRASH_POINT = "BWV_CRASH_POINT"

MANIFEST = "MANIFEST.sha256"
TRANSCRIPT_FORMATS = {"txt": "text/plain", "vtt": "text/vtt", "json": "application/json"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the export folder, with forward slashes
    sha256: str
    size_bytes: int
    clip_id: int | None = None
    kind: str | None = None  # the Derivative kind recorded for per-clip files
    media_type: str = "application/octet-stream"


@dataclass(frozen=True)
class ExportResult:
    incident_ref: str
    folder: str
    clip_ids: list[int]
    files: list[ExportedFile]
    manifest_sha256: str
    derivatives_only: bool
    audit_chain_ok: bool
    settled: list[str] = field(default_factory=list)  # interrupted earlier exports settled


@dataclass(frozen=True)
class StagedExport:
    """An `export` event with outcome `staged`: the folder may or may not be in place."""

    event_id: int
    object_ids: str
    details: dict[str, Any]


@dataclass(frozen=True)
class DisclosureSources:
    """What a disclosure holds that other packages know how to make, read in the export's
    own transaction: the incident's verdict (as `bwv incident --json`) and a clip's
    transcript in a format. The services layer supplies them; custody stays below it."""

    verdict: Callable[[Session, str], dict[str, Any]]
    transcript: Callable[[Session, Clip, str], str]


@dataclass(frozen=True)
class ExportPlan:
    """Everything read from the catalogue in one transaction before any file is written."""

    incident: dict[str, Any]
    clips: list[Clip]
    thumbnails: dict[int, list[Derivative]]
    store_copies: dict[int, list[str]]
    findings: dict[str, Any]
    transcripts: dict[int, dict[str, str]]


def export_incident(
    incident_ref: str,
    *,
    to: Path,
    engine: Engine,
    actor: str,
    sources: DisclosureSources,
    derivatives_only: bool = False,
) -> ExportResult:
    """Writes the disclosure folder for one incident and records it (`export`).

    Exports interrupted in earlier runs are settled first; every refusal is audited.
    """
    settled = settle_staged_exports(engine=engine, actor=actor)
    try:
        check_destination(to)
        with session_scope(engine) as session:
            plan = load_plan(session, incident_ref, sources)
        staging, result = _publish(
            plan, to, engine=engine, actor=actor, derivatives_only=derivatives_only
        )
    except BwvError as exc:
        _record_refusal(incident_ref, to, str(exc), engine=engine, actor=actor)
        raise
    _put_in_place(staging, result, engine=engine, actor=actor)
    return replace(result, settled=settled)


def check_destination(to: Path) -> None:
    try:
        if to.is_symlink() or (to.exists() and not to.is_dir()):
            raise BwvError(f"export destination {to} exists and is not a folder")
        if to.is_dir() and any(to.iterdir()):
            raise BwvError(f"export destination {to} is not empty; refusing to overwrite it")
    except OSError as exc:  # e.g. a name too long, a folder that cannot be listed
        raise BwvError(f"cannot export to {to}: {exc.strerror or exc}") from exc


def load_plan(session: Session, incident_ref: str, sources: DisclosureSources) -> ExportPlan:
    incident = session.get(Incident, incident_ref)
    if incident is None:
        raise NotFound(f"no incident {incident_ref!r} in the catalogue")
    links = list(
        session.exec(
            select(ClipLink)
            .where(ClipLink.incident_ref == incident_ref)
            .order_by(col(ClipLink.clip_id))
        ).all()
    )
    clips = [c for c in (session.get(Clip, link.clip_id) for link in links) if c is not None]
    ids = [c.id for c in clips]
    derivatives = session.exec(select(Derivative).where(col(Derivative.clip_id).in_(ids))).all()
    return ExportPlan(
        incident=incident.model_dump(),
        clips=clips,
        thumbnails=_group(d for d in derivatives if d.kind == "thumbnail"),
        store_copies=_paths(d for d in derivatives if d.kind == "store_copy" and d.path),
        findings={
            **load_findings(session, incident, links),
            "verdict": sources.verdict(session, incident_ref),
        },
        transcripts={
            c.id: {fmt: sources.transcript(session, c, fmt) for fmt in TRANSCRIPT_FORMATS}
            for c in clips
            if c.id is not None and c.transcribed
        },
    )


def _group(derivatives: Iterable[Derivative]) -> dict[int, list[Derivative]]:
    grouped: dict[int, list[Derivative]] = {}
    for derivative in derivatives:
        grouped.setdefault(derivative.clip_id, []).append(derivative)
    return grouped


def _paths(derivatives: Iterable[Derivative]) -> dict[int, list[str]]:
    return {k: [d.path for d in v if d.path] for k, v in _group(derivatives).items()}


def load_findings(session: Session, incident: Incident, links: list[ClipLink]) -> dict[str, Any]:
    """The incident, who attended, which clips link to it and why, and persons' decisions."""
    ref = incident.incident_ref
    attendance = session.exec(
        select(Attendance)
        .where(Attendance.incident_ref == ref)
        .order_by(col(Attendance.arrived_at))
    ).all()
    decisions = session.exec(
        select(LinkDecision).where(LinkDecision.incident_ref == ref).order_by(col(LinkDecision.id))
    ).all()
    return {
        "incident": _plain(incident.model_dump()),
        "attendance": [_plain(a.model_dump(exclude={"id"})) for a in attendance],
        "links": [_plain(link.model_dump(exclude={"id"})) for link in links],
        "link_decisions": [_plain(d.model_dump(exclude={"id"})) for d in decisions],
    }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: iso_z(v) if isinstance(v, datetime) else v for k, v in values.items()}


def _publish(
    plan: ExportPlan, to: Path, *, engine: Engine, actor: str, derivatives_only: bool
) -> tuple[Path, ExportResult]:
    """Writes the complete export into a staging folder; `_put_in_place` moves it."""
    staging = _staging_folder(to)
    try:
        files = _write_clip_files(staging, plan, only=derivatives_only)
        chain = walk_chain(engine)
        files += _write_case_files(
            staging, plan, files, chain, actor=actor, engine=engine, only=derivatives_only
        )
        manifest_sha256 = _write_manifest(staging, files)
    except OSError as exc:
        _remove_tree(staging)
        raise BwvError(f"cannot write export {to}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove_tree(staging)
        raise
    return staging, ExportResult(
        incident_ref=str(plan.incident["incident_ref"]),
        folder=str(to),
        clip_ids=[c.id for c in plan.clips if c.id is not None],
        files=files,
        manifest_sha256=manifest_sha256,
        derivatives_only=derivatives_only,
        audit_chain_ok=chain.ok,
    )


def _staging_folder(to: Path) -> Path:
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=_staging_prefix(to), dir=to.parent))
    except FileExistsError as exc:  # what mkdir says when part of the path is a file
        raise BwvError(f"cannot create export {to}: part of the path is not a folder") from exc
    except OSError as exc:
        raise BwvError(f"cannot create export {to}: {exc.strerror or exc}") from exc


def _staging_prefix(to: Path) -> str:
    # Shortened so that the longest name the file system allows for `to` still fits.
    return f".{to.name[:64]}.partial-"


def _put_in_place(staging: Path, result: ExportResult, *, engine: Engine, actor: str) -> None:
    """Record `staged`, rename, record `ok`: a crash between any two steps is settled later."""
    to = Path(result.folder)
    staged = _record_staged(staging, result, engine=engine, actor=actor)
    try:
        _crash_point("export-rename")
        _rename_into_place(staging, to)
    except BaseException as exc:
        reason = f"not put in place: {exc or type(exc).__name__}"
        _settle(staged, engine=engine, actor=actor, reason=reason)
        if isinstance(exc, OSError):
            raise BwvError(f"cannot write export {to}: {exc.strerror or exc}") from exc
        raise
    _crash_point("export-complete")
    try:
        _record_export(result, staged, engine=engine, actor=actor)
    except BaseException:
        # Nothing may be disclosed without its record: take the export back.
        _remove_tree(to)
        raise


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_POINT) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _rename_into_place(staging: Path, to: Path) -> None:
    try:
        # Replaces an empty destination folder atomically; refuses a non-empty one.
        os.rename(staging, to)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise BwvError(
                f"export destination {to} was filled meanwhile; nothing written"
            ) from exc
        raise


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _write_clip_files(staging: Path, plan: ExportPlan, *, only: bool) -> list[ExportedFile]:
    files: list[ExportedFile] = []
    for clip in plan.clips:
        assert clip.id is not None
        if not only:
            files.append(_copy_original(staging, clip, plan.store_copies.get(clip.id, [])))
        files += [_write_thumbnail(staging, clip, d) for d in plan.thumbnails.get(clip.id, [])]
        files += _write_transcripts(staging, clip, plan.transcripts.get(clip.id, {}))
    return files


def safe_stem(file_name: str) -> str:
    """A file-name stem that needs no quoting in a manifest or on any file system."""
    return _UNSAFE.sub("_", Path(file_name).stem).strip("._")[:80] or "clip"


def _copy_original(staging: Path, clip: Clip, store_paths: list[str]) -> ExportedFile:
    """The original, or a store copy when the original is gone or altered, hash-checked."""
    suffix = (
        Path(clip.file_name).suffix.lower()
        if _SUFFIX.fullmatch(Path(clip.file_name).suffix)
        else ""
    )
    relative = f"originals/{clip.id}_{safe_stem(clip.file_name)}{suffix}"
    target = staging / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    for source in [Path(clip.path), *map(Path, store_paths)]:
        if source.is_file() and _copy_matching(source, target, clip.sha256):
            return _exported(relative, clip.sha256, target, clip, "export_original")
    raise BwvError(
        f"clip {clip.id}: no readable copy of the original matches its catalogued SHA-256 "
        f"({clip.path}); run `bwv verify {clip.id}`. Nothing was exported"
    )


_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def _copy_matching(source: Path, target: Path, expected: str) -> bool:
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    if copy_hashing(source, target) == expected:
        target.chmod(READ_ONLY)
        return True
    target.unlink()
    return False


def _exported(
    relative: str, sha256: str, path: Path, clip: Clip, kind: str, media: str | None = None
) -> ExportedFile:
    return ExportedFile(
        path=relative,
        sha256=sha256,
        size_bytes=path.stat().st_size,
        clip_id=clip.id,
        kind=kind,
        media_type=media or "application/octet-stream",
    )


def _write_thumbnail(staging: Path, clip: Clip, derivative: Derivative) -> ExportedFile:
    content = derivative.content or b""
    if hashlib.sha256(content).hexdigest() != derivative.sha256:
        raise BwvError(
            f"thumbnail {derivative.id} of clip {clip.id} no longer matches its recorded hash; "
            "nothing was exported"
        )
    relative = f"thumbnails/{clip.id}_{safe_stem(clip.file_name)}_{derivative.id}.jpg"
    path = _write_bytes(staging, relative, content)
    return _exported(relative, derivative.sha256, path, clip, "export_thumbnail", "image/jpeg")


def _write_transcripts(staging: Path, clip: Clip, texts: dict[str, str]) -> list[ExportedFile]:
    files = []
    for fmt, text in texts.items():
        media_type = TRANSCRIPT_FORMATS[fmt]
        relative = f"transcripts/{clip.id}_{safe_stem(clip.file_name)}.{fmt}"
        path = _write_bytes(staging, relative, text.encode("utf-8"))
        digest = sha256_file(path)
        files.append(
            _exported(relative, digest, path, clip, f"export_transcript_{fmt}", media_type)
        )
    return files


def _write_bytes(staging: Path, relative: str, content: bytes) -> Path:
    path = staging / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    path.chmod(READ_ONLY)
    return path


def _write_case_files(
    staging: Path,
    plan: ExportPlan,
    files: list[ExportedFile],
    chain: ChainReport,
    *,
    actor: str,
    engine: Engine,
    only: bool,
) -> list[ExportedFile]:
    documents = {
        "findings.json": plan.findings,
        "audit.json": audit_excerpt(engine, plan, chain),
        "export.json": _export_info(plan, files, chain, actor=actor, only=only),
    }
    written = [_write_document(staging, name, _json_text(body)) for name, body in documents.items()]
    return [*written, _write_document(staging, "README.txt", README)]


def _write_document(staging: Path, name: str, text: str) -> ExportedFile:
    content = text.encode("utf-8")
    _write_bytes(staging, name, content)
    media = "application/json" if name.endswith(".json") else "text/plain"
    return ExportedFile(name, hashlib.sha256(content).hexdigest(), len(content), media_type=media)


def _json_text(body: Any) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False, default=json_time) + "\n"


def audit_excerpt(engine: Engine, plan: ExportPlan, chain: ChainReport) -> dict[str, Any]:
    """Every event about the incident or its clips, each re-checkable against its hash."""
    wanted = {f"incident:{plan.incident['incident_ref']}"} | {f"clip:{c.id}" for c in plan.clips}
    events = [
        event_record(e)
        for e in iter_events(engine)
        if isinstance(e, AuditEvent) and wanted & set(e.object_ids.split(","))
    ]
    return {"objects": sorted(wanted), "chain": _chain_dict(chain), "events": events}


def _chain_dict(chain: ChainReport) -> dict[str, Any]:
    problem = chain.problem
    return {
        "ok": chain.ok,
        "events": chain.events,
        "head_id": chain.head_id,
        "head_hash": chain.head_hash,
        "problem": None
        if problem is None
        else {"event_id": problem.event_id, "message": problem.message},
    }


def _export_info(
    plan: ExportPlan, files: list[ExportedFile], chain: ChainReport, *, actor: str, only: bool
) -> dict[str, Any]:
    originals = {f.clip_id: f.path for f in files if f.kind == "export_original"}
    return {
        "format": "bwv-disclosure/1",
        "incident_ref": plan.incident["incident_ref"],
        "exported_at": iso_z(datetime.now(UTC)),
        "exported_by": actor,
        "tool": f"bwv {_version()}",
        "derivatives_only": only,
        "clips": [_clip_info(c, originals.get(c.id)) for c in plan.clips],
        "audit_chain": _chain_dict(chain),
    }


def _clip_info(clip: Clip, exported_as: str | None) -> dict[str, Any]:
    return {
        "clip_id": clip.id,
        "file_name": clip.file_name,
        "sha256": clip.sha256,
        "size_bytes": clip.size_bytes,
        "status": clip.status,
        "catalogue_path": clip.path,
        "original_exported_as": exported_as,
        "transcribed": clip.transcribed,
    }


def _version() -> str:
    try:
        return metadata.version("bwv")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_manifest(staging: Path, files: list[ExportedFile]) -> str:
    lines = "".join(f"{f.sha256}  {f.path}\n" for f in sorted(files, key=lambda f: f.path))
    content = lines.encode("utf-8")
    _write_bytes(staging, MANIFEST, content)
    return hashlib.sha256(content).hexdigest()


def _record_staged(
    staging: Path, result: ExportResult, *, engine: Engine, actor: str
) -> StagedExport:
    """The derivatives and the `staged` event; they name the folder before it exists."""
    try:
        with session_scope(engine) as session:
            rows = _derivative_rows(result)
            session.add_all(rows)
            session.flush()
            details = _export_details(result) | {
                "staging": str(staging.resolve()),
                "derivatives": [row.id for row in rows],
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
            event = record(
                session,
                actor=actor,
                action="export",
                object_ids=_export_objects(result),
                outcome=STAGED,
                details=details,
            )
    except BaseException:
        _remove_tree(staging)
        raise
    assert event.id is not None
    return StagedExport(event.id, event.object_ids, details)


def _derivative_rows(result: ExportResult) -> list[Derivative]:
    folder = Path(result.folder).resolve()
    return [
        Derivative(
            clip_id=f.clip_id,
            kind=f.kind,
            sha256=f.sha256,
            media_type=f.media_type,
            path=str(folder / f.path),
        )
        for f in result.files
        if f.clip_id is not None and f.kind is not None
    ]


def _export_objects(result: ExportResult) -> list[str]:
    return [f"incident:{result.incident_ref}", *(f"clip:{i}" for i in result.clip_ids)]


def _export_details(result: ExportResult) -> dict[str, Any]:
    return {
        "to": str(Path(result.folder).resolve()),
        "files": len(result.files) + 1,
        "manifest_sha256": result.manifest_sha256,
        "derivatives_only": result.derivatives_only,
    }


def _record_export(
    result: ExportResult, staged: StagedExport, *, engine: Engine, actor: str
) -> None:
    with session_scope(engine) as session:
        record(
            session,
            actor=actor,
            action="export",
            object_ids=_export_objects(result),
            details=_export_details(result) | {"staged_event": staged.event_id},
        )


def settle_staged_exports(*, engine: Engine, actor: str) -> list[str]:
    """Settles exports whose process died between the `staged` event and its completion.

    A staging folder still there was never put in place: it is removed (`abandoned`). A
    destination holding the staged manifest was put in place (`recovered`). Otherwise
    nothing of it is left (`abandoned`). Exports of a process still running, or of another
    host, are left alone. Returns one line per export settled.
    """
    with session_scope(engine) as session:
        pending = unsettled_exports(session)
    notes = [_settle(s, engine=engine, actor=actor) for s in pending if _owner_gone(s.details)]
    return [note for note in notes if note]


def unsettled_exports(session: Session) -> list[StagedExport]:
    """`staged` export events that no later export event settles or completes."""
    query = select(AuditEvent.id, AuditEvent.object_ids, AuditEvent.outcome, AuditEvent.details)
    query = query.where(AuditEvent.action == "export").order_by(col(AuditEvent.id))
    rows = [(i, str(o), out, _json_object(d)) for i, o, out, d in session.exec(query).all()]
    done = {details.get("staged_event") for _, _, outcome, details in rows if outcome != STAGED}
    return [
        StagedExport(i or 0, o, details)
        for i, o, outcome, details in rows
        if outcome == STAGED and i not in done
    ]


def _json_object(text: object) -> dict[str, Any]:
    """Event details as a dict; {} for details that a damaged row no longer holds as JSON."""
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _owner_gone(details: dict[str, Any]) -> bool:
    # A process id means something only on its own host, and a live one may still finish.
    pid = details.get("pid")
    same_host = details.get("host") == socket.gethostname()
    return same_host and isinstance(pid, int) and not process_alive(pid)


def _settle(staged: StagedExport, *, engine: Engine, actor: str, reason: str = "") -> str:
    """Records how one staged export ended; "" when another process settled it first."""
    to = Path(str(staged.details.get("to")))
    with session_scope(engine) as session:
        if staged.event_id not in {s.event_id for s in unsettled_exports(session)}:
            return ""
        outcome, found = _settle_files(staged, to)
        if outcome == ABANDONED:
            _drop_derivatives(session, staged.details.get("derivatives"))
        record(
            session,
            actor=actor,
            action="export",
            object_ids=staged.object_ids.split(","),
            outcome=outcome,
            details={"staged_event": staged.event_id, "to": str(to), "reason": reason or found},
        )
    return f"the export to {to} (audit event {staged.event_id}) was interrupted; {found}"


def _settle_files(staged: StagedExport, to: Path) -> tuple[str, str]:
    staging = Path(str(staged.details.get("staging")))
    # Only a folder named as `_staging_folder` names them is ever removed.
    ours = staging.parent == to.parent and staging.name.startswith(_staging_prefix(to))
    if ours and staging.is_dir():
        _remove_tree(staging)
        left = " could not be removed" if staging.exists() else " was removed"
        return ABANDONED, f"it was never put in place, and its staging folder {staging}{left}"
    if _manifest_sha256(to) == staged.details.get("manifest_sha256"):
        return RECOVERED, "its folder is in place and holds the staged manifest, now recorded"
    return ABANDONED, "no folder holds it"


def _manifest_sha256(folder: Path) -> str | None:
    try:
        return hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return None


def _drop_derivatives(session: Session, ids: Any) -> None:
    """The export derivatives recorded with the `staged` event, for files never put in place."""
    if not isinstance(ids, list):
        return
    for row in session.exec(select(Derivative).where(col(Derivative.id).in_(ids))).all():
        if row.kind.startswith("export_"):
            session.delete(row)


def _record_refusal(
    incident_ref: str, to: Path, reason: str, *, engine: Engine, actor: str
) -> None:
    with session_scope(engine) as session:
        record(
            session,
            actor=actor,
            action="export",
            object_ids=[f"incident:{incident_ref}"],
            outcome="refused",
            details={"to": str(to), "reason": reason},
        )


README = """\
Body-worn video disclosure export, written by bwv.

  MANIFEST.sha256   SHA-256 of every other file here; check with
                    `sha256sum -c MANIFEST.sha256` run inside this folder.
  export.json       the incident, each clip's catalogued SHA-256 and the audit chain's
                    state (head hash) when this export was made.
  originals/        exact copies of the recordings (absent in a derivatives-only export);
                    each file's SHA-256 equals the clip's catalogued SHA-256.
  thumbnails/       still images derived from the recordings (not evidence of content).
  transcripts/      machine transcripts (txt, vtt, json) derived from the recordings.
  findings.json     attendance, clip links and persons' link decisions for the incident.
  audit.json        every audit event about the incident or its clips; each event's hash
                    is the SHA-256 of its other fields as compact, key-sorted JSON.
"""

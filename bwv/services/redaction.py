"""Redacted copies as user actions: detect faces, plan a redaction, render it.

Each action reads what it needs from the catalogue, does the media work outside any
transaction (minutes of decoding must not hold SQLite's write lock), then writes its
rows and its one audit event in one transaction. Media is always read from a file whose
SHA-256 matches the catalogue, and only ever read: the original's bytes never change.
The rendered copy and its log enter the content-addressed store through the same
verified temp-then-rename path as originals, so an interrupted render leaves no partial
file under a final name, and a store copy is never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select

from bwv.core import audit
from bwv.core.child_speech import speaker_label
from bwv.core.clip_ref import find_clip
from bwv.core.db import read_scope, session_scope
from bwv.core.errors import BwvError, NotFound
from bwv.core.models import (
    Derivative,
    FaceScan,
    FaceTrack,
    Redaction,
    TranscriptSegment,
    utc_now,
)
from bwv.core.store import StoreError, sha256_file, store_original
from compliance.decisions import checked_reason
from redact.plan import Choices, Plan, PlanError, Span

Progress = Callable[[str, float], None]  # stage, fraction done
AlsoWrite = Callable[[Session, dict[str, Any]], None]  # more writes in the same transaction


@dataclass(frozen=True)
class TrackView:
    label: str
    start_s: float
    end_s: float
    frames: int
    max_width_px: float
    score: float
    thumbnail_sha256: str | None


@dataclass(frozen=True)
class SpeakerView:
    label: str
    segments: int
    seconds: float
    first_words: str


@dataclass(frozen=True)
class PlanView:
    clip_id: int
    file_name: str
    duration_s: float | None
    has_video: bool
    has_audio: bool
    scanned: bool
    tracks: list[TrackView]
    speakers: list[SpeakerView]
    hidden: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DetectResult:
    clip_id: int
    file_name: str
    frames: int
    detected_frames: int
    seconds: float
    model_sha256: str
    tracks: list[TrackView]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RenderResult:
    redaction_id: int
    clip_id: int
    sha256: str
    path: str
    log_path: str
    out: str | None
    hidden: list[str]
    spans: list[Span]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Source:
    clip_id: int
    file_name: str
    sha256: str
    path: Path
    store_dir: Path | None
    duration_s: float | None
    has_video: bool
    has_audio: bool


def _noop(_stage: str, _fraction: float) -> None:
    return None


# --- detect ---------------------------------------------------------------------------


def detect_faces(
    clip: str,
    *,
    engine: Engine,
    actor: str,
    store: Path | None = None,
    progress: Progress = _noop,
    also_write: AlsoWrite | None = None,
) -> DetectResult:
    """Finds the clip's face tracks, stores their thumbnails, and replaces its earlier scan.

    `also_write` joins the scan's transaction (a web job marks itself done there, so a
    job rerun after its runner died never finds the work half recorded)."""
    from redact.detect import DetectSettings, NoVideo, scan
    from redact.model import checked_model
    from redact.tracks import TrackSettings

    source = media_source(engine, clip, store)
    if not source.has_video:
        raise NoVideo(f"clip {source.clip_id} has no video stream: there are no faces to find")
    store_dir = _needs_store(source)
    model = checked_model()
    started = time.perf_counter()
    found = scan(source.path, model, progress=lambda f: progress("detect", f))
    thumbs = [
        _store_bytes(t.thumbnail, ".jpg", store_dir) if t.thumbnail else None for t in found.tracks
    ]
    settings = {**asdict(DetectSettings()), **asdict(TrackSettings())}
    with session_scope(engine) as session:
        _replace_scan(session, source, found, thumbs, settings, actor)
        _audit_scan(session, source.clip_id, len(found.tracks), settings, actor)
        if also_write is not None:
            also_write(session, {"tracks": len(found.tracks)})
    views = [_view_of(t, thumb) for t, thumb in zip(found.tracks, thumbs, strict=True)]
    return DetectResult(
        source.clip_id,
        source.file_name,
        found.frames,
        found.detected_frames,
        round(time.perf_counter() - started, 2),
        _model_sha(),
        views,
    )


def _audit_scan(
    session: Session, clip_id: int, tracks: int, settings: dict[str, Any], actor: str
) -> None:
    audit.record(
        session,
        actor=actor,
        action="face_detect",
        object_ids=[f"clip:{clip_id}"],
        details={"tracks": tracks, "model_sha256": _model_sha(), "settings": settings},
    )


def _model_sha() -> str:
    from redact.model import MODEL_SHA256

    return MODEL_SHA256


def _view_of(track: Any, thumb: tuple[str, Path] | None) -> TrackView:
    return TrackView(
        track.label,
        round(track.start_s, 3),
        round(track.end_s, 3),
        len(track.keys),
        round(track.max_width, 1),
        round(track.best_score, 3),
        thumb[0] if thumb else None,
    )


def _replace_scan(
    session: Session,
    source: _Source,
    found: Any,
    thumbs: list[tuple[str, Path] | None],
    settings: dict[str, Any],
    actor: str,
) -> None:
    clip_id = source.clip_id
    session.exec(delete(FaceTrack).where(col(FaceTrack.clip_id) == clip_id))
    session.exec(delete(FaceScan).where(col(FaceScan.clip_id) == clip_id))
    session.add(
        FaceScan(
            clip_id=clip_id,
            model_sha256=_model_sha(),
            actor=actor,
            settings_json=json.dumps(settings),
            width=found.width,
            height=found.height,
            fps=found.fps,
            frames=found.frames,
        )
    )
    for track, thumb in zip(found.tracks, thumbs, strict=True):
        keys = [[k[0], round(k[1], 4), *(round(v, 1) for v in k[2:])] for k in track.keys]
        session.add(
            FaceTrack(
                clip_id=clip_id,
                label=track.label,
                start_s=track.start_s,
                end_s=track.end_s,
                frames=len(track.keys),
                max_width_px=track.max_width,
                score=track.best_score,
                thumbnail_sha256=thumb[0] if thumb else None,
                thumbnail_path=str(thumb[1]) if thumb else None,
                keys_json=json.dumps(keys, separators=(",", ":")),
            )
        )


# --- the clip's media, verified ----------------------------------------------------------


def media_source(engine: Engine, clip: str, store: Path | None) -> _Source:
    """The clip's media: the store copy, else the original, whichever hashes right."""
    from ingest.probe import probe

    with read_scope(engine) as session:
        found = find_clip(session, clip)
        assert found.id is not None
        clip_id, name, digest = found.id, found.file_name, found.sha256
        candidates = [*_store_copies(session, found.id), found.path]
    path = _verified_media(clip_id, digest, candidates)
    info = probe(path)
    copies = candidates[:-1]
    store_dir = store or (Path(copies[0]).parents[2] if copies else None)
    return _Source(
        clip_id,
        name,
        digest,
        path,
        store_dir,
        info.duration_s,
        info.video_codec is not None,
        info.has_audio,
    )


def _store_copies(session: Session, clip_id: int) -> list[str]:
    query = select(Derivative.path).where(
        col(Derivative.clip_id) == clip_id, col(Derivative.kind) == "store_copy"
    )
    return [p for p in session.exec(query).all() if p]


def _verified_media(clip_id: int, digest: str, candidates: list[str]) -> Path:
    for candidate in candidates:
        path = Path(candidate)
        with contextlib.suppress(OSError):
            if path.is_file() and sha256_file(path) == digest:
                return path
    raise NotFound(
        f"clip {clip_id}: neither the original nor a store copy with its SHA-256 "
        f"({digest[:12]}...) can be read"
    )


def _needs_store(source: _Source) -> Path:
    if source.store_dir is None:
        raise BwvError(
            f"clip {source.clip_id} has no store copy, so bwv does not know which store to "
            "write to: give --store DIR"
        )
    if not source.store_dir.is_dir():
        raise BwvError(f"store {source.store_dir} is not a folder")
    return source.store_dir


def _store_bytes(content: bytes, suffix: str, store_dir: Path) -> tuple[str, Path]:
    """Puts `content` in the store (verified, read-only) and returns its hash and path."""
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    with tempfile.TemporaryDirectory(prefix="bwv-redact-") as work:
        temp = Path(work) / f"content{suffix}"
        temp.write_bytes(content)
        return digest, store_original(temp, digest, store_dir)


# --- plan -----------------------------------------------------------------------------


def plan_redaction(
    clip: str,
    choices: Choices,
    *,
    engine: Engine,
    store: Path | None = None,
    locate_words: bool = True,
) -> PlanView:
    """The clip's face tracks and speaker groups, and what `choices` would hide (checked).

    `locate_words=False` checks the words against the transcript's text only, without
    running Whisper for their times (the web app's quick check before its background job).
    """
    with read_scope(engine) as session:
        found = find_clip(session, clip)
        assert found.id is not None
        scanned = session.exec(select(FaceScan.id).where(col(FaceScan.clip_id) == found.id))
        is_scanned = scanned.first() is not None
        tracks = [_track_view(t) for t in face_tracks(session, found.id)]
        segments = clip_segments(session, found.id)
        view = PlanView(
            found.id,
            found.file_name,
            found.duration_s,
            found.video_codec is not None,
            found.audio_codec is not None,
            is_scanned,
            tracks,
            _speakers(segments),
        )
    plan = _resolve(
        view, choices, segments, lambda: media_source(engine, clip, store).path, locate_words
    )
    return replace(view, hidden=plan.tracks, spans=plan.spans)


def face_tracks(session: Session, clip_id: int) -> list[FaceTrack]:
    query = select(FaceTrack).where(col(FaceTrack.clip_id) == clip_id)
    return sorted(session.exec(query).all(), key=lambda t: int(t.label[1:]))


def _track_view(track: FaceTrack) -> TrackView:
    return TrackView(
        track.label,
        round(track.start_s, 3),
        round(track.end_s, 3),
        track.frames,
        round(track.max_width_px, 1),
        round(track.score, 3),
        track.thumbnail_sha256,
    )


Segment = tuple[str, float, float, str]  # speaker label, start, end, text


def clip_segments(session: Session, clip_id: int) -> list[Segment]:
    query = (
        select(TranscriptSegment)
        .where(col(TranscriptSegment.clip_id) == clip_id)
        .order_by(col(TranscriptSegment.start_s))
    )
    return [
        (speaker_label(s.speaker), s.start_s, s.end_s, s.text) for s in session.exec(query).all()
    ]


def _speakers(segments: list[Segment]) -> list[SpeakerView]:
    groups: dict[str, list[Segment]] = {}
    for segment in segments:
        if segment[0] != "-":
            groups.setdefault(segment[0], []).append(segment)
    return [
        SpeakerView(
            label,
            len(group),
            round(sum(e - s for _l, s, e, _t in group), 2),
            group[0][3].strip()[:60],
        )
        for label, group in sorted(groups.items(), key=lambda g: int(g[0][1:]))
    ]


def _resolve(
    view: PlanView,
    choices: Choices,
    segments: list[Segment],
    media: Callable[[], Path],
    locate_words: bool,
) -> Plan:
    """Every choice checked against the clip, before anything renders."""
    from redact.plan import chosen_tracks, merged

    if choices.faces.strip().lower() not in ("", "none") and not view.has_video:
        raise PlanError(
            f"clip {view.clip_id} has no video stream: only its audio can be "
            "redacted (use --faces none)"
        )
    if choices.faces.strip().lower() == "all" and not view.scanned:
        raise PlanError(f"clip {view.clip_id} has no face scan: run `bwv redact detect` first")
    hidden = chosen_tracks(choices.faces, [t.label for t in view.tracks])
    if choices.mutes_audio and not view.has_audio:
        raise PlanError(f"clip {view.clip_id} has no audio stream: there is nothing to mute")
    spans = _speaker_spans(choices, segments) + _manual_spans(view, choices)
    spans += _word_spans(view, choices, segments, media, locate_words)
    return Plan(hidden, merged(spans, view.duration_s))


def _speaker_spans(choices: Choices, segments: list[Segment]) -> list[Span]:
    from redact.plan import speaker_spans

    if not choices.mute_speakers:
        return []
    return speaker_spans(choices.mute_speakers, [(label, s, e) for label, s, e, _t in segments])


def _manual_spans(view: PlanView, choices: Choices) -> list[Span]:
    for start, _end in choices.mute:
        if view.duration_s is not None and start >= view.duration_s:
            raise PlanError(
                f"--mute {start:g}-{_end:g}: clip {view.clip_id} is only "
                f"{view.duration_s:.1f} s long"
            )
    return [Span(start, end, "manual") for start, end in choices.mute]


def _word_spans(
    view: PlanView,
    choices: Choices,
    segments: list[Segment],
    media: Callable[[], Path],
    locate: bool = True,
) -> list[Span]:
    """Where each word or phrase is said; `locate=False` only checks the transcript has it."""
    from redact.plan import WORD_PAD_S, word_spans
    from redact.words import windows, word_times

    if not choices.mute_words:
        return []
    if not segments:
        raise PlanError(
            f"clip {view.clip_id} has no transcript, so --mute-words cannot find "
            "the words; mute them by time with --mute FROM-TO"
        )
    texts = [(s, e, t) for _l, s, e, t in segments]
    for phrase in choices.mute_words:  # cheap: the transcript's text, before Whisper runs
        if not windows(texts, (phrase,)):
            raise PlanError(
                f"{phrase!r} is not in clip {view.clip_id}'s transcript; "
                "mute it by time with --mute FROM-TO"
            )
    if not locate:
        return []
    said = word_times(media(), windows(texts, choices.mute_words))
    spans = []
    for phrase in choices.mute_words:
        found = word_spans(phrase, said)
        if not found:
            raise PlanError(
                f"{phrase!r} is not said in clip {view.clip_id}'s transcript; "
                "nothing was rendered (mute it by time with --mute FROM-TO)"
            )
        spans += [Span(s.start_s - WORD_PAD_S, s.end_s + WORD_PAD_S, s.why) for s in found]
    return spans


# --- render ---------------------------------------------------------------------------


def render_redaction(
    clip: str,
    choices: Choices,
    *,
    engine: Engine,
    actor: str,
    out: Path | None = None,
    store: Path | None = None,
    progress: Progress = _noop,
    also_write: AlsoWrite | None = None,
) -> RenderResult:
    """Renders the redacted copy into the store (and `out`), logs and audits it
    (`also_write` joins that transaction, as for `detect_faces`)."""
    reason = checked_reason(choices.reason, "redaction")
    _check_out(out)
    view = plan_redaction(clip, choices, engine=engine, store=store)
    if not view.hidden and not view.spans:
        raise PlanError(
            "nothing to redact: choose faces (--faces) or audio to mute "
            "(--mute-speaker, --mute-words, --mute)"
        )
    source = media_source(engine, clip, store)
    store_dir = _needs_store(source)
    started = time.perf_counter()
    stored, log_stored = _render_and_store(
        engine, source, view, choices, (store_dir, reason, actor), progress
    )
    if out is not None:
        export_copy(stored[1], out)
    redaction_id = _record(engine, source, view, (stored, log_stored), (reason, actor), also_write)
    return RenderResult(
        redaction_id,
        source.clip_id,
        stored[0],
        str(stored[1]),
        str(log_stored[1]),
        str(out) if out else None,
        view.hidden,
        view.spans,
        round(time.perf_counter() - started, 2),
    )


def _check_out(out: Path | None) -> None:
    if out is None:
        return
    if out.exists() or out.is_symlink():
        raise BwvError(f"{out} already exists: a redaction never overwrites a file")
    if not out.parent.is_dir():
        raise BwvError(f"cannot write {out}: folder {out.parent} does not exist")


def _render_and_store(
    engine: Engine,
    source: _Source,
    view: PlanView,
    choices: Choices,
    where_why_who: tuple[Path, str, str],
    progress: Progress,
) -> tuple[tuple[str, Path], tuple[str, Path]]:
    from redact.render import HiddenTrack, RenderJob, run, settings

    store_dir, reason, actor = where_why_who
    hidden, fps, size = _hidden_tracks(engine, source.clip_id, view.hidden)
    suffix = ".mp4" if source.has_video else ".m4a"
    with tempfile.TemporaryDirectory(prefix="bwv-redact-") as work:
        target = Path(work) / f"copy{suffix}"
        job = RenderJob(
            source.path,
            target,
            source.has_video,
            source.has_audio,
            source.duration_s,
            [HiddenTrack(label, keys) for label, keys in hidden],
            [(s.start_s, s.end_s) for s in view.spans],
            choices.bleep,
            choices.solid,
        )
        run(job, fps, size, Path(work), lambda f: progress("render", f))
        digest = sha256_file(target)
        stored = (digest, _into_store(target, digest, store_dir))
    log = _log(source, view, hidden, digest, reason, actor, settings(job))
    return stored, _store_bytes(log, ".json", store_dir)


def _hidden_tracks(
    engine: Engine, clip_id: int, labels: list[str]
) -> tuple[list[tuple[str, list[Any]]], float, tuple[int, int]]:
    """The chosen tracks' per-frame boxes, and the frame rate and size they were found at."""
    with read_scope(engine) as session:
        scan = session.exec(select(FaceScan).where(col(FaceScan.clip_id) == clip_id)).first()
        keys = {t.label: t.keys_json for t in face_tracks(session, clip_id)}
        if scan is None:
            return [], 30.0, (0, 0)
        found = (scan.fps, (scan.width, scan.height))
    hidden = [(label, [tuple(k) for k in json.loads(keys[label])]) for label in labels]
    return hidden, found[0], found[1]


def _into_store(target: Path, digest: str, store_dir: Path) -> Path:
    try:
        return store_original(target, digest, store_dir)
    except StoreError as exc:
        raise BwvError(f"the redacted copy could not be stored: {exc}") from exc


def _log(
    source: _Source,
    view: PlanView,
    hidden: list[tuple[str, list[Any]]],
    digest: str,
    reason: str,
    actor: str,
    render_settings: dict[str, Any],
) -> bytes:
    from redact.model import MODEL_FILE, MODEL_SHA256

    log = {
        "clip": {"id": source.clip_id, "file_name": source.file_name, "sha256": source.sha256},
        "copy_sha256": digest,
        "reason": reason,
        "actor": actor,
        "created_at": utc_now().isoformat(),
        "face_model": {"file": MODEL_FILE, "sha256": MODEL_SHA256},
        "settings": render_settings,
        "tracks_hidden": [
            {
                "label": label,
                "boxes": [list(k) for k in keys],
                "box_fields": ["frame", "t", "x1", "y1", "x2", "y2"],
            }
            for label, keys in hidden
        ],
        "spans_muted": [asdict(span) for span in view.spans],
    }
    return json.dumps(log, indent=1, ensure_ascii=False).encode("utf-8")


def export_copy(stored: Path, out: Path) -> None:
    """Copies the stored copy to `out` via a temporary file and a hard link: never over a file."""
    temp = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with stored.open("rb") as reader, temp.open("xb") as writer:
            while chunk := reader.read(1024 * 1024):
                writer.write(chunk)
        os.link(temp, out)
    except FileExistsError:
        raise BwvError(f"{out} already exists: a redaction never overwrites a file") from None
    except OSError as exc:
        raise BwvError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _record(
    engine: Engine,
    source: _Source,
    view: PlanView,
    copies: tuple[tuple[str, Path], tuple[str, Path]],
    why_who: tuple[str, str],
    also_write: AlsoWrite | None,
) -> int:
    (stored, log_stored), (reason, actor) = copies, why_who
    spans = [asdict(s) for s in view.spans]
    with session_scope(engine) as session:
        row = Redaction(
            clip_id=source.clip_id,
            sha256=stored[0],
            path=str(stored[1]),
            log_sha256=log_stored[0],
            log_path=str(log_stored[1]),
            tracks=",".join(view.hidden),
            spans_json=json.dumps(spans),
            reason=reason,
            actor=actor,
        )
        session.add(row)
        session.add_all(_derivatives(source, stored, log_stored))
        session.flush()
        assert row.id is not None
        audit.record(
            session,
            actor=actor,
            action="redact",
            object_ids=[f"clip:{source.clip_id}", f"redaction:{row.id}"],
            details={
                "sha256": stored[0],
                "log_sha256": log_stored[0],
                "tracks": view.hidden,
                "spans": spans,
                "reason": reason,
            },
        )
        if also_write is not None:
            also_write(session, {"redaction_id": row.id})
        return row.id


def _derivatives(
    source: _Source, stored: tuple[str, Path], log_stored: tuple[str, Path]
) -> list[Derivative]:
    """The copy and its log as derivatives of the original, like its thumbnail and store copy."""
    media_type = "video/mp4" if source.has_video else "audio/mp4"
    return [
        Derivative(
            clip_id=source.clip_id,
            kind="redacted_copy",
            sha256=stored[0],
            media_type=media_type,
            path=str(stored[1]),
        ),
        Derivative(
            clip_id=source.clip_id,
            kind="redaction_log",
            sha256=log_stored[0],
            media_type="application/json",
            path=str(log_stored[1]),
        ),
    ]

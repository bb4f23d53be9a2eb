"""The ingest batch: find files, process them in parallel processes, store each one.

Parallelism sits at the file level: each worker process loads the model once and turns
files into `FileResult`s. The parent process is the only writer, storing every file in
its own transaction (with its audit event), so a crash loses at most the file in hand
and re-running the batch picks up exactly what is missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from bwv.db import session_scope
from bwv.errors import BwvError
from bwv.models import Clip
from ingest.config import MEDIA_EXTENSIONS, IngestConfig, load_config
from ingest.pipeline import FileContext, FileResult, process_file
from ingest.progress import IngestProgress
from ingest.store import sha256_file
from ingest.writer import store_result


@dataclass(frozen=True)
class IngestOptions:
    workers: int = 1
    model: str = "tiny.en"
    language: str = "en"
    transcribe: bool = True
    child_voice: bool = True
    store: Path | None = None


@dataclass
class IngestSummary:
    ingested: int = 0
    skipped: int = 0
    failed: int = 0
    footage_seconds: float = 0.0
    seconds: float = 0.0
    clip_ids: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def files(self) -> int:
        return self.ingested + self.skipped + self.failed


@dataclass(frozen=True)
class Skipped:
    path: Path
    sha256: str


def ingest_paths(
    paths: list[Path],
    *,
    engine: Engine,
    actor: str,
    options: IngestOptions,
    show_progress: bool = False,
) -> IngestSummary:
    """Catalogues every media file under `paths`; idempotent by content hash."""
    started = time.monotonic()
    files = discover(paths)
    config = load_config()
    check_model(options)
    known = known_hashes(engine)
    summary = IngestSummary()
    with IngestProgress(len(files), enabled=show_progress) as progress:
        for outcome in _outcomes(files, options, config, known):
            _record(outcome, summary, engine=engine, actor=actor)
            progress.advance(summary.footage_seconds)
    relink(engine)
    summary.seconds = time.monotonic() - started
    return summary


def discover(paths: list[Path]) -> list[Path]:
    """Media files under the given files and folders, sorted, each once."""
    found: dict[Path, None] = {}
    for path in paths:
        if not path.exists():
            raise BwvError(f"path not found: {path}")
        if path.is_file():
            found[path.resolve()] = None
            continue
        for candidate in sorted(path.rglob("*")):
            if candidate.is_file() and candidate.suffix.lower() in MEDIA_EXTENSIONS:
                found[candidate.resolve()] = None
    return list(found)


def check_model(options: IngestOptions) -> None:
    """Fails fast, before any worker starts, on a model or language that cannot work."""
    if not options.transcribe:
        return
    from ingest.encoder import load_model, model_is_multilingual, model_path

    path = model_path(options.model)
    if options.model != "tiny.en":  # a folder from outside: load it once here, not per worker
        load_model(options.model, threads=1)
    if options.language != "en" and not model_is_multilingual(path):
        raise BwvError(
            f"model {options.model} is English-only; "
            f"give a multilingual model for --language {options.language}"
        )


def known_hashes(engine: Engine) -> frozenset[str]:
    with session_scope(engine) as session:
        return frozenset(session.exec(select(Clip.sha256)).all())


def _outcomes(
    files: list[Path], options: IngestOptions, config: IngestConfig, known: frozenset[str]
) -> Iterator[FileResult | Skipped]:
    workers = max(1, min(options.workers, len(files)))
    if workers == 1:
        _init_worker(options, config, known, threads=os.cpu_count() or 1)
        yield from (_work(path) for path in files)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(options, config, known, threads),
    ) as pool:
        futures: list[Future[FileResult | Skipped]] = [pool.submit(_work, p) for p in files]
        for future in as_completed(futures):
            yield future.result()


_CONTEXT: FileContext | None = None
_KNOWN: frozenset[str] = frozenset()


def _init_worker(
    options: IngestOptions, config: IngestConfig, known: frozenset[str], threads: int
) -> None:
    """Runs once per worker process: loads the model a single time for all its files."""
    global _CONTEXT, _KNOWN
    transcriber = None
    if options.transcribe:
        from ingest.transcribe import load_transcriber

        transcriber = load_transcriber(
            options.model, options.language, threads=threads, child_voice=options.child_voice
        )
    _CONTEXT = FileContext(config, transcriber, options.store)
    _KNOWN = known


def _work(path: Path) -> FileResult | Skipped:
    assert _CONTEXT is not None, "worker used before _init_worker"
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return _unreadable(path, exc)
    if digest in _KNOWN:
        return Skipped(path, digest)
    return process_file(path, digest, _CONTEXT)


def _unreadable(path: Path, exc: OSError) -> FileResult:
    """A file the OS will not let us read still gets a (path-derived) failed record."""
    from hashlib import sha256

    from ingest.pipeline import failed_result

    assert _CONTEXT is not None
    pseudo = sha256(f"unreadable\0{path}".encode()).hexdigest()
    size = path.stat().st_size if path.exists() else 0
    reason = f"cannot read file: {exc.strerror or exc}"
    return failed_result(path, pseudo, size, reason, time.monotonic(), _CONTEXT)


def _record(
    outcome: FileResult | Skipped, summary: IngestSummary, *, engine: Engine, actor: str
) -> None:
    if isinstance(outcome, Skipped):
        summary.skipped += 1
        return
    clip_id = store_result(outcome, engine=engine, actor=actor)
    if clip_id is None:
        summary.skipped += 1
    elif outcome.failure:
        summary.failed += 1
        summary.failures.append((str(outcome.path), outcome.failure))
    else:
        summary.ingested += 1
        summary.footage_seconds += (outcome.media.duration_s or 0.0) if outcome.media else 0.0
    if clip_id is not None:
        summary.clip_ids.append(clip_id)


def relink(engine: Engine) -> None:
    """Recomputes clip-incident links once the batch is stored (when compliance is present)."""
    try:
        from compliance.linking import recompute_links
    except ImportError:
        return
    with session_scope(engine) as session:
        recompute_links(session)

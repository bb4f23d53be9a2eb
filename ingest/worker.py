"""The ingest batch: find files, process them in parallel processes, store each one.

Parallelism sits at the file level: each worker process loads the model once and turns
files into `FileResult`s. The parent process is the only writer, storing every file in
its own transaction (with its audit event), so a crash loses at most the file in hand
and re-running the batch picks up exactly what is missing.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from bwv.core.db import session_scope
from bwv.core.errors import BwvError, CatalogueBusy
from bwv.core.models import Clip
from bwv.core.store import file_kind, sha256_file
from ingest.config import MEDIA_EXTENSIONS, IngestConfig, load_config
from ingest.pipeline import FileContext, FileResult, failed_result, file_size, process_file
from ingest.provenance import Provenance, name_problem, path_text
from ingest.writer import store_result, unreadable_hash


@dataclass(frozen=True)
class IngestOptions:
    workers: int = 1
    model: str = "tiny.en"
    language: str = "en"
    transcribe: bool = True
    child_voice: bool = True
    store: Path | None = None
    follow_symlinks: bool = False
    retry_failed: bool = False


@dataclass
class IngestSummary:
    ingested: int = 0
    skipped: int = 0
    failed: int = 0
    footage_seconds: float = 0.0
    seconds: float = 0.0
    clip_ids: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    # (path, reason) for each sidecar or tag problem of a file that was catalogued
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Files that could not be finished now (store not writable...): not catalogued, retried.
    unfinished: list[tuple[str, str]] = field(default_factory=list)
    # Paths that were not ingested at all: unreadable folders, FIFOs, outward symlinks.
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def files(self) -> int:
        return self.ingested + self.skipped + self.failed

    @property
    def complete(self) -> bool:
        """True when every path given was read and every file catalogued as ingested."""
        return not (self.failed or self.unfinished or self.rejected)


@dataclass
class Discovery:
    """What a walk found: media files to ingest, and each path it could not or would not use."""

    follow_symlinks: bool = False
    files: dict[Path, None] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    visited: set[Path] = field(default_factory=set)

    def add(self, path: Path) -> None:
        self.files[Path(os.path.realpath(path))] = None

    def reject(self, path: Path | str, reason: str) -> None:
        self.problems.append((path_text(Path(path)), reason))


@dataclass(frozen=True)
class Skipped:
    path: Path
    sha256: str


# Called after each file is stored, with the files found and the summary so far.
OnProgress = Callable[[int, "IngestSummary"], None]


def ingest_paths(
    paths: list[Path],
    *,
    engine: Engine,
    actor: str,
    options: IngestOptions,
    on_progress: OnProgress | None = None,
) -> IngestSummary:
    """Catalogues every media file under `paths`; idempotent by content hash."""
    started = time.monotonic()
    found = discover(paths, follow_symlinks=options.follow_symlinks)
    files = list(found.files)
    config = load_config()
    check_model(options)
    options = replace(options, store=options.store.resolve() if options.store else None)
    known = known_hashes(engine, exclude_failed=options.retry_failed)
    summary = IngestSummary(rejected=found.problems)
    for outcome in _outcomes(files, options, config, known):
        _record(outcome, summary, engine=engine, actor=actor, retry=options.retry_failed)
        if on_progress is not None:
            on_progress(len(files), summary)
    summary.seconds = time.monotonic() - started
    return summary


def discover(paths: list[Path], *, follow_symlinks: bool = False) -> Discovery:
    """Media files under the given files and folders, each once, and every path not used.

    A path named on the command line is taken as given (symbolic links followed); inside
    a folder, a link leading out of it is reported and followed only on request, and
    nothing that is not a regular file is ever opened (a FIFO would block for ever).
    """
    found = Discovery(follow_symlinks)
    for path in paths:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise BwvError(f"path not found: {path}") from None
        except OSError as exc:
            found.reject(path, f"cannot read: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(mode):
            _walk(path, found)
        elif stat.S_ISREG(mode):
            found.add(path)
        else:
            found.reject(path, f"not a regular file ({file_kind(mode)}); not read")
    return found


def _walk(root: Path, found: Discovery) -> None:
    real_root = Path(os.path.realpath(root))
    if real_root in found.visited:
        return
    found.visited.add(real_root)

    def unreadable(exc: OSError) -> None:
        found.reject(exc.filename or root, f"cannot read folder: {exc.strerror or exc}")

    for folder, folders, names in os.walk(root, onerror=unreadable):
        folders.sort()
        for name in [*sorted(names), *folders]:
            _entry(Path(folder) / name, real_root, found)


def _entry(path: Path, real_root: Path, found: Discovery) -> None:
    media = path.suffix.lower() in MEDIA_EXTENSIONS
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        if media:
            found.reject(path, f"cannot read: {exc.strerror or exc}")
        return
    if stat.S_ISLNK(mode):
        _link(path, real_root, found)
    elif media and stat.S_ISREG(mode):
        found.add(path)
    elif media and not stat.S_ISDIR(mode):
        found.reject(path, f"not a regular file ({file_kind(mode)}); not read")


def _link(path: Path, real_root: Path, found: Discovery) -> None:
    """A symbolic link met in a folder: used when it stays inside, else reported."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        if path.suffix.lower() in MEDIA_EXTENSIONS:
            found.reject(path, f"broken symbolic link: {exc.strerror or exc}")
        return
    media = stat.S_ISREG(mode) and path.suffix.lower() in MEDIA_EXTENSIONS
    if not (media or stat.S_ISDIR(mode)):
        return
    inside = target.is_relative_to(real_root)
    if inside and stat.S_ISDIR(mode):
        return  # walked through its real path already
    if not inside and not found.follow_symlinks:
        found.reject(
            path, f"symbolic link leads outside {real_root} (to {path_text(target)}); "
            "not followed (use --follow-symlinks)",
        )  # fmt: skip
    elif stat.S_ISDIR(mode):
        _walk(target, found)
    else:
        found.add(path)


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


def known_hashes(engine: Engine, *, exclude_failed: bool = False) -> frozenset[str]:
    """Hashes already catalogued (without failed clips when those are to be retried)."""
    query = select(Clip.sha256)
    if exclude_failed:
        query = query.where(Clip.status != "failed")
    with session_scope(engine) as session:
        return frozenset(session.exec(query).all())


def _outcomes(
    files: list[Path], options: IngestOptions, config: IngestConfig, known: frozenset[str]
) -> Iterator[FileResult | Skipped]:
    workers = max(1, min(options.workers, len(files)))
    if workers == 1:
        _init_worker(options, config, known, threads=os.cpu_count() or 1)
        yield from (_work(path) for path in files)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with worker_pool(workers, threads, options, config, known) as pool:
        futures: list[Future[FileResult | Skipped]] = [pool.submit(_work, p) for p in files]
        for future in as_completed(futures):
            yield future.result()


# Read by OpenBLAS (numpy) and OpenMP when they load, which in a spawned process happens
# while it unpickles its work, before any code of ours runs there.
NATIVE_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def worker_pool(
    processes: int,
    threads: int,
    options: IngestOptions,
    config: IngestConfig,
    known: frozenset[str] = frozenset(),
) -> ProcessPoolExecutor:
    """Processes that each load the model once, each held to `threads` threads: the
    model's, and OpenBLAS's, OpenMP's and OpenCV's, which otherwise take every core each,
    so that N processes on N cores do not run 2N busy threads. The processes inherit the
    environment set here (a value the user set is kept)."""
    for name in NATIVE_THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(options, config, known, threads),
    )


_CONTEXT: FileContext | None = None
_KNOWN: frozenset[str] = frozenset()


def _init_worker(
    options: IngestOptions, config: IngestConfig, known: frozenset[str], threads: int
) -> None:
    """Runs once per worker process: loads the model a single time for all its files."""
    global _CONTEXT, _KNOWN
    import cv2

    cv2.setNumThreads(threads)
    transcriber = None
    if options.transcribe:
        from ingest.transcribe import load_transcriber

        transcriber = load_transcriber(
            options.model, options.language, threads=threads, child_voice=options.child_voice
        )
    _CONTEXT = FileContext(config, transcriber, options.store)
    _KNOWN = known


def work_queued(path: Path) -> FileResult | Skipped:
    """`_work` for a job of the ingest queue, run on whichever machine took it: a path
    that is not there (the shared mount is missing or different) fails, saying where."""
    if not os.path.lexists(path):
        return _unreadable(path, f"file not found on {socket.gethostname()}")
    return _work(path)


def _work(path: Path) -> FileResult | Skipped:
    """One file's result; whatever the file brings, an exception never leaves this."""
    try:
        return _work_on(path)
    except Exception as exc:  # last line of defence: this file fails, the batch goes on
        return _unreadable(path, f"unexpected {type(exc).__name__}: {exc}")


def _work_on(path: Path) -> FileResult | Skipped:
    assert _CONTEXT is not None, "worker used before _init_worker"
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return _unreadable(path, f"cannot read file: {exc.strerror or exc}")
    if digest in _KNOWN:
        return Skipped(path, digest)
    problem = name_problem(path)
    if problem:
        return failed_result(path, digest, file_size(path), problem, time.monotonic(), _CONTEXT)
    return process_file(path, digest, _CONTEXT)


def _unreadable(path: Path, reason: str) -> FileResult:
    """A file the OS will not let us read still gets a (path-derived) failed record."""
    assert _CONTEXT is not None
    pseudo = unreadable_hash(path)
    size = file_size(path)
    return failed_result(path, pseudo, size, reason, time.monotonic(), _CONTEXT, copy=False)


def _record(
    outcome: FileResult | Skipped,
    summary: IngestSummary,
    *,
    engine: Engine,
    actor: str,
    retry: bool = False,
) -> None:
    if isinstance(outcome, Skipped):
        summary.skipped += 1
        return
    shown = path_text(outcome.path)
    if outcome.retry:
        summary.unfinished.append((shown, outcome.failure or "not finished"))
        return
    clip_id, outcome = store_safely(outcome, engine=engine, actor=actor, retry=retry)
    if clip_id is None:
        summary.skipped += 1
        return
    summary.clip_ids.append(clip_id)
    summary.warnings += [(shown, w) for w in outcome.provenance.warnings]
    if outcome.failure:
        summary.failed += 1
        summary.failures.append((shown, outcome.failure))
    else:
        summary.ingested += 1
        summary.footage_seconds += (outcome.media.duration_s or 0.0) if outcome.media else 0.0


def store_safely(
    outcome: FileResult, *, engine: Engine, actor: str, retry: bool
) -> tuple[int | None, FileResult]:
    """Stores `outcome`; if something it carries cannot be written, stores the file as
    failed with only its path and hash, so that one file can never stop the batch. A
    catalogue that cannot take even that is a real database problem, raised as such, and
    so is a database that is busy or away for a moment (`CatalogueBusy`): nothing is
    wrong with the file, and recording it as failed would be false."""
    try:
        return store_result(outcome, engine=engine, actor=actor, retry_failed=retry), outcome
    except CatalogueBusy:
        raise
    except Exception as exc:
        reason = f"could not be catalogued: {type(exc).__name__}: {exc}"
        reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
        bare = FileResult(
            outcome.path, outcome.sha256, outcome.size_bytes, Provenance({}), failure=reason
        )
        try:
            clip_id = store_result(bare, engine=engine, actor=actor, retry_failed=retry)
        except Exception:
            raise exc from None
        return clip_id, bare

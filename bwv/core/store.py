"""The content-addressed evidence store: one read-only copy of each original, named by hash.

`bwv ingest --store DIR` copies every original to `DIR/ab/cd/<sha256>.<ext>` before the
catalogue commit, so the catalogue never points at a copy that was not verified. The
copy is written to a temporary file in the same folder and renamed into place only once
its bytes, read back from disk, hash to the expected value: a crash or a full disk can
leave a stray temporary file, never a partial file under a final name. Temporary names
carry the writer's process id so that a later store can sweep those of dead writers
without touching a file another live process is still writing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from bwv.core.errors import BwvError

CHUNK = 1024 * 1024
READ_ONLY = 0o444
TEMP_SUFFIX = ".tmp"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_NAME = re.compile(r"\.(?P<name>[^/]+)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp")


class StoreError(BwvError):
    """The store copy could not be written or does not match the original's hash."""


class StoreUnavailable(StoreError):
    """The copy could not be finished now (store not writable, disk full, source changing):
    nothing is wrong with the original, so the file is retried, never failed for good."""


def sha256_file(path: Path) -> str:
    """The SHA-256 of a regular file, read in chunks so that hour-long recordings fit in memory.

    Opened without blocking and checked before reading: a FIFO or device put where a
    recording was expected raises OSError instead of hanging the batch forever.
    """
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading, or OSError when it is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(mode)})", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words, for error messages."""
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
             (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISDIR, "folder"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "special file")


def store_path(sha256: str, suffix: str, store_dir: Path) -> Path:
    """Where a file with this hash and extension lives in the store."""
    if not _SHA256.fullmatch(sha256):
        raise StoreError(f"not a SHA-256 hex digest: {sha256!r}")
    extension = suffix.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix) else ""
    return store_dir / sha256[:2] / sha256[2:4] / f"{sha256}{extension}"


def store_original(source: Path, sha256: str, store_dir: Path) -> Path:
    """Copies `source` into the store and returns the verified, read-only copy's path.

    Idempotent: a copy already present with the right hash is returned as it is. A copy
    present with another hash is never overwritten (it may be evidence of tampering).
    """
    target = store_path(sha256, source.suffix, store_dir)
    try:
        if target.exists():
            return _existing_copy(target, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_temp_files(target.parent)
        _copy_verified(source, target, sha256)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot store {source} in {store_dir}: {exc.strerror or exc}"
        ) from exc
    return target


def _existing_copy(target: Path, sha256: str) -> Path:
    actual = sha256_file(target)
    if actual != sha256:
        raise StoreError(
            f"store copy {target} has SHA-256 {actual}, not {sha256}: "
            "it was altered after it was stored and is left untouched for inspection"
        )
    if stat.S_IMODE(target.stat().st_mode) != READ_ONLY:
        target.chmod(READ_ONLY)
    return target


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    """Temp file, fsync, re-read and compare, then rename: the final name is all or nothing."""
    temp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        copied = copy_hashing(source, temp)
        if copied != sha256:
            raise StoreUnavailable(
                f"{source} hashes to {copied} while copying, not {sha256}: it changed"
            )
        written = sha256_file(temp)
        if written != sha256:
            raise StoreUnavailable(f"store copy of {source} reads back as {written}, not {sha256}")
        temp.chmod(READ_ONLY)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    _fsync_folder(target.parent)


def copy_hashing(source: Path, temp: Path) -> str:
    """Copies `source` to a new file `temp` (fsynced) and returns the SHA-256 of what was read."""
    digest = hashlib.sha256()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open_regular(source) as reader, os.fdopen(fd, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry itself reaches the disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temp_files(folder: Path) -> int:
    """Removes temporary files left in `folder` by writers that are no longer running."""
    removed = 0
    for entry in folder.iterdir():
        match = _TEMP_NAME.fullmatch(entry.name)
        if match and not process_alive(int(match["pid"])):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def temp_files(store_dir: Path) -> list[Path]:
    """Every temporary file under the store, live or stale (for checks and tests)."""
    return sorted(p for p in store_dir.rglob(f"*{TEMP_SUFFIX}") if _TEMP_NAME.fullmatch(p.name))


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

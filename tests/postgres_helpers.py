"""A throw-away PostgreSQL cluster for tests: real server, temp folder, free port.

PostgreSQL refuses to run as root, so the cluster is made and started as the `postgres`
user (`runuser`), with its data and socket in a temp folder and `fsync=off` (a test
cluster is thrown away, never recovered). Tests that need it skip with a message saying
what to install, through `needs(...)`, unless CI requires every service.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

AS_POSTGRES = ["runuser", "-u", "postgres", "--"]
WHAT = "PostgreSQL (Debian package `postgresql`), root to run it as user postgres, and psycopg"
_names = itertools.count(1)


def _bin_folder() -> str | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's versioned folder."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(found[-1]).parent) if found else ""


def can_run_postgres() -> bool:
    folder = _bin_folder()
    if folder == "" or os.geteuid() != 0 or shutil.which("runuser") is None:
        return False
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


def _tool(name: str) -> str:
    folder = _bin_folder()
    return str(Path(folder) / name) if folder else name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bwv-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres", user: str = "bwv", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.folder.chmod(0o755)
        shutil.chown(self.folder, "postgres")
        # Password login over TCP (so a wrong password can be tested), trust on the socket.
        command = [_tool("initdb"), "-D", str(self.data), "-U", "bwv", "--auth-local=trust"]
        command += ["--auth-host=scram-sha-256", f"--pwfile={self._password_file()}"]
        subprocess.run([*AS_POSTGRES, *command], check=True, capture_output=True)

    def _password_file(self) -> Path:
        path = self.folder / "pw"
        path.write_text("bwv\n")
        shutil.chown(path, "postgres")
        return path

    def pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-k {self.folder} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        command = [_tool("pg_ctl"), "-D", str(self.data), "-o", options]
        command += ["-l", str(self.folder / "log"), "-w", *extra, action]
        subprocess.run([*AS_POSTGRES, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.pg_ctl("start")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(database, password="bwv").replace("+psycopg", "")) as db:
            db.autocommit = True
            cursor = db.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def new_database(self, template: str | None = None) -> str:
        """A fresh database (a copy of `template` when given); returns its URL."""
        name = f"bwv_test_{os.getpid()}_{next(_names)}"
        copy = f" TEMPLATE {template}" if template else ""
        self.sql(f"CREATE DATABASE {name}{copy}")
        return self.url(name, password="bwv")

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_cluster() -> Cluster:
    cluster = Cluster()
    cluster.init()
    cluster.start()
    return cluster

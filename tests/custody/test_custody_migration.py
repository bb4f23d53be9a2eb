"""Revision 0003: on PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE.

The project ships no PostgreSQL driver, so the revision's SQL is run through `psql`
against a throw-away cluster (skipped where PostgreSQL is not installed or we cannot
switch to its user). On SQLite the revision is a documented no-op.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from bwv.core.db import HEAD_REVISION, get_engine

ROOT = Path(__file__).resolve().parents[2]
REVISION = ROOT / "bwv" / "core" / "migrations" / "versions" / "0003_audit_append_only.py"
Psql = Callable[[str], subprocess.CompletedProcess[str]]


def load_revision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("revision_0003", REVISION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _can_run_postgres() -> bool:
    tools = ("initdb", "pg_ctl", "psql", "runuser")
    return os.geteuid() == 0 and all(shutil.which(t) for t in tools)


@pytest.fixture(scope="module")
def psql() -> Iterator[Psql]:
    if not _can_run_postgres():
        pytest.skip("needs PostgreSQL (initdb, pg_ctl, psql) and root to run it as postgres")
    folder = Path(tempfile.mkdtemp(prefix="bwv-pg-"))
    shutil.chown(folder, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    data, options = folder / "data", f"-k {folder} -c listen_addresses=''"
    init = [*as_postgres, "initdb", "-D", str(data), "-A", "trust", "-U", "bwv"]
    subprocess.run(init, check=True, capture_output=True)
    start = ["pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w"]
    subprocess.run([*as_postgres, *start, "start"], check=True, capture_output=True)

    def run(sql: str) -> subprocess.CompletedProcess[str]:
        command = [
            "psql",
            "-h",
            str(folder),
            "-U",
            "bwv",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        return subprocess.run(
            [*command, "-c", sql], capture_output=True, text=True, check=False, timeout=60
        )

    try:
        yield run
    finally:
        stop = ["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run([*as_postgres, *stop], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_refuses_to_change_or_delete_audit_events(psql: Psql) -> None:
    revision = load_revision()
    assert psql("CREATE TABLE auditevent (id integer PRIMARY KEY, actor text)").returncode == 0
    assert psql(revision.FUNCTION).returncode == 0
    for statement in revision.TRIGGERS:
        assert psql(statement).returncode == 0, statement
    assert psql("INSERT INTO auditevent VALUES (1, 'alice'), (2, 'bob')").returncode == 0
    for statement, operation in (
        ("UPDATE auditevent SET actor = 'mallory' WHERE id = 1", "UPDATE"),
        ("DELETE FROM auditevent WHERE id = 2", "DELETE"),
        ("TRUNCATE auditevent", "TRUNCATE"),
    ):
        refused = psql(statement)
        assert refused.returncode != 0
        assert f"auditevent is append-only: {operation} refused" in refused.stderr
    assert "2 rows" in psql("SELECT * FROM auditevent").stdout
    for statement in revision.DROPS:
        assert psql(statement).returncode == 0, statement
    assert psql("DELETE FROM auditevent").returncode == 0


def test_sqlite_catalogue_reaches_the_new_head(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'bwv.db'}")
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == HEAD_REVISION == "0012"

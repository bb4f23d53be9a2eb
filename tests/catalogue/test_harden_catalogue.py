"""`--db` naming something bwv must not use: another application's SQLite file, a catalogue
from a newer bwv, a server database whose driver is missing. One clear line, exit 2,
and the file is left exactly as it was (not a byte written, not switched to WAL).
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bwv.cli import main
from bwv.core.db import HEAD_REVISION, database_url, get_engine


def bwv(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_file(path: Path, *statements: str, wal: bool = False) -> Path:
    with closing(sqlite3.connect(path)) as connection:
        if wal:
            connection.execute("PRAGMA journal_mode = WAL")
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    return path


def assert_refused_untouched(result: Result, path: Path, before: str, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {message}\n"
    assert digest(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no -wal, -shm


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_another_applications_sqlite_file_is_refused_unchanged(tmp_path: Path, wal: bool) -> None:
    path = sqlite_file(
        tmp_path / "notes.sqlite",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        "INSERT INTO notes (body) VALUES ('keep me')",
        wal=wal,
    )
    before = digest(path)
    result = bwv(str(path), "clips")
    assert_refused_untouched(
        result,
        path,
        before,
        f"{path} is not a bwv catalogue (no bwv schema revision; it holds tables notes); "
        "give a new file or a bwv catalogue; nothing was changed",
    )
    with closing(sqlite3.connect(path)) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert tables == [("notes",)] and mode == ("wal" if wal else "delete")


def test_another_applications_alembic_database_is_refused(tmp_path: Path) -> None:
    path = sqlite_file(
        tmp_path / "other.db",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
        "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
        "CREATE TABLE accounts (id INTEGER)",
    )
    before = digest(path)
    assert_refused_untouched(
        bwv(str(path), "report"),
        path,
        before,
        f"{path} is not a bwv catalogue (unknown revision 'ae1027a6acf'; it holds tables "
        "accounts, alembic_version); give a new file or a bwv catalogue; nothing was changed",
    )


def test_catalogue_from_a_newer_bwv_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "bwv.db"
    get_engine(database_url(str(path))).dispose()  # a real catalogue, closed (WAL, no -wal)
    get_engine.cache_clear()  # as a new process would, open it afresh
    sqlite_file(path, "UPDATE alembic_version SET version_num = '0042'")
    before = digest(path)
    for command in (["clips"], ["import", "officers", str(tmp_path / "none.csv")]):
        assert_refused_untouched(
            bwv(str(path), *command),
            path,
            before,
            f"catalogue {path} was made by a newer bwv (schema revision 0042); this bwv knows "
            f"up to {HEAD_REVISION}. Use the newer bwv; nothing was changed",
        )


def test_empty_file_and_current_catalogue_still_open(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert bwv(str(empty), "clips").stdout == "No clips.\n"
    assert bwv(str(empty), "clips").stdout == "No clips.\n"  # now a catalogue: opened again


# The bwv command in a fresh interpreter where the PostgreSQL drivers cannot be imported,
# as on a machine that has none (this project installs psycopg, so it must be hidden).
_WITHOUT_DRIVERS = (
    "import sys; sys.modules['psycopg'] = sys.modules['psycopg2'] = None; "
    "from bwv.cli import main; main(prog_name='bwv')"
)


@pytest.mark.parametrize(
    "url", ["postgresql://u@127.0.0.1:1/x", "postgresql+psycopg2://u@127.0.0.1:1/x"]
)
def test_server_database_without_its_driver_is_one_clear_line(url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DRIVERS, "--db", url, "clips"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        result.stderr.startswith("Error: cannot open catalogue postgresql")
        and "127.0.0.1:1/x: its database driver is not installed (psycopg" in result.stderr
    ), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_malformed_url_is_one_clear_line() -> None:
    result = bwv("postgresql://u@[::1/x", "clips")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: cannot open catalogue postgresql")
    assert len(result.stderr.splitlines()) == 1

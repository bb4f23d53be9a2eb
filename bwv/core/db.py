"""The one engine and the session boundary for the catalogue.

SQLite is the default (a single evidence-unit file); any SQLAlchemy URL works, so the
schema stays portable to PostgreSQL. On SQLite every transaction starts with
`BEGIN IMMEDIATE` so that parallel ingest workers queue on the busy timeout instead of
failing with "database is locked" when a reader upgrades to a writer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session

from bwv.core.errors import CatalogueError

DEFAULT_DB = "bwv.db"
BUSY_TIMEOUT_MS = 120_000
HEAD_REVISION = "0006"
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(db: str | None = None) -> str:
    """Turns `--db`, `BWV_DATABASE_URL` or the default `./bwv.db` into a SQLAlchemy URL."""
    value = db or os.environ.get("BWV_DATABASE_URL") or DEFAULT_DB
    if "://" in value:
        return value
    path = Path(value).expanduser().resolve()
    if not path.parent.is_dir():
        raise CatalogueError(
            f"cannot create catalogue {value}: folder {path.parent} does not exist"
        )
    if path.is_dir():
        raise CatalogueError(f"cannot open catalogue {value}: it is a folder")
    return f"sqlite:///{path}"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Leave transaction control to the "begin" hook below rather than to pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


READ_ONLY = "bwv_read_only"


def _on_sqlite_begin(connection: Any) -> None:
    # A reader takes no write lock, so long reports never hold up ingest or each other.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


_ENGINES: list[Engine] = []


@cache
def get_engine(url: str) -> Engine:
    """The process's engine for `url`, migrated to the current schema."""
    try:
        engine = create_engine(url)
        _ENGINES.append(engine)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
        migrate(engine)
    except (SQLAlchemyError, DBAPIError, OSError) as exc:
        raise CatalogueError(f"cannot open catalogue {_redacted(url)}: {_reason(exc)}") from exc
    return engine


def dispose_engines() -> None:
    """Closes every pooled connection this process opened (a clean end for SQLite)."""
    for engine in _ENGINES:
        engine.dispose()


def migrate(engine: Engine) -> None:
    """Brings the schema to the head revision; a no-op read when it is already there."""
    with engine.begin() as connection:
        if _current_revision(connection) == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _current_revision(connection: Any) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise CatalogueError(f"catalogue write failed: {_reason(exc)}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One read-only transaction: a consistent snapshot that holds no write lock."""
    session = Session(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
    try:
        yield session
    except SQLAlchemyError as exc:
        raise CatalogueError(f"catalogue read failed: {_reason(exc)}") from exc
    finally:
        session.rollback()
        session.close()


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0]


def _redacted(url: str) -> str:
    """Hides a password in a URL before it is shown to the user."""
    if "@" not in url or "://" not in url:
        return url.removeprefix("sqlite:///")
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"

"""The one engine and the session boundary for the catalogue.

SQLite is the default (a single evidence-unit file); PostgreSQL (`postgresql://...`,
driven by psycopg 3) is the catalogue a force shares between ingest workers on many
machines. On SQLite every transaction starts with `BEGIN IMMEDIATE` so that parallel
ingest workers queue on the busy timeout instead of failing with "database is locked"
when a reader upgrades to a writer. On PostgreSQL a read is one REPEATABLE READ
snapshot, and a report's parallel parts can share one exported snapshot, so what they
read together is one instant of the catalogue however many workers write meanwhile.

A database bwv did not make is never changed: one that holds other tables and no bwv
schema revision (another application's file given by mistake), or one at a revision
newer than this bwv knows, is refused before anything is written. A SQLite file not yet
in WAL mode is looked at through a read-only connection first, because the connect hook
switches the file to WAL (a write) before any query could look.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext, suppress
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session

from bwv.core.errors import CatalogueBusy, CatalogueError

DEFAULT_DB = "bwv.db"
BUSY_TIMEOUT_MS = 120_000
HEAD_REVISION = "0012"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_WAL_HEADER = b"\x02\x02"  # bytes 18-19 of a SQLite file in WAL mode


def database_url(db: str | None = None) -> str:
    """Turns `--db`, `BWV_DATABASE_URL` or the default `./bwv.db` into a SQLAlchemy URL."""
    value = db or os.environ.get("BWV_DATABASE_URL") or DEFAULT_DB
    if "://" in value:
        return _with_driver(value)
    path = Path(value).expanduser().resolve()
    if not path.parent.is_dir():
        raise CatalogueError(
            f"cannot create catalogue {value}: folder {path.parent} does not exist"
        )
    if path.is_dir():
        raise CatalogueError(f"cannot open catalogue {value}: it is a folder")
    return f"sqlite:///{path}"


# The PostgreSQL driver bwv ships; plain `postgresql://` (libpq's own spelling) means it too.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _with_driver(url: str) -> str:
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Leave transaction control to the "begin" hook below rather than to pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_postgres_connect(dbapi_connection: Any, _record: Any) -> None:
    # No JIT compilation: the per-clip subqueries of the report's and linking's set-based
    # reads push their cost estimates past `jit_above_cost`, and compiling them took longer
    # (0.6 s for each 10,000 incidents judged) than running them.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


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
        _check_sqlite_file(url)
        engine = _create(url)
        _ENGINES.append(engine)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
        elif engine.dialect.name == "postgresql":
            event.listen(engine, "connect", _on_postgres_connect)
        _migrate_or_close(engine)
    except ImportError as exc:  # the URL names a database whose driver is not installed
        raise CatalogueError(
            f"cannot open catalogue {_redacted(url)}: its database driver is not installed "
            f"({exc.name or exc})"
        ) from None
    except (SQLAlchemyError, DBAPIError, OSError, sqlite3.Error, ValueError) as exc:
        raise CatalogueError(_open_failure(url, exc)) from exc
    return engine


def _create(url: str) -> Engine:
    if make_url(url).get_backend_name() != "postgresql":
        return create_engine(url)
    # A restarted server leaves dead connections in the pool: each is tested before use.
    # The connect timeout makes an unreachable host one quick line, not a long hang.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _open_failure(url: str, exc: BaseException) -> str:
    """One line; for a server, which host and port could not be used and why."""
    if not isinstance(exc, DBAPIError):  # not the server's answer: a bad URL, a bad file
        return f"cannot open catalogue {_redacted(url)}: {_reason(exc)}"
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return f"cannot open catalogue {_redacted(url)}: {_reason(exc)}"
    host = parsed.host or parsed.query.get("host") or "local socket"
    where = f"{host}:{parsed.port or 5432}"
    reason = _reason(exc).removeprefix("connection failed: ")
    if "password" in reason or "authentication" in reason:
        return f"PostgreSQL at {where} refused user {parsed.username!r}: {reason}"
    return f"cannot reach PostgreSQL at {where}: {reason}"


def _check_sqlite_file(url: str) -> None:
    """Refuses a SQLite file bwv did not make, read-only, before the connect hook writes."""
    path = _sqlite_file(url)
    if path is None:
        return
    with path.open("rb") as handle:
        if handle.read(20)[18:20] == SQLITE_WAL_HEADER:
            return  # already WAL: connecting changes nothing, and `migrate` checks it
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as connection:
        tables = {row[0] for row in connection.execute(_TABLES)}
        revision = None
        if "alembic_version" in tables:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        check_schema(tables, revision[0] if revision else None, str(path))


_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"


def _sqlite_file(url: str) -> Path | None:
    """The existing, non-empty file of a SQLite URL; None for new files and other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return path if path.is_file() and path.stat().st_size > 0 else None


def known_revisions() -> list[str]:
    """The schema revisions this bwv's migrations know, oldest first."""
    return sorted(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def check_schema(tables: set[str], revision: str | None, name: str) -> None:
    """Refuses a database that is neither empty nor a bwv catalogue this bwv can migrate."""
    if revision in known_revisions() or not tables - {"alembic_version"}:
        return
    if revision is not None and revision.isdigit() and revision > HEAD_REVISION:
        raise CatalogueError(
            f"catalogue {name} was made by a newer bwv (schema revision {revision}); "
            f"this bwv knows up to {HEAD_REVISION}. Use the newer bwv; nothing was changed"
        )
    what = "no bwv schema revision" if revision is None else f"unknown revision {revision!r}"
    listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise CatalogueError(
        f"{name} is not a bwv catalogue ({what}; it holds tables {listed}); "
        "give a new file or a bwv catalogue; nothing was changed"
    )


def _migrate_or_close(engine: Engine) -> None:
    """Migrates `engine`; a refused or failed database is let go at once, not held open."""
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise


def dispose_engines() -> None:
    """Closes every pooled connection this process opened (a clean end for SQLite)."""
    for engine in _ENGINES:
        engine.dispose()


def migrate(engine: Engine) -> None:
    """Brings the schema to the head revision; a no-op read when it is already there."""
    with engine.begin() as connection:
        revision = _current_revision(connection)
        if revision == HEAD_REVISION:
            return
        tables = set(inspect(connection).get_table_names())
        check_schema(tables, revision, _redacted(str(engine.url)))
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


# Writers of one process (the web server's threads) take turns here rather than on
# SQLite's busy handler, which sleeps up to 100 ms between tries: a page view's audit
# event waits only for the writes before it. Other processes still queue on the timeout.
_WRITERS = threading.RLock()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    turn = _WRITERS if engine.dialect.name == "sqlite" else nullcontext()
    with turn:
        session = Session(engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            _rollback(session)
            kind = CatalogueBusy if transient(exc) else CatalogueError
            raise kind(f"catalogue write failed: {_reason(exc)}") from exc
        except BaseException:
            _rollback(session)
            raise
        finally:
            session.close()


_READ_ONLY_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _read_only(engine: Engine) -> Engine:
    """The engine whose transactions start as readers (made once per engine, not per read)."""
    found = _READ_ONLY_ENGINES.get(engine)
    if found is None:
        options: dict[str, Any] = {READ_ONLY: True}
        if is_postgres(engine):
            options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        found = _READ_ONLY_ENGINES[engine] = engine.execution_options(**options)
    return found


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """`session_scope` as a plain Core connection (the same turn, BEGIN IMMEDIATE, commit or
    rollback), for a write that needs no ORM objects: the web's audited page views."""
    turn = _WRITERS if engine.dialect.name == "sqlite" else nullcontext()
    with turn:
        try:
            with engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            kind = CatalogueBusy if transient(exc) else CatalogueError
            raise kind(f"catalogue write failed: {_reason(exc)}") from exc


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One read-only transaction: a consistent snapshot that holds no write lock.

    On PostgreSQL inside `shared_snapshot`, the transaction adopts that snapshot, so
    the parts of one report read the same instant even in other processes.
    """
    session = Session(_read_only(engine), expire_on_commit=False)
    try:
        if is_postgres(engine) and _SNAPSHOT:
            session.connection().exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{_SNAPSHOT[0]}'")
        yield session
    except SQLAlchemyError as exc:
        kind = CatalogueBusy if transient(exc) else CatalogueError
        raise kind(f"catalogue read failed: {_reason(exc)}") from exc
    finally:
        _rollback(session)
        session.close()


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """`read_scope` as a plain Core connection, for the small lookups a web server makes
    on every request (the session, the catalogue's last change): a third of the cost."""
    try:
        with _read_only(engine).connect() as connection:  # rolled back when closed
            yield connection
    except SQLAlchemyError as exc:
        kind = CatalogueBusy if transient(exc) else CatalogueError
        raise kind(f"catalogue read failed: {_reason(exc)}") from exc


def _rollback(session: Session) -> None:
    # On a connection the server dropped, rolling back fails too; the error that
    # brought us here is the one to report, and the pool discards the connection.
    with suppress(SQLAlchemyError):
        session.rollback()


# SQLSTATE classes worth another try: connection exceptions (08), transaction rollback
# (40: serialization failure, deadlock) and operator intervention (57P: shutdown, restart).
_TRANSIENT_STATES = ("08", "40", "57P")


def transient(exc: BaseException) -> bool:
    """True for a database error that may succeed if the transaction is run again."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    original = getattr(exc, "orig", None)
    state = getattr(original, "sqlstate", None) or ""
    if state.startswith(_TRANSIENT_STATES):
        return True
    # psycopg's OperationalError without a state: the link to the server broke mid-way.
    if type(original).__module__.startswith("psycopg") and type(original).__name__ in (
        "OperationalError",
        "InterfaceError",
    ):
        return True
    return "database is locked" in str(exc) or "server closed the connection" in str(exc)


# The exported snapshot of the `shared_snapshot` in force in this process (inherited by
# forked workers); empty when none is.
_SNAPSHOT: list[str] = []


@contextmanager
def shared_snapshot(engine: Engine) -> Iterator[None]:
    """Every `read_scope` inside reads one instant of the catalogue (PostgreSQL).

    The snapshot is exported by a transaction held open for the whole block; readers in
    this process or its forked workers adopt it. On SQLite this does nothing: its
    readers are not shared a snapshot, and its ingest has one writer at a time.
    """
    if not is_postgres(engine) or _SNAPSHOT:
        yield
        return
    with read_scope(engine) as holder:
        _SNAPSHOT.append(
            holder.connection().exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        )
        try:
            yield
        finally:
            _SNAPSHOT.clear()


def advisory_lock(session: Session | Connection, name: str) -> None:
    """Waits for, then holds until the transaction ends, the lock called `name`.

    PostgreSQL lets writers run side by side; this makes the ones that take the same
    lock queue instead. SQLite's writers already queue (`BEGIN IMMEDIATE`): a no-op.
    """
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0]


def _redacted(url: str) -> str:
    """Hides a password in a URL before it is shown to the user."""
    if "@" not in url or "://" not in url:
        return url.removeprefix("sqlite:///")
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"

"""Shared fixtures: the committed sample media, catalogued once with the real model."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from bwv.cli import main

if TYPE_CHECKING:
    from postgres_helpers import Cluster

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_media"
SHARED_DATA = ROOT.parent / "shared" / "data"


def needs(available: bool, what: str) -> None:
    """Skips a test whose real service or tool is absent here, with a message saying what
    to install; under CI (`BWV_REQUIRE_SERVICES=1`, set by .ci/run) that is a failure."""
    if available:
        return
    if os.environ.get("BWV_REQUIRE_SERVICES") == "1":
        pytest.fail(f"needs {what}, and BWV_REQUIRE_SERVICES=1 forbids skipping it")
    pytest.skip(f"needs {what}")


# Tests that need these fixtures run the Whisper model over the sample media.
SLOW_FIXTURES = frozenset({"catalogue", "media_copy"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `slow` every test that uses the model-built catalogue, so `-m "not slow"`
    is the fast suite without a list to keep up to date."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees London local time and the built-in policy and settings."""
    monkeypatch.setenv("BWV_TIMEZONE", "Europe/London")
    for name in ("BWV_POLICY", "BWV_CONFIG", "BWV_DATABASE_URL", "BWV_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throw-away PostgreSQL cluster for the whole session (skips where absent)."""
    from postgres_helpers import WHAT, can_run_postgres, start_cluster

    needs(can_run_postgres(), WHAT)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: Cluster) -> str:
    """The name of a database the real migrations built once; tests copy it."""
    from bwv.core.db import get_engine

    url = postgres.new_database()
    get_engine(url).dispose()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def postgres_url(postgres: Cluster, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL catalogue of the test's own, dropped at the end."""
    from bwv.core.db import get_engine

    url = postgres.new_database(template=postgres_template)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        postgres.drop_database(url)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated catalogue in the test's own folder: SQLite, and PostgreSQL where
    it is installed (`compliance_helpers.catalogue_arg` names it for `--db`)."""
    from compliance_helpers import POSTGRES_URLS, make_engine

    if request.param == "postgresql":
        POSTGRES_URLS[tmp_path] = request.getfixturevalue("postgres_url")
    try:
        yield make_engine(tmp_path)
    finally:
        POSTGRES_URLS.pop(tmp_path, None)


@pytest.fixture(scope="session")
def sample_media() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def media_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the sample media, so tests can prove originals stay untouched."""
    target = tmp_path_factory.mktemp("media") / "sample_media"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.py", "*.md", "*.csv"))
    return target


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory, media_copy: Path) -> dict[str, object]:
    """The sample media ingested once (real Whisper model, real SQLite) for read-only tests."""
    db = tmp_path_factory.mktemp("catalogue") / "bwv.db"
    result = CliRunner().invoke(
        main, ["--db", str(db), "ingest", "--workers", "1", str(media_copy)]
    )
    return {"db": db, "result": result, "media": media_copy}


@pytest.fixture(scope="session")
def invoke():  # type: ignore[no-untyped-def]
    """Runs `bwv ARGS...` in-process and returns click's Result."""

    def _invoke(*args: object):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, [str(a) for a in args])

    return _invoke


def ingest_with_store(tmp_path: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """Copies of the named sample files ingested (no transcription) with an evidence store."""
    media = tmp_path / "media"
    media.mkdir()
    for name in names:
        shutil.copy(SAMPLES / name, media / name)
    db, store = tmp_path / "bwv.db", tmp_path / "store"
    args = ["--db", str(db), "ingest", "--no-transcribe", "--workers", "1", "--store", str(store)]
    result = CliRunner().invoke(main, [*args, str(media)])
    assert result.exit_code == 0, result.output
    return {"db": db, "media": media, "store": store}

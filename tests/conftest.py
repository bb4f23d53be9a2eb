"""Shared fixtures: the committed sample media, catalogued once with the real model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from bwv.cli import main

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


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A fresh, migrated SQLite catalogue in the test's own folder."""
    from compliance_helpers import make_engine

    return make_engine(tmp_path)


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

"""A small real catalogue for the web tests: one incident, one playable clip, four users."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compliance_helpers import add_clip, relink, standard_incident
from sqlalchemy import Engine

from bwv.core.db import database_url, get_engine, session_scope
from bwv.core.models import Clip, Example, TranscriptSegment, utc_now
from bwv.services.users import add_user

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_media" / "X60390008_20240116_093000.mp4"
PASSWORD = "a long enough password"
ROLES = ("evidence_officer", "inspector", "trainer", "admin")


@dataclass(frozen=True)
class Site:
    engine: Engine
    clip_id: int
    media: Path
    approved: int  # an example an inspector approved
    pending: int  # one not yet approved


# One site built per distinct `notes` in a test session, then copied into each test's own
# catalogue: users' argon2 hashes and the rows cost about a second a site to make.
_TEMPLATES: dict[str, Site] = {}


def build_site(engine: Engine, folder: Path, notes: str = "") -> Site:
    """The site in `engine`'s (new, empty) catalogue; its media file is shared read-only."""
    template = _TEMPLATES.get(notes)
    if template is None:
        made = Path(tempfile.mkdtemp(prefix="bwv-web-site-"))
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        template = _TEMPLATES[notes] = _make_site(
            get_engine(database_url(str(made / "bwv.db"))), made, notes
        )
    _copy_catalogue(template.engine, engine)
    return replace(template, engine=engine)


def _copy_catalogue(source: Engine, target: Engine) -> None:
    if target.dialect.name == "postgresql":
        _copy_rows(source, target)
        return
    source_path, target_path = source.url.database, target.url.database
    assert source_path and target_path, "web test sites are SQLite files"
    target.dispose()
    with sqlite3.connect(source_path) as reading, sqlite3.connect(target_path) as writing:
        reading.backup(writing)


def _copy_rows(source: Engine, target: Engine) -> None:
    """The site's rows into a PostgreSQL catalogue, table by table, ids kept; each id
    sequence then moves past the copied ids, so the test's own inserts do not collide
    (a table keyed by text, such as a redaction job's, has no sequence)."""
    from sqlalchemy import Integer, insert, inspect, select, text
    from sqlmodel import SQLModel

    with source.connect() as reading, target.begin() as writing:
        for table in SQLModel.metadata.sorted_tables:
            rows = [dict(row._mapping) for row in reading.execute(select(table))]
            if rows:
                writing.execute(insert(table), rows)
            serial = "id" in table.c and isinstance(table.c.id.type, Integer)
            if serial and inspect(writing).has_table(table.name):
                writing.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                        f'coalesce((SELECT max(id) FROM "{table.name}"), 0) + 1, false)'
                    )
                )


def _make_site(engine: Engine, folder: Path, notes: str) -> Site:
    media = folder / SAMPLE.name
    shutil.copyfile(SAMPLE, media)
    media.chmod(0o444)
    with session_scope(engine) as session:
        standard_incident(session)
        clip_id = add_clip(
            session, serial="CAM1", start="2024-01-16T10:00:10", seconds=20, speech=12, child=0.0
        )
        clip = session.get(Clip, clip_id)
        assert clip is not None
        clip.path, clip.file_name = str(media), media.name
        session.add(clip)
        for start, text, p in ((0.5, "Hello, can you tell me", 0.2), (6.0, "He shouted", 0.6)):
            session.add(
                TranscriptSegment(
                    clip_id=clip_id,
                    start_s=start,
                    end_s=start + 4,
                    text=text,
                    confidence=-0.2,
                    child_probability=p,
                )
            )
        approved = Example(
            clip_id=clip_id,
            start_s=6,
            end_s=10,
            practice="good",
            tags="rapport",
            notes=notes,
            actor="t1",
            approved_by="i1",
            approved_at=utc_now(),
        )
        pending = Example(clip_id=clip_id, start_s=1, end_s=3, practice="poor", actor="t1")
        session.add_all([approved, pending])
        session.flush()
        ids = (approved.id, pending.id)
    relink(engine)
    for role in ROLES:
        add_user(role, role, PASSWORD, engine=engine, actor="setup")
    assert ids[0] is not None and ids[1] is not None
    return Site(engine, clip_id, media, ids[0], ids[1])


def client_for(site: Site, role: str | None) -> tuple[Any, str]:
    """A TestClient over the app, signed in as `role`, and its CSRF token."""
    from fastapi.testclient import TestClient

    from bwv.web.app import create_app

    client = TestClient(create_app(site.engine), follow_redirects=False)
    if role is None:
        return client, ""
    answer = client.post("/login", data={"name": role, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client, csrf_of(
        client.get(
            "/examples"
            if role == "trainer"
            else "/admin/users"
            if role == "admin"
            else "/incidents"
        ).text
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@contextmanager
def serving(db: Path, *options: str) -> Iterator[str]:
    """A real `bwv serve` process over `db` on a free port of 127.0.0.1; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-c", "from bwv.cli import run; run()", "--db", str(db),
               "serve", "--port", str(port), *options]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        _wait_for(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"bwv serve ended: {server.stderr.read() if server.stderr else ''}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("bwv serve did not start listening within 60 s")

"""The Redact page on a PostgreSQL catalogue: its detections and renders are queue jobs
that a `bwv worker` process takes, so they outlive the web app and a dead worker.

A real throw-away cluster, the committed faces clip ingested into it with a store, the
web app under FastAPI's TestClient, and real `bwv worker` subprocesses (4 s stall
timeout, as in test_scale_postgres); nothing of the database or the queue is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from test_scale_postgres import bwv, start_worker, stop

from bwv.core.db import get_engine, read_scope
from bwv.services.users import add_user

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

CLIP = Path(__file__).resolve().parents[1] / "redact" / "data" / "faces.mp4"
PASSWORD = "a long enough password"


@pytest.fixture
def site(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The faces clip catalogued in PostgreSQL with a store; an evidence officer."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(CLIP, media / "faces.mp4")
    store = tmp_path / "store"
    done = bwv(postgres_url, "ingest", "--no-transcribe", "--workers", "1", "--store", store, media)
    assert done.returncode == 0, done.stderr
    engine = get_engine(postgres_url)
    add_user("officer", "evidence_officer", PASSWORD, engine=engine, actor="setup")
    yield {"url": postgres_url, "engine": engine, "media": media, "store": store}


def officer(site: dict[str, Any]) -> tuple[Any, str]:
    from fastapi.testclient import TestClient

    from bwv.web.app import create_app

    browser = TestClient(create_app(site["engine"]), follow_redirects=False)
    assert browser.post("/login", data={"name": "officer", "password": PASSWORD}).status_code == 303
    page = browser.get("/clips/1/redact").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    return browser, token


def start(browser: Any, token: str, kind: str, **form: Any) -> str:
    answer = browser.post(f"/clips/1/redact/{kind}", data={"csrf_token": token, **form})
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"]).split("job=")[1]


def fragment(browser: Any, job: str) -> str:
    return str(browser.get(f"/clips/1/redact/jobs/{job}").text)


def wait_until(predicate: Any, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def sql(site: dict[str, Any], query: str) -> list[tuple[Any, ...]]:
    with read_scope(site["engine"]) as session:
        return [tuple(row) for row in session.execute(text(query)).all()]


def redact_jobs(site: dict[str, Any]) -> list[str]:
    query = "SELECT status::text FROM procrastinate_jobs WHERE queue_name = 'redact'"
    return [row[0] for row in sql(site, query + " ORDER BY id")]


def store_files(site: dict[str, Any]) -> set[str]:
    return {str(p.relative_to(site["store"])) for p in site["store"].rglob("*") if p.is_file()}


def test_page_jobs_are_queued_once_and_a_worker_runs_them(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser, token = officer(site)
    detect = start(browser, token, "detect")
    assert start(browser, token, "detect") == detect  # a double click: the same job
    muted = start(browser, token, "render", mute="3-4", reason="training")
    assert start(browser, token, "render", mute="3-4", reason="training") == muted
    other = browser.post(
        "/clips/1/redact/render", data={"csrf_token": token, "mute": "5-6", "reason": "r"}
    )  # another render while one waits: refused by the queueing lock, not queued
    assert other.status_code == 400 and "already waiting for a worker" in other.text
    assert redact_jobs(site) == ["todo", "todo"]
    assert sql(site, "SELECT count(*) FROM redactionjob") == [(2,)]
    assert 'class="job queued"' in fragment(browser, detect)
    worker = start_worker(site["url"], tmp_path / "w.log")
    try:
        wait_until(lambda: 'class="job done"' in fragment(browser, detect))
        assert "face tracks" in fragment(browser, detect)
        form = {"faces": ["T1"], "mute": "1-2", "reason": "training"}
        render = start(browser, token, "render", **form)
        wait_until(lambda: 'class="job done"' in fragment(browser, render))
        wait_until(lambda: 'class="job done"' in fragment(browser, muted))
    finally:
        stop(worker)
    assert redact_jobs(site) == ["succeeded"] * 3
    made = sql(site, "SELECT id, path, actor, tracks FROM redaction ORDER BY id")
    assert [(actor, tracks) for _, _, actor, tracks in made] == [("officer", ""), ("officer", "T1")]
    redaction_id = next(row[0] for row in made if row[3] == "T1")
    assert f"redaction {redaction_id}" in fragment(browser, render)
    assert all(Path(row[1]).is_file() for row in made)
    assert f"/redactions/{redaction_id}/media" in browser.get("/clips/1/redact").text
    events = sql(site, "SELECT action, actor FROM auditevent WHERE action LIKE '%redact%'")
    events += sql(site, "SELECT action, actor FROM auditevent WHERE action LIKE 'face_detect%'")
    assert sorted(a for a, actor in events if actor == "officer") == [
        "face_detect",  # written by the worker, as the user who asked
        "face_detect_request",  # one per click that started a job (not the double click)
        "redact",
        "redact",
        "redact_request",
        "redact_request",  # not the third render, refused before anything was written
        "redact_view",
        "redact_view",
    ]
    status = json.loads(bwv(site["url"], "queue", "status", "--json").stdout)
    row = next(r for r in status if r["queue"] == "redact")
    assert (row["pending"], row["running"], row["failed"], row["done"]) == (0, 0, 0, 3)
    assert bwv(site["url"], "audit", "verify").returncode == 0


def test_a_render_whose_worker_dies_runs_again_and_leaves_no_trace(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser, token = officer(site)
    before = store_files(site)
    render = start(browser, token, "render", mute="1-9", reason="training")
    doomed = start_worker(site["url"], tmp_path / "doomed.log")
    try:
        wait_until(lambda: "render <progress" in fragment(browser, render))
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)  # the machine is lost mid-render
        doomed.wait()
    assert store_files(site) == before  # nothing partial in the store
    assert sql(site, "SELECT count(*) FROM redaction") == [(0,)]
    assert redact_jobs(site) == ["doing"]
    survivor = start_worker(site["url"], tmp_path / "survivor.log")
    try:
        wait_until(lambda: 'class="job done"' in fragment(browser, render))
    finally:
        stop(survivor)
    assert sql(site, "SELECT count(*) FROM redaction") == [(1,)]
    assert redact_jobs(site) == ["succeeded"]
    assert len(store_files(site) - before) == 2  # the copy and its log, once
    assert bwv(site["url"], "audit", "verify").returncode == 0


def test_a_render_of_an_original_gone_fails_with_its_reason_once(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser, token = officer(site)
    render = start(browser, token, "render", mute="1-2", reason="training")
    for copy in [site["media"] / "faces.mp4", *site["store"].rglob("*.mp4")]:
        copy.unlink()  # the original and its store copy are gone before a worker starts
    worker = start_worker(site["url"], tmp_path / "w.log")
    try:
        wait_until(lambda: 'class="job failed"' in fragment(browser, render))
        shown = fragment(browser, render)
        wait_until(lambda: redact_jobs(site) == ["succeeded"])
    finally:
        stop(worker)
    assert "neither the original nor a store copy" in shown
    assert f"(on worker {socket.gethostname()})" in shown
    assert sql(site, "SELECT count(*) FROM redaction") == [(0,)]


def test_a_render_survives_the_database_restarting_under_it(site, tmp_path: Path, postgres) -> None:  # type: ignore[no-untyped-def]
    browser, token = officer(site)
    render = start(browser, token, "render", mute="1-9", reason="training")
    worker = start_worker(site["url"], tmp_path / "w.log")
    try:
        wait_until(lambda: "render <progress" in fragment(browser, render))
        site["engine"].dispose()
        postgres.restart()
        wait_until(lambda: 'class="job done"' in fragment(browser, render))
        wait_until(lambda: redact_jobs(site) == ["succeeded"])
    finally:
        stop(worker)
    assert sql(site, "SELECT count(*) FROM redaction") == [(1,)]
    assert bwv(site["url"], "audit", "verify").returncode == 0

"""The Redact page over HTTP: who may use it, its background jobs, preview, trainers' copies.

A real catalogue: the committed faces clip ingested with a store and its faces detected
by the real model; users with real argon2 hashes; the app under FastAPI's TestClient.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlmodel import select
from web_helpers import PASSWORD, ROLES, csrf_of

from bwv.cli import main
from bwv.core.db import database_url, get_engine, session_scope
from bwv.core.models import AuditEvent, Example, Redaction, utc_now
from bwv.services.users import add_user

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

CLIP = Path(__file__).resolve().parents[1] / "redact" / "data" / "faces.mp4"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("web-redact")
    (root / "media").mkdir()
    shutil.copy(CLIP, root / "media" / "faces.mp4")
    db = root / "bwv.db"
    base = ["--db", str(db)]
    runner = CliRunner()
    done = runner.invoke(
        main,
        [
            *base,
            "ingest",
            "--no-transcribe",
            "--workers",
            "1",
            "--store",
            str(root / "store"),
            str(root / "media"),
        ],
    )
    assert done.exit_code == 0, done.output
    assert runner.invoke(main, [*base, "redact", "detect", "1"]).exit_code == 0
    engine = get_engine(database_url(str(db)))
    for role in ROLES:
        add_user(role, role, PASSWORD, engine=engine, actor="setup")
    with session_scope(engine) as session:
        example = Example(
            clip_id=1,
            start_s=1,
            end_s=4,
            practice="good",
            actor="trainer",
            approved_by="inspector",
            approved_at=utc_now(),
        )
        session.add(example)
        session.flush()
        example_id = example.id
    return {"engine": engine, "example": example_id, "root": root}


def client(site: dict[str, Any], role: str) -> tuple[Any, str]:
    from fastapi.testclient import TestClient

    from bwv.web.app import create_app

    browser = TestClient(create_app(site["engine"]), follow_redirects=False)
    assert browser.post("/login", data={"name": role, "password": PASSWORD}).status_code == 303
    home = {"trainer": "/examples", "admin": "/admin/users"}.get(role, "/incidents")
    return browser, csrf_of(browser.get(home).text)


@pytest.mark.parametrize(
    ("role", "status"),
    [("evidence_officer", 200), ("inspector", 200), ("trainer", 403), ("admin", 403)],
)
def test_only_evidence_officers_and_inspectors_may_redact(site, role: str, status: int) -> None:  # type: ignore[no-untyped-def]
    browser, token = client(site, role)
    for path in (
        "/clips/1/redact",
        "/clips/1/redact/tracks/T1.jpg",
        "/clips/1/redact/preview.jpg?t=1&faces=T1",
    ):
        assert browser.get(path).status_code == status, path
    answer = browser.post(
        "/clips/1/redact/render", data={"csrf_token": token, "faces": "T1", "reason": "r"}
    )
    assert answer.status_code == (303 if status == 200 else 403)
    if status == 200:
        _wait(browser, answer.headers["location"])


def test_the_page_shows_each_track_with_its_thumbnail(site) -> None:  # type: ignore[no-untyped-def]
    browser, _ = client(site, "inspector")
    page = browser.get("/clips/1/redact").text
    assert 'value="T1"' in page and 'value="T2"' in page and "/redact/tracks/T2.jpg" in page
    thumb = browser.get("/clips/1/redact/tracks/T2.jpg")
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    assert browser.get("/clips/1/redact/tracks/T9.jpg").status_code == 404
    assert browser.get("/clips/1/redact/tracks/..%2F..%2Fbwv.db.jpg").status_code == 404


def test_the_preview_hides_the_ticked_face(site) -> None:  # type: ignore[no-untyped-def]
    browser, _ = client(site, "inspector")
    plain = browser.get("/clips/1/redact/preview.jpg?t=6")
    hidden = browser.get("/clips/1/redact/preview.jpg?t=6&faces=T1,T2")
    assert plain.status_code == hidden.status_code == 200
    assert plain.content != hidden.content
    assert browser.get("/clips/1/redact/preview.jpg?t=6&faces=T7").status_code == 400
    assert browser.get("/clips/1/redact/preview.jpg?t=-5").status_code == 400


def test_bad_choices_are_refused_on_the_page_and_nothing_renders(site) -> None:  # type: ignore[no-untyped-def]
    browser, token = client(site, "evidence_officer")
    before = _redactions(site)
    unknown = browser.post(
        "/clips/1/redact/render", data={"csrf_token": token, "faces": "T9", "reason": "r"}
    )
    assert unknown.status_code == 400 and "unknown face track T9" in unknown.text
    no_csrf = browser.post("/clips/1/redact/render", data={"faces": "T1", "reason": "r"})
    assert no_csrf.status_code == 403
    words = browser.post(
        "/clips/1/redact/render", data={"csrf_token": token, "words": "Daniel", "reason": "r"}
    )
    assert words.status_code == 400 and "has no transcript" in words.text
    bad_kind = browser.post("/clips/1/redact/erase", data={"csrf_token": token})
    assert bad_kind.status_code == 400
    assert _redactions(site) == before


def _redactions(site: dict[str, Any]) -> int:
    with session_scope(site["engine"]) as session:
        return len(session.exec(select(Redaction)).all())


def _wait(browser: Any, location: str) -> str:
    job = location.split("job=")[1]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        fragment = browser.get(f"/clips/1/redact/jobs/{job}").text
        if 'class="job running"' not in fragment and 'class="job queued"' not in fragment:
            return fragment
        time.sleep(0.5)
    raise AssertionError("the background job did not finish")


def test_trainers_play_only_the_redacted_copy(site) -> None:  # type: ignore[no-untyped-def]
    trainer, _ = client(site, "trainer")
    media = f"/examples/{site['example']}/media"
    if _redactions(site) == 0:
        assert trainer.get(media).status_code == 403  # no copy yet: nothing, not the original
        officer, token = client(site, "evidence_officer")
        started = officer.post(
            "/clips/1/redact/render",
            data={"csrf_token": token, "faces": ["T1", "T2"], "mute": "1-2", "reason": "training"},
        )
        assert "done" in _wait(officer, started.headers["location"])
    with session_scope(site["engine"]) as session:
        latest = session.exec(select(Redaction).order_by(Redaction.id.desc())).first()  # type: ignore[union-attr]
        assert latest is not None
        copy_sha = latest.sha256
    played = trainer.get(media)
    assert played.status_code == 200
    assert hashlib.sha256(played.content).hexdigest() == copy_sha
    assert (
        hashlib.sha256(played.content).hexdigest() != hashlib.sha256(CLIP.read_bytes()).hexdigest()
    )
    part = trainer.get(media, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert trainer.get("/clips/1/media").status_code == 403
    officer, _ = client(site, "evidence_officer")
    assert officer.get(f"/redactions/{latest.id}/media").content == played.content
    with session_scope(site["engine"]) as session:
        events = session.exec(
            select(AuditEvent).where(
                AuditEvent.action.in_(  # type: ignore[attr-defined]
                    ["play", "redact_view", "redact"]
                )
            )
        ).all()
        seen = {(e.actor, e.action, e.object_ids) for e in events}
    assert ("trainer", "play", f"clip:1,example:{site['example']}") in seen
    assert ("evidence_officer", "play", f"redaction:{latest.id}") in seen
    assert any(a == "redact_view" and o == "clip:1" for _u, a, o in seen)
    assert trainer.get(f"/redactions/{latest.id}/media").status_code == 403


def test_a_job_left_running_by_a_stopped_web_app_shows_as_interrupted(site) -> None:  # type: ignore[no-untyped-def]
    """On SQLite the web app's own thread runs a job: a row it left `running` when its
    process ended is shown failed, and asking again starts a new job."""
    import json
    import socket
    import subprocess
    from dataclasses import asdict

    from bwv.core.models import RedactionJob
    from redact.plan import Choices

    ended = subprocess.Popen(["true"])
    ended.wait()
    choices = Choices(mute=((1.0, 2.0),), reason="stale")
    with session_scope(site["engine"]) as session:
        session.add(
            RedactionJob(
                id="0123456789abcdef",
                clip_id=1,
                kind="render",
                actor="evidence_officer",
                choices_json=json.dumps(asdict(choices), sort_keys=True),
                state="running",
                stage="render",
                runner=f"{socket.gethostname()}:{ended.pid}",
            )
        )
    browser, token = client(site, "evidence_officer")
    shown = browser.get("/clips/1/redact/jobs/0123456789abcdef").text
    assert 'class="job failed"' in shown and "interrupted" in shown
    assert "/redact/jobs/0123456789abcdef" not in browser.get("/clips/1/redact").text
    again = browser.post(
        "/clips/1/redact/render", data={"csrf_token": token, "mute": "1-2", "reason": "stale"}
    )
    assert again.status_code == 303 and "0123456789abcdef" not in again.headers["location"]
    twice = browser.post(  # a double click while it renders (seconds): the same job
        "/clips/1/redact/render", data={"csrf_token": token, "mute": "1-2", "reason": "stale"}
    )
    assert twice.headers["location"] == again.headers["location"]
    assert "done" in _wait(browser, again.headers["location"])
    assert browser.get("/clips/2/redact/jobs/0123456789abcdef").status_code == 404
    from bwv.services.redaction_web import run_job

    made = _redactions(site)
    run_job(site["engine"], again.headers["location"].split("job=")[1])  # a rerun: nothing
    assert _redactions(site) == made

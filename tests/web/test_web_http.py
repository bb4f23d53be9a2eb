"""Every route for every role over HTTP, CSRF, Range, lockout, leavers and inert text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from web_helpers import PASSWORD, ROLES, Site, build_site, client_for, csrf_of

from bwv.core.db import session_scope
from bwv.core.models import AuditEvent
from bwv.services.users import MAX_FAILURES, disable_user

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


@pytest.fixture
def site(engine: Engine, tmp_path: Path) -> Site:
    return build_site(engine, tmp_path, notes="<script>alert(1)</script>")


def routes(site: Site) -> list[tuple[str, str, dict[str, str]]]:
    c, a, p = site.clip_id, site.approved, site.pending
    return [
        ("GET", "/incidents", {}),
        ("GET", "/incidents?verdict=needs_review&page=3", {}),
        ("GET", "/incidents/INC-1", {}),
        ("GET", f"/clips/{c}", {}),
        ("GET", f"/clips/{c}/media", {}),
        ("GET", "/queue", {}),
        ("GET", "/export.csv", {}),
        ("GET", "/examples", {}),
        ("GET", f"/examples/{a}", {}),
        ("GET", f"/examples/{p}", {}),
        ("GET", f"/examples/{p}/media", {}),
        ("GET", "/admin/users", {}),
        ("POST", "/incidents/INC-1/link", {"clip_id": str(c), "reason": "seen on it"}),
        ("POST", f"/clips/{c}/review", {"decision": "not_heard", "reason": "adults only"}),
        (
            "POST",
            "/examples",
            {"clip_id": str(c), "start_s": "1", "end_s": "2", "practice": "good"},
        ),
        ("POST", f"/examples/{p}/approve", {}),
        ("POST", "/admin/users", {"name": "new", "role": "trainer", "password": PASSWORD}),
        ("POST", "/incidents/INC-1/child-record", {"format": "json", "reason": "referral"}),
    ]


# Expected status per route (in the order above) for each role: 303 is a done action.
EXPECTED = {
    "evidence_officer": [
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        403,
        303,
        403,
        403,
        403,
        403,
        200,
    ],
    "inspector": [
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        403,
        403,
        303,
        303,
        303,
        403,
        200,
    ],
    "trainer": [
        403,
        403,
        403,
        403,
        403,
        403,
        403,
        200,
        200,
        403,
        403,
        403,
        403,
        403,
        303,
        403,
        403,
        403,
    ],
    "admin": [
        403,
        403,
        403,
        403,
        403,
        403,
        403,
        403,
        403,
        403,
        403,
        200,
        403,
        403,
        403,
        403,
        303,
        403,
    ],
}


@pytest.mark.parametrize("role", ROLES)
def test_every_route_for_every_role(site: Site, role: str) -> None:
    client, token = client_for(site, role)
    got = []
    for method, path, form in routes(site):
        if method == "GET":
            got.append(client.get(path).status_code)
        else:
            got.append(client.post(path, data={**form, "csrf_token": token}).status_code)
    assert list(zip(routes(site), got, strict=True)) == list(
        zip(routes(site), EXPECTED[role], strict=True)
    )


def test_without_a_session_every_route_goes_to_login(site: Site) -> None:
    client, _ = client_for(site, None)
    for method, path, form in routes(site):
        answer = client.request(method, path, data=form or None)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    assert client.get("/login").status_code == 200
    assert client.get("/static/htmx.min.js").status_code == 200


def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    client, token = client_for(site, "inspector")
    form = {"decision": "not_heard", "reason": "adults only"}
    assert client.post(f"/clips/{site.clip_id}/review", data=form).status_code == 403
    wrong = client.post(f"/clips/{site.clip_id}/review", data={**form, "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert "No child's voice" not in client.get(f"/clips/{site.clip_id}").text
    assert "Not reviewed" in client.get(f"/clips/{site.clip_id}").text
    header = client.post(
        f"/clips/{site.clip_id}/review", data=form, headers={"X-CSRF-Token": token}
    )
    assert header.status_code == 303  # htmx sends it as a header


def test_the_review_decision_changes_the_incident_verdict(site: Site) -> None:
    client, token = client_for(site, "inspector")
    assert 'id="verdict">needs_review' in client.get("/incidents/INC-1").text
    form = {
        "decision": "heard",
        "start_s": "6",
        "end_s": "9",
        "reason": "girl speaks",
        "csrf_token": token,
    }
    assert client.post(f"/clips/{site.clip_id}/review", data=form).status_code == 303
    assert 'id="verdict">compliant' in client.get("/incidents/INC-1").text
    assert (
        "needs_review" not in client.get("/incidents?verdict=needs_review").text.split("<tbody>")[1]
    )
    with session_scope(site.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "voice_review")).one()
    assert event.actor == "inspector" and json.loads(event.details)["start_s"] == 6.0


def _facts(page: str) -> str:
    """An incident page from its heading to the child record (which carries the time)."""
    return page.split("<h1>")[1].split('id="child-record-heading"')[0]


def test_the_incident_page_from_the_judged_list_is_never_stale(site: Site) -> None:
    from bwv.services import webviews
    from compliance.policy import load_policy

    def judged() -> bool:
        return webviews._fresh(site.engine, load_policy(None)) is not None

    client, token = client_for(site, "inspector")  # its home, the queue, judges every incident
    assert judged()
    kept = client.get("/incidents/INC-1").text  # the verdict judged with the list
    webviews._cache.clear()
    alone = client.get("/incidents/INC-1").text  # nothing judged: the incident on its own
    assert not judged()
    assert _facts(kept) == _facts(alone) and 'id="verdict">needs_review' in kept
    assert "CHILD_VOICE_NOT_DETECTED" in kept  # with its candidate segments attached:
    assert "&#39;candidates&#39;: [{&#39;clip_id&#39;: 1, &#39;start_s&#39;: 6.0" in kept
    client.get("/incidents")
    form = {"decision": "heard", "start_s": "6", "end_s": "9", "reason": "girl speaks"}
    answer = client.post(f"/clips/{site.clip_id}/review", data={**form, "csrf_token": token})
    assert answer.status_code == 303 and not judged()  # the review changed the catalogue
    after = client.get("/incidents/INC-1").text
    assert 'id="verdict">compliant' in after and not judged()  # judged alone, not waiting
    client.get("/incidents")
    assert judged() and _facts(client.get("/incidents/INC-1").text) == _facts(after)


def test_bad_review_input_is_a_clear_400_and_nothing_changes(site: Site) -> None:
    client, token = client_for(site, "inspector")
    for form in (
        {"decision": "heard", "start_s": "abc", "end_s": "2", "reason": "r"},
        {"decision": "heard", "start_s": "1", "end_s": "999", "reason": "r"},
        {"decision": "maybe", "reason": "r"},
    ):
        answer = client.post(f"/clips/{site.clip_id}/review", data={**form, "csrf_token": token})
        assert answer.status_code == 400 and "Traceback" not in answer.text
    assert "Not reviewed" in client.get(f"/clips/{site.clip_id}").text


def test_range_requests_are_served_and_outside_the_file_refused(site: Site) -> None:
    client, _ = client_for(site, "evidence_officer")
    size = site.media.stat().st_size
    path = f"/clips/{site.clip_id}/media"
    part = client.get(path, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == site.media.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    tail = client.get(path, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == site.media.read_bytes()[-10:]
    for bad in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=50-10", "lines=1-2"):
        refused = client.get(path, headers={"Range": bad})
        assert refused.status_code == 416, bad
        assert refused.headers["content-range"] == f"bytes */{size}"
    whole = client.get(path)
    assert whole.status_code == 200 and len(whole.content) == size
    assert client.get("/clips/999/media").status_code == 404
    assert client.get("/clips/..%2F..%2Fetc%2Fpasswd/media").status_code in (404, 422)


def test_playback_and_views_are_audited_with_the_user(site: Site) -> None:
    client, _ = client_for(site, "evidence_officer")
    client.get(f"/clips/{site.clip_id}")
    client.get(f"/clips/{site.clip_id}/media", headers={"Range": "bytes=0-"})
    client.get(f"/clips/{site.clip_id}/media", headers={"Range": "bytes=5000-"})  # a seek
    client.get("/export.csv")
    with session_scope(site.engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.actor == "evidence_officer"))
        actions = [e.action for e in events]
    assert actions == ["login", "incident_view", "show", "play", "report"][: len(actions)] or (
        actions.count("play") == 1 and {"show", "report", "login"} <= set(actions)
    )
    assert actions.count("play") == 1


def test_script_in_notes_and_names_is_inert(site: Site) -> None:
    client, token = client_for(site, "admin")
    name = "<script>alert('x')</script>"
    form = {"name": name, "role": "trainer", "password": PASSWORD, "csrf_token": token}
    assert client.post("/admin/users", data=form).status_code == 303
    page = client.get("/admin/users").text
    assert name not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    trainer, _ = client_for(site, "trainer")
    shown = trainer.get(f"/examples/{site.approved}").text
    assert "<script>alert(1)</script>" not in shown and "&lt;script&gt;alert(1)" in shown


def test_lockout_after_repeated_failures_and_disabled_users(site: Site) -> None:
    client, _ = client_for(site, None)
    for _ in range(MAX_FAILURES):
        assert (
            client.post("/login", data={"name": "trainer", "password": "wrong"}).status_code == 401
        )
    locked = client.post("/login", data={"name": "trainer", "password": PASSWORD})
    assert locked.status_code == 401  # the right password no longer works for a while
    officer, _ = client_for(site, "evidence_officer")
    assert officer.get("/incidents").status_code == 200
    disable_user("evidence_officer", engine=site.engine, actor="admin")
    assert officer.get("/incidents").status_code == 303  # the open session ended
    again = client.post("/login", data={"name": "evidence_officer", "password": PASSWORD})
    assert again.status_code == 401


def test_session_cookie_is_httponly_and_samesite(site: Site) -> None:
    client, _ = client_for(site, None)
    answer = client.post("/login", data={"name": "inspector", "password": PASSWORD})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    logout = client.post("/logout", data={"csrf_token": csrf_of(client.get("/queue").text)})
    assert logout.status_code == 303
    assert client.get("/queue").status_code == 303


def test_kept_verdicts_frozen_out_of_the_collector_stay_right_when_judged_again(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from bwv.services import webviews

    monkeypatch.setattr(webviews, "FREEZE_FROM", 1)  # this small catalogue counts as large
    gc.unfreeze()
    try:
        client, token = client_for(site, "inspector")  # the queue judges and freezes
        assert gc.get_freeze_count() > 0
        assert 'id="verdict">needs_review' in client.get("/incidents/INC-1").text
        form = {"decision": "heard", "start_s": "6", "end_s": "9", "reason": "girl speaks"}
        client.post(f"/clips/{site.clip_id}/review", data={**form, "csrf_token": token})
        gc.unfreeze()  # judging again freezes anew
        assert "INC-1" in client.get("/incidents?verdict=compliant").text.split("<tbody>")[1]
        assert gc.get_freeze_count() > 0
        assert 'id="verdict">compliant' in client.get("/incidents/INC-1").text
    finally:
        gc.unfreeze()

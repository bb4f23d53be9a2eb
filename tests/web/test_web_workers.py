"""`bwv serve --workers 2`: several real server processes over one catalogue.

Each process keeps its own judged verdicts; the catalogue (sessions, CSRF tokens and the
audit trail) is all they share. A decision made through one process must show at once in
pages served by every other, and a leaver must be refused by all of them.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web_helpers import PASSWORD, Site, build_site, csrf_of, serving

from bwv.core.db import database_url, get_engine
from bwv.services.users import disable_user

pytestmark = pytest.mark.slow
CLIENTS = 8  # separate connections, spread by the kernel over the processes


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return build_site(get_engine(database_url(str(tmp_path / "bwv.db"))), tmp_path)


def _signed_in(base: str, role: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    assert client.post("/login", data={"name": role, "password": PASSWORD}).status_code == 303
    return client


def _listed(client: httpx.Client) -> bool:
    page = client.get("/incidents?verdict=needs_review")
    assert page.status_code == 200
    return "/incidents/INC-1" in page.text


def test_a_review_through_one_process_shows_in_all(site: Site, tmp_path: Path) -> None:
    with serving(tmp_path / "bwv.db", "--workers", "2") as base:
        clients = [_signed_in(base, "inspector") for _ in range(CLIENTS)]
        assert all(_listed(client) for client in clients)  # every process has judged
        token = csrf_of(clients[0].get(f"/clips/{site.clip_id}").text)
        form = {"decision": "heard", "start_s": "6", "end_s": "9", "reason": "girl answers",
                "csrf_token": token}  # fmt: skip
        assert clients[0].post(f"/clips/{site.clip_id}/review", data=form).status_code == 303
        assert not any(_listed(client) for client in clients)
        disable_user("inspector", engine=site.engine, actor="admin")
        assert {client.get("/incidents").status_code for client in clients} == {303}

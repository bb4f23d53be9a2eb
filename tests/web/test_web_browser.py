"""The web app in a real browser (Debian's Chromium via Playwright) against a real
`bwv serve` process on 127.0.0.1, over a real catalogue with a playable clip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import needs
from web_helpers import PASSWORD, ROLES, Site, build_site, serving

from bwv.core.db import database_url, get_engine

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Site]]:
    needs(CHROMIUM.exists(), "Debian's chromium (/usr/bin/chromium; .ci/run installs it)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        needs(False, "the playwright package (pip install -e '.[dev]')")
    db = tmp_path / "bwv.db"
    site = build_site(get_engine(database_url(str(db))), tmp_path)
    with serving(db) as base:
        yield base, site


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(CHROMIUM), args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


def _login(browser: object, base: str, role: str) -> object:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{base}/login")
    page.fill("#name", role)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_load_state()
    return page


def test_each_role_logs_in_to_its_own_page(served: tuple[str, Site], browser: object) -> None:
    base, _site = served
    landing = {"evidence_officer": "/incidents", "inspector": "/queue",
               "trainer": "/examples", "admin": "/admin/users"}  # fmt: skip
    for role in ROLES:
        page = _login(browser, base, role)
        assert page.url == base + landing[role]  # type: ignore[attr-defined]
        assert f"{role} ({role})" in page.inner_text("header")  # type: ignore[attr-defined]
        page.close()  # type: ignore[attr-defined]


def test_play_seek_and_review_change_the_verdict(served: tuple[str, Site], browser: object) -> None:
    base, site = served
    page = _login(browser, base, "inspector")
    page.goto(f"{base}/incidents/INC-1")  # type: ignore[attr-defined]
    assert page.inner_text("#verdict") == "needs_review"  # type: ignore[attr-defined]
    page.click(f"a[href='/clips/{site.clip_id}']")  # type: ignore[attr-defined]
    page.wait_for_selector("#player")  # type: ignore[attr-defined]
    page.evaluate(
        "() => { const p = document.getElementById('player'); p.muted = true; return p.play(); }"
    )  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('player').currentTime > 0.5", timeout=15000)  # type: ignore[attr-defined]
    page.click("#transcript .segment >> nth=1")  # type: ignore[attr-defined]
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 6) < 1.5")  # type: ignore[attr-defined]
    page.wait_for_selector("#transcript .segment.current")  # type: ignore[attr-defined]
    page.fill("#start_s", "6")  # type: ignore[attr-defined]
    page.fill("#end_s", "9")  # type: ignore[attr-defined]
    page.fill("#reason", "a girl answers at 6 s")  # type: ignore[attr-defined]
    page.click("#record-review")  # type: ignore[attr-defined]
    assert page.inner_text("#review") == "heard"  # type: ignore[attr-defined]
    page.goto(f"{base}/incidents/INC-1")  # type: ignore[attr-defined]
    assert page.inner_text("#verdict") == "compliant"  # type: ignore[attr-defined]


def test_trainer_marks_an_example_and_is_refused_the_unapproved(
    served: tuple[str, Site], browser: object
) -> None:
    base, site = served
    page = _login(browser, base, "trainer")
    page.fill("#ex-clip", str(site.clip_id))  # type: ignore[attr-defined]
    page.fill("#ex-start", "1")  # type: ignore[attr-defined]
    page.fill("#ex-end", "4")  # type: ignore[attr-defined]
    page.select_option("#ex-practice", "poor")  # type: ignore[attr-defined]
    page.fill("#ex-tags", "closed questions")  # type: ignore[attr-defined]
    page.click("#ex-keep")  # type: ignore[attr-defined]
    assert "closed questions" in page.inner_text("#examples")  # type: ignore[attr-defined]
    answer = page.goto(f"{base}/examples/{site.pending}")  # type: ignore[attr-defined]
    assert answer.status == 403
    answer = page.goto(f"{base}/clips/{site.clip_id}")  # type: ignore[attr-defined]
    assert answer.status == 403


def test_a_post_without_csrf_and_a_disabled_user_are_refused(
    served: tuple[str, Site], browser: object
) -> None:
    base, site = served
    page = _login(browser, base, "inspector")
    status = page.evaluate(  # type: ignore[attr-defined]
        f"""() => fetch('/clips/{site.clip_id}/review', {{method: 'POST',
            body: new URLSearchParams({{decision: 'not_heard', reason: 'forged'}})}})
            .then(r => r.status)"""
    )
    assert status == 403
    admin = _login(browser, base, "admin")
    admin.click("form[action='/admin/users/trainer/disable'] button")  # type: ignore[attr-defined]
    gone = _login(browser, base, "trainer")
    assert gone.url.endswith("/login")  # type: ignore[attr-defined]


def test_child_record_panel_download_and_consistency_charts(
    served: tuple[str, Site], browser: object
) -> None:
    base, _site = served
    page = _login(browser, base, "evidence_officer")
    page.goto(f"{base}/incidents/INC-1")  # type: ignore[attr-defined]
    panel = page.inner_text("#child-record")  # type: ignore[attr-defined]
    assert "OFFICIAL-SENSITIVE" in panel and "What the child said" in panel
    page.click("#record-download")  # type: ignore[attr-defined]
    assert page.url.endswith("/incidents/INC-1")  # type: ignore[attr-defined]  # reason required
    page.select_option("#record-format", "html")  # type: ignore[attr-defined]
    page.fill("#record-reason", "Strategy meeting")  # type: ignore[attr-defined]
    with page.expect_download() as waiting:  # type: ignore[attr-defined]
        page.click("#record-download")  # type: ignore[attr-defined]
    download = waiting.value
    assert download.suggested_filename == "child-record-INC-1.html"
    saved = Path(download.path()).read_text(encoding="utf-8")
    assert "Reason for disclosure: Strategy meeting" in saved and "evidence_officer" in saved
    page.goto(f"{base}/incidents")  # type: ignore[attr-defined]
    page.select_option("#by", "team")  # type: ignore[attr-defined]
    page.click("#by-form button")  # type: ignore[attr-defined]
    assert page.locator("#consistency svg").count() == 2  # type: ignore[attr-defined]
    assert "Force-wide" in page.inner_text("#consistency")  # type: ignore[attr-defined]

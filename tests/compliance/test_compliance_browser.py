"""The HTML report rendered in a real headless Chromium: it draws, and scripts stay text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from compliance_helpers import (
    add_attendance,
    add_clip,
    add_incident,
    add_officer,
    make_engine,
    relink,
    standard_incident,
)
from conftest import needs

from bwv.cli import main
from bwv.core.db import session_scope

CHROMIUM = Path("/usr/bin/chromium")
NASTY = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    needs(CHROMIUM.exists(), "Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture
def report_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BWV_TIMEZONE", "Europe/London")
    monkeypatch.delenv("BWV_POLICY", raising=False)
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590, child=3.0)
        add_officer(session, "O2", team="Team B")
        add_incident(session, "INC-2", "2024-07-02T09:00:00", notes=NASTY)
        add_attendance(session, "INC-2", "O2", "2024-07-02T09:10:00", "2024-07-02T09:40:00")
    relink(engine)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "bwv.db"), "report", "--format", "html", "--output", str(out)]
    )
    assert result.exit_code == 1, result.output
    return out


def test_report_renders_in_headless_chromium(report_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    run = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report_html.as_uri()
    )
    assert shot.exists(), run.stderr
    assert shot.stat().st_size > 30_000  # a blank page is a few kilobytes
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_malicious_note_stays_text_in_the_browser(report_html: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", report_html.as_uri()).stdout
    assert "<title>BWV voice-of-the-child report all incidents</title>" in dom
    assert "owned" not in dom.split("</title>")[0]
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;document.title='owned'&lt;/script&gt;" in dom

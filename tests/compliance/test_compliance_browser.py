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


def test_child_record_prints_on_a4_with_text_kept_as_text(tmp_path: Path) -> None:
    """`bwv child-record --format html` printed by Chromium: A4 pages; the transcript's
    markup stays text in the DOM."""
    from bwv.core.models import TranscriptSegment

    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        clip_id = add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590)
        for n in range(60):  # enough rows for more than one page
            session.add(
                TranscriptSegment(clip_id=clip_id, start_s=n * 5.0, end_s=n * 5.0 + 4,
                                  text=f"{NASTY} line {n}", confidence=-0.2,
                                  child_probability=0.9, speaker=0, speaker_child_probability=0.9)
            )  # fmt: skip
    relink(engine)
    page = tmp_path / "record.html"
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "bwv.db"), "child-record", "INC-1", "--reason", "test",
               "--format", "html", "--out", str(page)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pdf = tmp_path / "record.pdf"
    run = chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert pdf.exists(), run.stderr
    boxes = pdf.read_bytes().split(b"/MediaBox")[1:]
    assert len(boxes) >= 2  # several pages
    for box in boxes:  # A4 is 595 x 842 points
        width, height = (float(n) for n in box.split(b"]")[0].strip(b" [").split()[2:4])
        assert (round(width), round(height)) in ((595, 842), (596, 842), (596, 843))
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "owned" not in dom.split("</title>")[0]
    assert "<script" not in dom and "<img" not in dom
    assert dom.count("OFFICIAL-SENSITIVE") >= 3

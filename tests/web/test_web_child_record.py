"""The child record on the web: the incident page's panel and its audited download.

Real SQLite catalogue and the real app over HTTP (TestClient); the audit trail is read
back from the database, and the download is compared with what `bwv child-record` writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from compliance_helpers import add_incident, catalogue_arg
from sqlalchemy import Engine
from sqlmodel import col, select
from web_helpers import Site, build_site, client_for

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import AuditEvent, TranscriptSegment

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

WORDS = "He hit mummy <b>twice</b>"


@pytest.fixture
def site(engine: Engine, tmp_path: Path) -> Site:
    built = build_site(engine, tmp_path)
    with session_scope(engine) as session:  # one segment a child's, at the default threshold
        session.add(
            TranscriptSegment(
                clip_id=built.clip_id,
                start_s=11.0,
                end_s=13.5,
                text=WORDS,
                confidence=-0.2,
                child_probability=0.9,
                speaker=1,
                speaker_child_probability=0.9,
            )
        )
    return built


def test_speaker_groups_read_as_the_cli_prints_them(site: Site) -> None:
    client, _ = client_for(site, "inspector")
    page = client.get(f"/clips/{site.clip_id}").text
    assert "speaker S2" in page and "speaker 1<" not in page and "speaker 1 " not in page
    assert "speaker -" in page  # segments not grouped


def _disclosures(engine: Engine) -> list[AuditEvent]:
    with session_scope(engine) as session:
        query = select(AuditEvent).where(col(AuditEvent.action) == "child_record")
        return list(session.exec(query.order_by(col(AuditEvent.id))))


def test_the_incident_page_shows_the_record_as_a_panel(site: Site) -> None:
    client, _ = client_for(site, "inspector")
    page = client.get("/incidents/INC-1").text
    panel = page.split('id="child-record">')[1].split("</section>")[0]
    assert "OFFICIAL-SENSITIVE" in panel and "What the child said" in panel
    assert "He hit mummy &lt;b&gt;twice&lt;/b&gt;" in panel and "<b>twice" not in panel
    assert "S2" in panel  # the speaker group as the CLI writes it
    assert 'id="record-form"' in page and 'name="reason"' in page
    assert _disclosures(site.engine) == []  # looking is not disclosing


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_download_is_one_audited_disclosure_with_the_user(site: Site, fmt: str) -> None:
    client, token = client_for(site, "evidence_officer")
    form = {"format": fmt, "reason": "Strategy meeting", "csrf_token": token}
    answer = client.post("/incidents/INC-1/child-record", data=form)
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="child-record-INC-1.{fmt}"'
    )
    assert "Strategy meeting" in answer.text and "He hit mummy" in answer.text
    [event] = _disclosures(site.engine)
    assert (event.actor, event.outcome) == ("evidence_officer", "ok")
    details = json.loads(event.details)
    assert (details["reason"], details["format"], details["out"]) == (
        "Strategy meeting", fmt, "web download",
    )  # fmt: skip


def test_download_matches_the_cli_record(site: Site, tmp_path: Path) -> None:
    client, token = client_for(site, "inspector")
    form = {"format": "json", "reason": "Referral", "csrf_token": token}
    web = client.post("/incidents/INC-1/child-record", data=form).json()
    cli = CliRunner().invoke(main, ["--db", catalogue_arg(tmp_path), "--actor", "inspector",
                                    "child-record", "INC-1", "--reason", "Referral",
                                    "--format", "json"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)
    for data in (web, expected):
        data.pop("generated_at")
    assert web == expected


def test_no_reason_no_csrf_or_a_trainer_discloses_nothing(site: Site) -> None:
    client, token = client_for(site, "inspector")
    path = "/incidents/INC-1/child-record"
    blank = client.post(path, data={"format": "md", "reason": "  ", "csrf_token": token})
    assert blank.status_code == 400 and "give a reason for the disclosure" in blank.text
    assert "Traceback" not in blank.text
    missing = client.post(path, data={"format": "md", "csrf_token": token})
    assert missing.status_code == 400
    forged = client.post(path, data={"format": "md", "reason": "forged"})
    assert forged.status_code == 403
    wrong = client.post(path, data={"format": "md", "reason": "r", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    bad_format = client.post(path, data={"format": "pdf", "reason": "r", "csrf_token": token})
    assert bad_format.status_code == 400
    unknown = client.post("/incidents/INC-404/child-record",
                          data={"format": "md", "reason": "r", "csrf_token": token})  # fmt: skip
    assert unknown.status_code == 404
    trainer, trainer_token = client_for(site, "trainer")
    refused = trainer.post(path, data={"format": "md", "reason": "r", "csrf_token": trainer_token})
    assert refused.status_code == 403 and "He hit mummy" not in refused.text
    assert _disclosures(site.engine) == []


def test_an_odd_incident_reference_gives_a_safe_file_name(site: Site) -> None:
    ref = 'INC "9"\r\nX-Evil: 1'
    with session_scope(site.engine) as session:
        add_incident(session, ref, "2024-02-01T09:00:00")
    client, token = client_for(site, "inspector")
    answer = client.post(f"/incidents/{quote(ref)}/child-record",
                         data={"format": "md", "reason": "R", "csrf_token": token})  # fmt: skip
    assert answer.status_code == 200 and "x-evil" not in answer.headers
    assert answer.headers["content-disposition"] == (
        'attachment; filename="child-record-INC__9___X-Evil__1.md"'
    )
    assert "No child speech (no footage)" in answer.text

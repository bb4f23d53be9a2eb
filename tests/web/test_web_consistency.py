"""The Incidents page's consistency view: the figures and charts of `bwv report --by`.

Real SQLite catalogue, the real app over HTTP (TestClient), and the report built by the
same library call `bwv report` makes, rendered by the HTML report's own table function.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from compliance_helpers import add_attendance, add_incident, add_officer, catalogue_arg, relink
from sqlalchemy import Engine
from web_helpers import Site, build_site, client_for

from bwv.cli import main
from bwv.core.db import session_scope
from compliance.consistency import GROUPINGS
from compliance.facts import Period
from compliance.render import duration, percent
from compliance.report import build_report
from compliance.report_html import group_table

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

OFFICERS = 55  # more groups than one page (50) when grouped by officer


@pytest.fixture
def site(engine: Engine, tmp_path: Path) -> Site:
    built = build_site(engine, tmp_path)
    with session_scope(engine) as session:
        for n in range(OFFICERS):
            officer = f"P{n:02d}"
            add_officer(session, officer, team=f"Team {n % 3}", station=f"Station {n % 2}")
            ref = f"INC-{100 + n}"
            add_incident(session, ref, f"2024-0{1 + n % 6}-10T09:00:00", notes="<b>x</b>")
            add_attendance(session, ref, officer, f"2024-0{1 + n % 6}-10T09:{10 + n % 40}:00",
                           f"2024-0{1 + n % 6}-10T10:30:00")  # fmt: skip
    relink(engine)
    return built


def _section(page: str) -> str:
    return page.split('id="consistency"')[1].split("</section>")[0]


@pytest.mark.parametrize("by", GROUPINGS)
def test_each_grouping_shows_the_reports_figures_and_charts(site: Site, by: str) -> None:
    client, _ = client_for(site, "inspector")
    answer = client.get(f"/incidents?by={by}")
    assert answer.status_code == 200
    section = _section(answer.text)
    view = build_report(engine=site.engine, period=Period()).view(by)
    view = type(view)(by=view.by, force=view.force, groups=view.groups[:50], rule=view.rule)
    assert group_table(view) in section  # the very table the HTML report draws
    assert section.count("<svg") == 2 and "<script" not in section
    assert "First arrival median" in section and "Over target" in section


def test_the_figures_match_the_cli_report(site: Site, tmp_path: Path) -> None:
    client, _ = client_for(site, "evidence_officer")
    section = _section(client.get("/incidents?by=team").text)
    cli = CliRunner().invoke(main, ["--db", catalogue_arg(tmp_path), "report", "--by", "team",
                                    "--format", "json"])  # fmt: skip
    groups = json.loads(cli.stdout)["groups"]
    assert {g["group"] for g in groups} == {"Team 0", "Team 1", "Team 2", "Team A"}
    for g in groups:
        row = section.split(f"<td>{g['group']}</td>")[1].split("</tr>")[0]
        cells = [c.split("</td>")[0] for c in row.split("<td class='num'>")[1:]]
        assert cells[:3] == [str(g["incidents"]), str(g["applicable_attendances"]),
                             percent(g["activation_rate"])]  # fmt: skip
        assert duration(g["median_first_arrival_s"]) in row


def test_groups_are_paged_and_a_bad_grouping_is_a_clear_400(site: Site) -> None:
    client, _ = client_for(site, "inspector")
    first = _section(client.get("/incidents?by=officer").text)
    assert "page 1 of 2" in first and first.count("<tr") == 1 + 1 + 50  # head, force, 50
    second = _section(client.get("/incidents?by=officer&gpage=2").text)
    assert second.count("<tr") == 1 + 1 + (OFFICERS + 1 - 50)  # O1 too
    bad = client.get("/incidents?by=<script>")
    assert bad.status_code == 400 and "unknown grouping" in bad.text
    assert "<script>" not in bad.text and "Traceback" not in bad.text
    trainer, _ = client_for(site, "trainer")
    assert trainer.get("/incidents?by=team").status_code == 403


def test_the_view_honours_the_date_filters_like_the_cli_period(site: Site, tmp_path: Path) -> None:
    client, _ = client_for(site, "inspector")
    page = client.get("/incidents?by=team&since=2024-03-01&until=2024-04-01")
    assert page.status_code == 200
    section = _section(page.text)
    cli = CliRunner().invoke(main, ["--db", catalogue_arg(tmp_path), "report", "--by", "team",
                                    "--format", "json", "--since", "2024-03-01T00:00:00Z",
                                    "--until", "2024-04-01T00:00:00Z"])  # fmt: skip
    groups = json.loads(cli.stdout)["groups"]
    assert sum(g["incidents"] for g in groups) == 9  # n % 6 == 2 (2, 8 ... 50): March
    for g in groups:
        row = section.split(f"<td>{g['group']}</td>")[1].split("</tr>")[0]
        cells = [c.split("</td>")[0] for c in row.split("<td class='num'>")[1:]]
        assert cells[0] == str(g["incidents"])
    everyone = _section(client.get("/incidents?by=team").text)
    assert everyone != section  # the same grouping over every incident differs
    assert "from 2024-03-01" in section and 'name="since" value="2024-03-01"' in page.text
    month = _section(client.get("/incidents?by=team&month=2024-03").text)
    assert month.split("<table")[1] == section.split("<table")[1]  # the same incidents


def test_paging_links_keep_the_filters(site: Site) -> None:
    client, _ = client_for(site, "inspector")
    page = client.get("/incidents?by=officer&since=2024-01-01&type=burglary&page=1").text
    assert "?since=2024-01-01&amp;by=officer&amp;gpage=2" in page
    listed = client.get("/incidents?team=Team+1").text
    assert "next" not in listed.split('id="incidents"')[1] or "team=Team+1&amp;page=2" in listed

"""END-TO-END (slow, ~20 s): `bwv demo` ingests sample_media/ with the real model.

The one compliance test that runs ingest; everything else builds rows directly. It
checks the sample CSVs cover every reason, finding and non-compliant path, and that
the demo names its HTML report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main

# Slow: the whole demo with the real model.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("BWV_TIMEZONE", "Europe/London")
    monkeypatch.delenv("BWV_POLICY", raising=False)
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["--actor", "tester", "demo", "--out", str(out)])
    monkeypatch.undo()
    return out, result.output, result.exit_code


def test_demo_writes_and_names_the_report(demo: tuple[Path, str, int]) -> None:
    out, output, code = demo
    assert code == 0, output
    assert f"HTML report: {out / 'report.html'}" in output.splitlines()
    assert "Catalogued 8 clips (1 unreadable, 0 already catalogued)" in output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page


def test_demo_covers_every_reason_and_finding(demo: tuple[Path, str, int]) -> None:
    out, _output, _code = demo
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    summary = data["summary"]
    assert all(count > 0 for count in summary["reasons"].values()), summary["reasons"]
    assert all(count > 0 for count in summary["officer_findings"].values())
    assert summary["verdicts"]["non_compliant"] > 0 and summary["verdicts"]["not_applicable"] == 2
    assert (summary["ambiguous_links"], summary["manual_links"], summary["unassigned_clips"]) == (
        1, 1, 1,
    )  # fmt: skip
    verdicts = {i["incident_ref"]: [r["code"] for r in i["reasons"]] for i in data["incidents"]}
    assert verdicts["INC-2024-0002"] == ["NO_FOOTAGE"]
    assert verdicts["INC-2024-0003"] == ["CHILD_VOICE_NOT_DETECTED"]  # adults only
    assert verdicts["INC-2024-0004"] == ["NO_AUDIO"]  # no audio stream
    assert verdicts["INC-2024-0005"] == ["NO_AUDIO"]  # muted, linked by hand
    assert verdicts["INC-2024-0006"] == ["NO_SPEECH"]  # BST attendance, covered lens
    assert verdicts["INC-2024-0007"] == ["FOOTAGE_UNREADABLE"]
    for ref in ("INC-2024-0001", "INC-2024-0008", "INC-2024-0009"):  # child speaks
        assert verdicts[ref] in ([], ["CHILD_VOICE_NOT_DETECTED"])
    assert summary["incident_findings"] == {"SLOW_RESPONSE": 1, "NOT_ATTENDED": 1}
    seen = {
        i["incident_ref"]: [f["code"] for f in i["incident_findings"]] for i in data["incidents"]
    }
    assert seen["INC-2024-0012"] == ["SLOW_RESPONSE"]  # P1 reached after 37 minutes (BST)
    assert seen["INC-2024-0015"] == ["NOT_ATTENDED"]


def test_demo_writes_one_child_record(demo: tuple[Path, str, int]) -> None:
    out, output, _code = demo
    record = out / "child-record-INC-2024-0008.html"
    assert f"Child record: {record}" in output.splitlines()
    page = record.read_text(encoding="utf-8")
    assert "OFFICIAL-SENSITIVE" in page and "incident INC-2024-0008" in page
    assert "No child speech" not in page  # clip 7's dialogue is one child-judged speaker


def test_demo_can_run_again_in_the_same_folder(demo: tuple[Path, str, int]) -> None:
    out, _output, _code = demo
    again = CliRunner().invoke(main, ["--actor", "tester", "demo", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "Catalogued 0 clips (0 unreadable, 8 already catalogued)" in again.output


def test_demo_makes_an_admin_whose_password_is_printed_once(demo: tuple[Path, str, int]) -> None:
    from bwv.core.db import database_url, get_engine
    from bwv.services.users import sign_in

    out, output, _code = demo
    line = next(x for x in output.splitlines() if x.startswith("Web app user: admin"))
    password = line.split("password ", 1)[1].split(" ", 1)[0]
    assert f"bwv --db {out / 'bwv.db'} serve" in output
    engine = get_engine(database_url(str(out / "bwv.db")))
    assert sign_in("admin", password, engine=engine).user.role == "admin"
    assert password not in (out / "bwv.db").read_bytes().decode("latin-1")  # stored hashed

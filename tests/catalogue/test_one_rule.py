"""Rules that once had twins: one clip reference and one child-speech figure everywhere.

Each of these failed before the floor plan, when `show` and `link` resolved clips with
two different functions and `show` printed child seconds fixed at ingest time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from compliance_helpers import (
    add_clip,
    add_segment,
    make_engine,
    relink,
    standard_incident,
)
from sqlalchemy import Engine
from sqlmodel import Session

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import Clip


def run(db: Path, *args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(db), *map(str, args)])
    return result.exit_code, result.output


def rename(session: Session, clip_id: int, *, name: str | None = None, sha: str | None = None):
    clip = session.get(Clip, clip_id)
    assert clip is not None
    clip.file_name = name or clip.file_name
    clip.sha256 = sha or clip.sha256
    session.add(clip)


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Engine]:
    """Clip 1's hash starts `deadbeef`; clip 2 is a file named `deadbeef`; clips 3 and 4
    share the file name `same.mp4`. All four are on INC-1's officer's camera."""
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        ids = [add_clip(session, serial="CAM1", start="2024-01-16T10:01:00") for _ in range(4)]
        rename(session, ids[0], sha="deadbeef" + "0" * 56)
        rename(session, ids[1], name="deadbeef")
        rename(session, ids[2], name="same.mp4")
        rename(session, ids[3], name="same.mp4")
    relink(engine)
    return tmp_path / "bwv.db", engine


def test_show_and_link_pick_the_same_clip_for_one_reference(twins: tuple[Path, Engine]) -> None:
    db, _engine = twins
    code, output = run(db, "show", "deadbeef", "--json")
    assert code == 0, output
    shown = json.loads(output)["clip"]["id"]
    code, output = run(db, "unlink", "deadbeef", "INC-1", "--reason", "not this incident")
    assert code == 0, output
    assert output.startswith("Recorded unlink by ") and f"clip {shown} " in output
    code, output = run(db, "verify", "deadbeef", "--json")
    assert json.loads(output)["clips"][0]["clip_id"] == shown


@pytest.mark.parametrize("reference", ["99999999999999999999999", "٣", "1" * 400])
def test_a_number_too_big_or_not_ascii_is_no_clip_not_a_crash(
    twins: tuple[Path, Engine], reference: str
) -> None:
    db, _engine = twins
    code, output = run(db, "show", reference)
    assert (code, output) == (
        2,
        f"Error: no clip {reference!r} in the catalogue (give an id, hash or file name)\n",
    )


def test_a_shared_file_name_is_ambiguous_to_every_command(twins: tuple[Path, Engine]) -> None:
    db, _engine = twins
    for args in (("show", "same.mp4"), ("link", "same.mp4", "INC-1", "--reason", "x"),
                 ("transcript", "same.mp4"), ("verify", "same.mp4")):  # fmt: skip
        code, output = run(db, *args)
        assert (code, output) == (
            2,
            "Error: 'same.mp4' matches several clips (3, 4); give the clip id\n",
        ), args


@pytest.fixture
def borderline(tmp_path: Path) -> tuple[Path, int, Path]:
    """A linked clip with 3 s of speech whose speaker scores 0.5: child speech at a 0.4
    threshold, not at the default 0.65. Returns the catalogue, clip id and a 0.4 policy."""
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        clip_id = add_clip(session, serial="CAM1", start="2024-01-16T10:00:30", speech=3.0)
        add_segment(session, clip_id, 3.0, alone=0.3, speaker=0.5)
    relink(engine)
    policy = tmp_path / "policy.toml"
    policy.write_text("child_probability_threshold = 0.4\n")
    return tmp_path / "bwv.db", clip_id, policy


def child_seconds_everywhere(db: Path, clip_id: int, *policy: object) -> list[float]:
    shown = json.loads(run(db, "show", clip_id, "--json", *policy)[1])
    listed = json.loads(run(db, "clips", "--json", *policy)[1])
    incident = json.loads(run(db, "incident", "INC-1", "--json", *policy)[1])
    report = json.loads(run(db, "report", "--format", "json", *policy)[1])
    return [
        shown["clip"]["child_speech_seconds"],
        next(c["child_speech_seconds"] for c in listed if c["id"] == clip_id),
        incident["clips"][0]["child_speech_seconds"],
        report["incidents"][0]["clips"][0]["child_speech_seconds"],
    ]


def test_show_clips_incident_and_report_agree_for_one_policy(
    borderline: tuple[Path, int, Path],
) -> None:
    db, clip_id, policy = borderline
    assert child_seconds_everywhere(db, clip_id) == [0.0] * 4
    assert child_seconds_everywhere(db, clip_id, "--policy", policy) == [3.0] * 4


def test_the_standing_policy_is_the_one_in_force(
    borderline: tuple[Path, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, clip_id, policy = borderline
    monkeypatch.setenv("BWV_POLICY", str(policy))
    assert child_seconds_everywhere(db, clip_id) == [3.0] * 4
    _code, output = run(db, "show", clip_id)
    assert "CHILD" in output and "child speech: 3 s" in output


def test_custody_and_link_output_escape_control_characters(twins: tuple[Path, Engine]) -> None:
    """File names reach `verify` and `link` output too: one escaping rule for every text."""
    db, engine = twins
    with session_scope(engine) as session:
        rename(session, 1, name="\x1b]0;pwned\x07evil\n.mp4")
    _code, verified = run(db, "verify", "1")
    _code, linked = run(db, "link", "1", "INC-1", "--reason", "checked")
    for output in (verified, linked):
        assert "\x1b" not in output and "\x07" not in output
        assert "\\x1b]0;pwned\\x07evil\\n.mp4" in output

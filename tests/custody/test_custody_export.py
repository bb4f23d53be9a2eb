"""`bwv export`: a disclosure folder that `sha256sum -c` verifies, never a partial one."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main
from bwv.core.db import get_engine, session_scope
from bwv.core.models import Attendance, ClipLink, Incident
from bwv.core.store import sha256_file

ROOT = Path(__file__).resolve().parents[2]


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(db), "--actor", "discloser", *args])
    return result.exit_code, result.output


def add_incident(db: Path, clip_ids: list[int], ref: str = "INC-1") -> None:
    engine = get_engine(f"sqlite:///{db}")
    moment = datetime(2024, 1, 16, 7, 0, tzinfo=UTC)
    with session_scope(engine) as session:
        session.add(
            Incident(
                incident_ref=ref,
                type="domestic",
                reported_at=moment,
                child_contact=True,
                notes="<script>alert(1)</script>",
            )
        )
        session.flush()
        session.add(
            Attendance(
                incident_ref=ref,
                officer_id="O101",
                arrived_at=moment,
                left_at=moment.replace(hour=9),
            )
        )
        session.add_all(
            ClipLink(
                clip_id=c, incident_ref=ref, officer_id="O101", overlap_s=60.0, source="manual"
            )
            for c in clip_ids
        )


@pytest.fixture
def db(tmp_path: Path, catalogue: dict[str, object]) -> Path:
    """A private copy of the transcribed sample catalogue, with incident INC-1 on clips 1, 2."""
    copy = tmp_path / "bwv.db"
    with sqlite3.connect(str(catalogue["db"])) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    add_incident(copy, [1, 2])
    return copy


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def sha256sum_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sha256sum", "-c", "--strict", "MANIFEST.sha256"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def clip_hashes(db: Path) -> dict[int, str]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT id, sha256 FROM clip"))


def test_export_writes_a_verifiable_disclosure(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    code, output = run(db, "export", "INC-1", "--to", str(out))
    manifest = (out / "MANIFEST.sha256").read_bytes()
    assert (code, output) == (
        0,
        f"exported incident INC-1: 2 clips, 15 files to {out}\n"
        f"MANIFEST.sha256 SHA-256 {hashlib.sha256(manifest).hexdigest()}\n"
        f"check with: cd {out} && sha256sum -c MANIFEST.sha256\n",
    )
    listed = [line.split("  ", 1)[1] for line in manifest.decode().splitlines()]
    assert files_under(out) == sorted([*listed, "MANIFEST.sha256"])
    assert [name for name in listed if "/" not in name] == [
        "README.txt",
        "audit.json",
        "export.json",
        "findings.json",
    ]
    check = sha256sum_check(out)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 14


def test_exported_originals_are_the_catalogued_bytes(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    run(db, "export", "INC-1", "--to", str(out))
    originals = sorted((out / "originals").iterdir())
    assert [p.name for p in originals] == ["1_VID_0042.mp4", "2_X60390007_20240116_072330.mp4"]
    hashes = clip_hashes(db)
    assert [sha256_file(p) for p in originals] == [hashes[1], hashes[2]]
    info = json.loads((out / "export.json").read_text())
    assert [c["sha256"] for c in info["clips"]] == [hashes[1], hashes[2]]
    assert info["exported_by"] == "discloser" and info["audit_chain"]["ok"] is True


def test_transcripts_and_findings_are_exported(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    run(db, "export", "INC-1", "--to", str(out))
    transcripts = files_under(out / "transcripts")
    stems = ("1_VID_0042", "2_X60390007_20240116_072330")
    assert transcripts == [f"{stem}.{fmt}" for stem in stems for fmt in ("json", "txt", "vtt")]
    assert (out / "transcripts" / "1_VID_0042.vtt").read_text().startswith("WEBVTT\n")
    findings = json.loads((out / "findings.json").read_text())
    assert findings["incident"]["notes"] == "<script>alert(1)</script>"
    assert [link["clip_id"] for link in findings["links"]] == [1, 2]
    assert findings["attendance"][0]["officer_id"] == "O101"


def test_audit_excerpt_covers_the_clips_and_rechecks(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    run(db, "export", "INC-1", "--to", str(out))
    excerpt = json.loads((out / "audit.json").read_text())
    assert excerpt["objects"] == ["clip:1", "clip:2", "incident:INC-1"]
    assert "ingest" in {e["action"] for e in excerpt["events"]}
    assert excerpt["events"][-1]["id"] <= excerpt["chain"]["head_id"]
    for event in excerpt["events"]:
        body = {k: v for k, v in event.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode()).hexdigest() == event["hash"]
    assert excerpt["chain"]["ok"] is True


def test_an_export_is_one_user_action_and_writes_one_audit_event(db: Path, tmp_path: Path) -> None:
    def events() -> list[str]:
        with sqlite3.connect(db) as connection:
            return [
                row[0] for row in connection.execute("SELECT action FROM auditevent ORDER BY id")
            ]

    before = events()
    run(db, "export", "INC-1", "--to", str(tmp_path / "disclosure"))
    assert events()[len(before) :] == ["export", "export"]


def test_export_is_audited_and_recorded_as_derivatives(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    run(db, "export", "INC-1", "--to", str(out))
    manifest_sha = hashlib.sha256((out / "MANIFEST.sha256").read_bytes()).hexdigest()
    with sqlite3.connect(db) as connection:
        actor, action, objects, outcome, details = connection.execute(
            "SELECT actor, action, object_ids, outcome, details FROM auditevent "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        kinds = connection.execute(
            "SELECT clip_id, kind, sha256, path FROM derivative WHERE kind LIKE 'export_%'"
        ).fetchall()
    assert (actor, action, objects, outcome) == (
        "discloser",
        "export",
        "incident:INC-1,clip:1,clip:2",
        "ok",
    )
    assert json.loads(details)["manifest_sha256"] == manifest_sha
    assert len(kinds) == 10  # 2 originals, 2 thumbnails, 6 transcripts
    for _clip, _kind, digest, path in kinds:
        assert sha256_file(Path(path)) == digest
    assert run(db, "audit", "verify")[0] == 0


def test_derivatives_only_leaves_out_the_originals(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "derived"
    code, _ = run(db, "export", "INC-1", "--to", str(out), "--derivatives-only")
    assert code == 0
    assert not (out / "originals").exists()
    assert json.loads((out / "export.json").read_text())["derivatives_only"] is True
    assert sha256sum_check(out).returncode == 0


def test_export_refuses_to_overwrite(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("someone's work")
    assert run(db, "export", "INC-1", "--to", str(out)) == (
        2,
        f"Error: export destination {out} is not empty; refusing to overwrite it\n",
    )
    assert files_under(out) == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    assert run(db, "export", "INC-1", "--to", str(tmp_path / "file"))[0] == 2


def test_export_into_an_empty_folder_and_unknown_incident(db: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(db, "export", "INC-1", "--to", str(empty))[0] == 0
    assert run(db, "export", "NOPE", "--to", str(tmp_path / "x")) == (
        2,
        "Error: no incident 'NOPE' in the catalogue\n",
    )


@pytest.fixture
def small(tmp_path: Path) -> dict[str, Path]:
    """One clip of our own (so it can be damaged), stored, linked to INC-2."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(ROOT / "sample_media" / "X60390008_20240116_093000.mp4", media)
    db, store = tmp_path / "small.db", tmp_path / "store"
    code, output = run(
        db, "ingest", "--no-transcribe", "--workers", "1", "--store", str(store), str(media)
    )
    assert code == 0, output
    add_incident(db, [1], ref="INC-2")
    return {"db": db, "original": media / "X60390008_20240116_093000.mp4", "store": store}


def test_altered_original_without_a_good_copy_is_never_disclosed(
    small: dict[str, Path], tmp_path: Path
) -> None:
    small["original"].write_bytes(b"not the recording")
    for copy in small["store"].rglob("*.mp4"):
        copy.chmod(0o644)
        copy.write_bytes(b"nor this")
    out = tmp_path / "out"
    code, output = run(small["db"], "export", "INC-2", "--to", str(out))
    assert code == 2
    assert output.startswith("Error: clip 1: no readable copy of the original matches")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with sqlite3.connect(small["db"]) as connection:
        last = connection.execute(
            "SELECT action, outcome FROM auditevent ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert last == ("export", "refused")


def test_store_copy_stands_in_for_an_altered_original(
    small: dict[str, Path], tmp_path: Path
) -> None:
    catalogued = sha256_file(small["original"])
    small["original"].write_bytes(b"overwritten by mistake")
    out = tmp_path / "out"
    assert run(small["db"], "export", "INC-2", "--to", str(out))[0] == 0
    assert sha256_file(out / "originals" / "1_X60390008_20240116_093000.mp4") == catalogued


def test_a_changed_export_file_fails_sha256sum(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    run(db, "export", "INC-1", "--to", str(out), "--derivatives-only")
    target = out / "findings.json"
    target.chmod(0o644)
    target.write_text("{}")
    check = sha256sum_check(out)
    assert check.returncode == 1 and "findings.json: FAILED" in check.stdout

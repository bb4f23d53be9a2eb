"""`bwv demo`: the whole pipeline on the shipped sample media, start to finish.

It is the README's first command, so it must work from a fresh clone with nothing but
the repository: it builds a catalogue in a new (or given) folder, ingests every sample
clip with the real model, imports the four sample CSVs, records the one manual link a
person would make (a clip from a camera missing from the kit log), and writes the HTML
report and one child record. The sample cases cover every verdict, reason and officer finding.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bwv.core import audit
from bwv.core.db import database_url, get_engine, session_scope
from bwv.core.errors import BwvError
from bwv.services.compliance import decide_link, import_file, verdicts_report
from compliance.importer import KINDS, ImportResult
from compliance.output import contract_json
from compliance.report import Report, report_json
from compliance.report_html import render_html

if TYPE_CHECKING:
    from ingest.worker import IngestSummary

SAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "sample_media"
CHILD_RECORD = ("INC-2024-0008", "bwv demo: sample disclosure to children's social care")
MANUAL_LINK = (
    "X60390010_20240305_183000.mov",
    "INC-2024-0005",
    "Camera X60390010 missing from the kit log; booking sheet shows PC Foster took it",
)


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    database: Path
    report_path: Path
    json_path: Path
    record_path: Path
    imports: list[ImportResult]
    ingested: int
    skipped: int
    failed: int
    report: Report
    admin_password: str | None = None  # printed once; None when the admin already existed


def run_demo(
    out: Path | None, *, actor: str, workers: int | None = None, media: Path | None = None
) -> DemoResult:
    """Builds the demo catalogue in `out` (a new temporary folder when None)."""
    media = media or SAMPLE_MEDIA
    _check_media(media)
    folder = _folder(out)
    database = folder / "bwv.db"
    engine = get_engine(database_url(str(database)))
    _audit_start(engine, actor, folder)
    imports = [
        import_file(kind, media / f"{kind}.csv", engine=engine, actor=actor) for kind in KINDS
    ]
    ingested = _ingest(media, engine, actor, workers)
    clip, incident, reason = MANUAL_LINK
    decide_link(clip, incident, action="link", reason=reason, engine=engine, actor=actor)
    report = verdicts_report(engine=engine, actor=actor)
    report_path, json_path = _write_reports(report, folder)
    password = _demo_admin(engine, actor)
    record_path = _write_child_record(engine, actor, folder)
    return DemoResult(
        folder=folder,
        database=database,
        report_path=report_path,
        json_path=json_path,
        record_path=record_path,
        imports=imports,
        ingested=ingested.ingested,
        skipped=ingested.skipped,
        failed=ingested.failed,
        report=report,
        admin_password=password,
    )


def _demo_admin(engine: Engine, actor: str) -> str | None:
    """An `admin` for `bwv serve` with a random password, shown once and stored hashed."""
    import secrets

    from bwv.core.errors import BwvError
    from bwv.services.users import add_user

    password = secrets.token_urlsafe(12)
    try:
        add_user("admin", "admin", password, engine=engine, actor=actor)
    except BwvError:
        return None  # a demo folder used again keeps its admin
    return password


def _check_media(media: Path) -> None:
    missing = [f"{kind}.csv" for kind in KINDS if not (media / f"{kind}.csv").is_file()]
    if not media.is_dir() or missing:
        what = "is missing" if not media.is_dir() else f"lacks {', '.join(missing)}"
        raise BwvError(
            f"sample media folder {media} {what}; run `bwv demo` from a complete checkout "
            "of the repository (sample_media/ ships with it)"
        )


def _folder(out: Path | None) -> Path:
    if out is None:
        return Path(tempfile.mkdtemp(prefix="bwv-demo-"))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BwvError(f"cannot create demo folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise BwvError(f"cannot write to demo folder {out}")
    return out.resolve()


def _audit_start(engine: Engine, actor: str, folder: Path) -> None:
    with session_scope(engine) as session:
        audit.record(session, actor=actor, action="demo", details={"folder": str(folder)})


def _ingest(media: Path, engine: Engine, actor: str, workers: int | None) -> IngestSummary:
    from bwv.services.ingesting import ingest
    from ingest.worker import IngestOptions

    options = IngestOptions(workers=workers or min(4, os.cpu_count() or 1), model="tiny.en")
    return ingest([media], engine=engine, actor=actor, options=options)


def _write_reports(report: Report, folder: Path) -> tuple[Path, Path]:
    html_path = folder / "report.html"
    json_path = folder / "report.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_bytes(contract_json(report_json(report)))
    return html_path, json_path


def _write_child_record(engine: Engine, actor: str, folder: Path) -> Path:
    """One child record, as a partner agency would receive it (an audited disclosure)."""
    from bwv.services.child_record import write_child_record

    incident, reason = CHILD_RECORD
    path = folder / f"child-record-{incident}.html"
    write_child_record(incident, engine=engine, actor=actor, reason=reason, fmt="html", out=path)
    return path

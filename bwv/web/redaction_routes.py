"""The Redact page of a clip: tick faces, speakers and words to hide, preview, render.

Evidence officers and inspectors may redact; each action is one call into
`bwv.services.redaction_web`, which runs detection and rendering in the background (a
thread on SQLite, a `bwv worker` job on PostgreSQL) while the page polls the job's
progress from the catalogue (htmx). Media and thumbnails are found by clip id,
track label or redaction id, never by a path from the request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from bwv.core.errors import BwvError
from bwv.services import redaction_web, webviews
from bwv.web.app import checked_post, ranged, render, signed_in, stream
from redact.plan import Choices, parse_list, parse_span

router = APIRouter()


def _engine(request: Request) -> Engine:
    return request.app.state.engine


@router.get("/clips/{clip_id}/redact")
def redact_page(request: Request, clip_id: int, job: str = "") -> Response:
    user = signed_in(request, "redact")
    webviews.require_clip(_engine(request), clip_id)
    page = redaction_web.redact_page(_engine(request), clip_id, user.name)
    shown = redaction_web.job(job, clip_id, _engine(request)) if job else None
    return render(request, "redact.html", clip_id=clip_id, job=shown, **page)


@router.post("/clips/{clip_id}/redact/{kind}")
async def redact_start(request: Request, clip_id: int, kind: str) -> Response:
    user, form = await checked_post(request, "redact")
    webviews.require_clip(_engine(request), clip_id)
    multi = await request.form()
    choices = _choices(
        form, [str(v) for v in multi.getlist("faces")], [str(v) for v in multi.getlist("speakers")]
    )
    # Off the event loop: checking the choices and queueing the job wait on the database.
    job = await run_in_threadpool(
        redaction_web.start_job, _engine(request), kind, clip_id, user.name, choices
    )
    return RedirectResponse(f"/clips/{clip_id}/redact?job={job.id}", status_code=303)


def _choices(form: dict[str, str], faces: list[str], speakers: list[str]) -> Choices:
    spans = tuple(parse_span(t) for t in parse_list(form.get("mute", "")))
    return Choices(
        faces=",".join(faces) or "none",
        mute_speakers=tuple(speakers),
        mute_words=parse_list(form.get("words", "")),
        mute=spans,
        bleep=form.get("bleep") == "on",
        solid=form.get("solid") == "on",
        reason=form.get("reason", ""),
    )


@router.get("/clips/{clip_id}/redact/jobs/{job_id}")
def redact_job(request: Request, clip_id: int, job_id: str) -> Response:
    signed_in(request, "redact")
    job = redaction_web.job(job_id, clip_id, _engine(request))
    return render(request, "redact_job.html", clip_id=clip_id, job=job)


@router.get("/clips/{clip_id}/redact/tracks/{label}.jpg")
def track_thumbnail(request: Request, clip_id: int, label: str) -> Response:
    signed_in(request, "redact")
    content = redaction_web.track_thumbnail(_engine(request), clip_id, label)
    return Response(content, media_type="image/jpeg")


@router.get("/clips/{clip_id}/redact/preview.jpg")
def preview(
    request: Request, clip_id: int, t: float = 0.0, faces: str = "", solid: bool = False
) -> Response:
    signed_in(request, "redact")
    if not 0 <= t < 24 * 3600:
        raise BwvError(f"t={t:g}: not a time in the clip")
    labels = [f for f in faces.split(",") if f]
    content = redaction_web.preview(_engine(request), clip_id, t, labels, solid)
    return Response(content, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/redactions/{redaction_id}/media")
def redaction_media(request: Request, redaction_id: int) -> Response:
    user = signed_in(request, "redact")
    found = redaction_web.redaction_media(_engine(request), redaction_id)
    refused, first, last = ranged(request, found)
    if refused is not None:
        return refused
    if first == 0:
        redaction_web.audit_copy_playback(_engine(request), redaction_id, user.name)
    return stream(found, first, last, partial="range" in request.headers)

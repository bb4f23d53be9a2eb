"""The pages and actions of `bwv serve`; each one parses, calls a service and renders."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from bwv.core.errors import AccessDenied, BwvError
from bwv.services import users, webviews
from bwv.web.app import (
    COOKIE,
    HOME,
    RECORD_TYPES,
    TRAINER,
    checked_post,
    download,
    ranged,
    render,
    signed_in,
    stream,
)

router = APIRouter()


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html", user=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    created = users.sign_in(
        str(form.get("name", "")), str(form.get("password", "")), engine=_engine(request)
    )
    response = _see_other(HOME[created.user.role])
    response.set_cookie(
        COOKIE, created.token, httponly=True, samesite="strict", max_age=8 * 3600, path="/"
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_post(request, None)
    users.sign_out(request.cookies.get(COOKIE), engine=_engine(request))
    response = _see_other("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request) -> Response:
    return _see_other(HOME[signed_in(request).role])


@router.get("/incidents")
def incidents(request: Request, page: int = 1, by: str = "", gpage: int = 1) -> Response:
    signed_in(request, "catalogue")
    names = webviews.IncidentFilter.__dataclass_fields__
    wanted = webviews.IncidentFilter(
        **{k: v for k, v in request.query_params.items() if k in names}
    )
    listed = webviews.incidents_page(_engine(request), wanted, page)
    groups = webviews.consistency_page(_engine(request), by, gpage, wanted) if by else None
    return render(request, "incidents.html", listed=listed, wanted=wanted, by=by,
                  groups=groups, charts=groups.charts if groups else {})  # fmt: skip


@router.get("/incidents/{ref}")
def incident(request: Request, ref: str) -> Response:
    user = signed_in(request, "catalogue")
    from bwv.services.record_render import record_panel

    page = webviews.incident_page(_engine(request), ref, actor=user.name)
    v = page.detail.verdict
    return render(request, "incident.html", detail=page.detail, v=v, bars=page.bars,
                  record=record_panel(page.record))  # fmt: skip


@router.post("/incidents/{ref}/child-record")
async def child_record(request: Request, ref: str) -> Response:
    """The child record as a file: one audited disclosure, with the reason the form asks."""
    user, form = await checked_post(request, "catalogue")
    from bwv.services.child_record import write_child_record

    fmt = form.get("format", "md")
    _record, rendered = write_child_record(ref, engine=_engine(request), actor=user.name,
                                           reason=form.get("reason", ""), fmt=fmt,
                                           sent_to="web download")  # fmt: skip
    return download(rendered, f"child-record-{ref}.{fmt}", RECORD_TYPES[fmt])


@router.post("/incidents/{ref}/{action}")
async def link_decision(request: Request, ref: str, action: str) -> Response:
    user, form = await checked_post(request, "link")
    from bwv.services.compliance import decide_link

    if action not in ("link", "unlink"):
        raise BwvError(f"unknown decision {action!r}")
    decide_link(form.get("clip_id", ""), ref, action=action, reason=form.get("reason", ""),
                engine=_engine(request), actor=user.name)  # fmt: skip
    return _see_other(f"/incidents/{ref}")


@router.get("/clips/{clip_id}")
def clip(request: Request, clip_id: int) -> Response:
    user = signed_in(request, "catalogue")
    from compliance.policy import load_policy

    threshold = load_policy(None).child_probability_threshold
    page = webviews.clip_page(_engine(request), clip_id, actor=user.name, threshold=threshold)
    return render(request, "clip.html", clip_id=clip_id, detail=page.detail, **page.extras)


@router.get("/clips/{clip_id}/media")
def clip_media(request: Request, clip_id: int) -> Response:
    user = signed_in(request, "catalogue")
    return _media(request, clip_id, user.name, None)


def _media(request: Request, clip_id: int, actor: str, example: int | None) -> Response:
    media = webviews.media_file(_engine(request), clip_id)
    return _serve(request, media, clip_id, actor, example)


def _serve(
    request: Request, media: webviews.Media, clip_id: int, actor: str, example: int | None
) -> Response:
    """Streams a range of `media`; a playback started from the beginning is audited once."""
    refused, first, last = ranged(request, media)
    if refused is not None:
        return refused
    if first == 0:
        webviews.audit_playback(_engine(request), clip_id, actor=actor, example=example)
    return stream(media, first, last, partial="range" in request.headers)


@router.get("/clips/{clip_id}/thumbnail")
def clip_thumbnail(request: Request, clip_id: int) -> Response:
    signed_in(request, "catalogue")
    return Response(webviews.thumbnail(_engine(request), clip_id), media_type="image/jpeg")


@router.post("/clips/{clip_id}/review")
async def clip_review(request: Request, clip_id: int) -> Response:
    user, form = await checked_post(request, "review")
    from bwv.services.reviewing import record_review

    webviews.require_clip(_engine(request), clip_id)
    decision = form.get("decision", "")
    span = (_number(form, "start_s"), _number(form, "end_s"))
    record_review(str(clip_id), decision, span=span, reason=form.get("reason", ""),
                  engine=_engine(request), actor=user.name)  # fmt: skip
    return _see_other(f"/clips/{clip_id}")


def _number(form: dict[str, str], name: str) -> float | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise BwvError(f"{name}: {text!r} is not a number of seconds") from None


@router.post("/examples")
async def example_add(request: Request) -> Response:
    user, form = await checked_post(request, "add_example")
    clip_id = int(_number(form, "clip_id") or 0)
    span = (_number(form, "start_s") or 0.0, _number(form, "end_s") or 0.0)
    webviews.add_example(_engine(request), clip_id, span, form, user.name)
    return _see_other("/examples")


@router.get("/examples")
def examples(request: Request, practice: str = "", tag: str = "") -> Response:
    signed_in(request, "examples")
    found = webviews.examples(_engine(request), practice, tag)
    return render(request, "examples.html", examples=found, practice=practice, tag=tag)


@router.get("/examples/{example_id}")
def example(request: Request, example_id: int) -> Response:
    user = signed_in(request, "examples")
    found = webviews.example(_engine(request), example_id, approved_only=user.role == TRAINER,
                             actor=user.name)  # fmt: skip
    return render(request, "example.html", example=found)


@router.get("/examples/{example_id}/media")
def example_media(request: Request, example_id: int) -> Response:
    user = signed_in(request, "examples")
    found = webviews.example(_engine(request), example_id, approved_only=user.role == TRAINER,
                             actor=user.name)  # fmt: skip
    if user.role == TRAINER:  # a trainer plays the redacted copy or nothing, never the original
        return _redacted_media(request, found.clip_id, user.name, example_id)
    return _media(request, found.clip_id, user.name, example_id)


def _redacted_media(request: Request, clip_id: int, actor: str, example: int) -> Response:
    from bwv.services.redaction_web import redacted_media

    return _serve(request, redacted_media(_engine(request), clip_id), clip_id, actor, example)


@router.post("/examples/{example_id}/approve")
async def example_approve(request: Request, example_id: int) -> Response:
    user, _form = await checked_post(request, "approve")
    webviews.approve_example(_engine(request), example_id, user.name)
    return _see_other("/examples")


@router.get("/queue")
def queue(request: Request, page: int = 1) -> Response:
    signed_in(request, "catalogue")
    items, listed = webviews.review_queue(_engine(request), page)
    return render(request, "queue.html", items=items, listed=listed)


@router.get("/export.csv")
def export_csv(request: Request) -> Response:
    user = signed_in(request, "catalogue")
    from bwv.services.compliance import verdicts_report
    from compliance.render import render_csv

    report = verdicts_report(engine=_engine(request), actor=user.name)
    return download(render_csv(report).encode("utf-8"), "bwv-report.csv", "text/csv")


@router.get("/admin/users")
def users_page(request: Request) -> Response:
    user = signed_in(request, "users")
    listed = users.list_users(engine=_engine(request), actor=user.name)
    return render(request, "users.html", users=listed, roles=users.ROLES)


@router.post("/admin/users")
async def user_add(request: Request) -> Response:
    user, form = await checked_post(request, "users")
    users.add_user(form.get("name", ""), form.get("role", ""), form.get("password", ""),
                   engine=_engine(request), actor=user.name)  # fmt: skip
    return _see_other("/admin/users")


@router.post("/admin/users/{name}/disable")
async def user_disable(request: Request, name: str) -> Response:
    user, _form = await checked_post(request, "users")
    if name == user.name:
        raise AccessDenied("you cannot disable yourself")
    users.disable_user(name, engine=_engine(request), actor=user.name)
    return _see_other("/admin/users")

"""The web app: parses each request, calls one service function, renders a template.

Every route but the login page and static files needs a signed-in session; each role
sees only its pages (`ROLES_OF`). Media are found by clip id, never by a path from the
request, opened read-only and served with HTTP Range (206; 416 outside the file).
Templates autoescape; every form and htmx request carries the session's CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from bwv.core.child_speech import speaker_label
from bwv.core.errors import AccessDenied, BwvError, LoginRefused, NotFound
from bwv.services import users, webviews

HERE = Path(__file__).parent
COOKIE = "bwv_session"
EO, INSPECTOR, TRAINER, ADMIN = "evidence_officer", "inspector", "trainer", "admin"
ROLES_OF = {
    "catalogue": {EO, INSPECTOR},  # incidents, clips, media, queue, export
    "link": {EO},
    "review": {INSPECTOR},
    "examples": {EO, INSPECTOR, TRAINER},
    "add_example": {INSPECTOR, TRAINER},
    "approve": {INSPECTOR},
    "users": {ADMIN},
    "redact": {EO, INSPECTOR},  # face tracks, redaction plans and rendered copies
}
HOME = {EO: "/incidents", INSPECTOR: "/queue", TRAINER: "/examples", ADMIN: "/admin/users"}
CHUNK = 256 * 1024
RECORD_TYPES = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8",
                "json": "application/json"}  # fmt: skip


class SignInNeeded(Exception):
    """No live session: the browser is sent to the login page."""


# `bwv serve --workers N`: each process opens the catalogue named here. Nothing else is
# shared between processes but the catalogue itself: sessions, CSRF tokens, lockouts and
# the audit trail live in it, and each process's judged verdicts are checked against the
# audit trail's last change on every request, so no process serves stale verdicts.
SERVE_DATABASE = "BWV_SERVE_DATABASE_URL"


def app_from_environment() -> FastAPI:
    """The app of one of several server processes (uvicorn's factory)."""
    import os

    from bwv.core.db import get_engine

    return create_app(get_engine(os.environ[SERVE_DATABASE]))


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _errors(app)
    from bwv.web import redaction_routes, routes

    app.include_router(routes.router)
    app.include_router(redaction_routes.router)
    return app


templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescapes .html
templates.env.filters["speaker"] = speaker_label  # S1, S2 ... as the CLI prints them


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", getattr(request.state, "user", None))
    return templates.TemplateResponse(request, name, context, status_code=code)


def _errors(app: FastAPI) -> None:
    statuses = {NotFound: 404, AccessDenied: 403, LoginRefused: 401, BwvError: 400}

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse("/login", status_code=303)

    for kind, status in statuses.items():

        def handler(request: Request, exc: Exception, status: int = status) -> Response:
            return render(request, "error.html", status, message=str(exc), status=status)

        app.add_exception_handler(kind, handler)


def signed_in(request: Request, right: str | None = None) -> users.SignedIn:
    """The session's user, who must hold `right`; POSTs must carry the CSRF token."""
    user = users.session_user(request.cookies.get(COOKIE), engine=request.app.state.engine)
    if user is None:
        raise SignInNeeded()
    request.state.user = user
    if right is not None and user.role not in ROLES_OF[right]:
        raise AccessDenied(f"a {user.role} may not do this")
    return user


async def checked_post(
    request: Request, right: str | None
) -> tuple[users.SignedIn, dict[str, str]]:
    """A POST's user and form, refused (403) without the session's CSRF token."""
    user = signed_in(request, right)
    form = {key: str(value) for key, value in (await request.form()).items()}
    token = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not users.check_csrf(user, token):
        raise AccessDenied("missing or wrong CSRF token; reload the page and try again")
    return user, form


def download(content: bytes, name: str, media_type: str) -> Response:
    """A file the browser saves (never renders in the app's origin), under a safe name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120]
    headers = {
        "Content-Disposition": f'attachment; filename="{safe}"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(content, media_type=media_type, headers=headers)


def ranged(request: Request, media: webviews.Media) -> tuple[Response | None, int, int]:
    """(a 416 response, or None), first and last byte wanted by the Range header."""
    header = request.headers.get("range")
    if not header:
        return None, 0, media.size - 1
    unit, _, spec = header.partition("=")
    first_text, _, last_text = spec.split(",")[0].strip().partition("-")
    try:
        if unit.strip() != "bytes" or (not first_text and not last_text):
            raise ValueError(header)
        if first_text:
            first = int(first_text)
            last = min(int(last_text), media.size - 1) if last_text else media.size - 1
        else:
            first, last = max(media.size - int(last_text), 0), media.size - 1
    except ValueError:
        first, last = media.size, 0  # unreadable: refused below like one outside the file
    if first >= media.size or first > last or first < 0:
        headers = {"Content-Range": f"bytes */{media.size}"}
        return Response(status_code=416, headers=headers), 0, 0
    return None, first, last


def stream(media: webviews.Media, first: int, last: int, partial: bool) -> Response:
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1)}
    if partial:
        headers["Content-Range"] = f"bytes {first}-{last}/{media.size}"
    return StreamingResponse(
        _chunks(media.path, first, last),
        status_code=206 if partial else 200,
        media_type=media.media_type,
        headers=headers,
    )


def _chunks(path: Path, first: int, last: int) -> Iterator[bytes]:
    with path.open("rb") as handle:  # read-only: evidence is never modified
        handle.seek(first)
        left = last - first + 1
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data

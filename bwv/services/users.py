"""Who may use `bwv serve`: users with one role, sign-in with lockout, server-side sessions.

Passwords are hashed with argon2 (pwdlib) and never stored or logged. A browser holds a
random session token in an HttpOnly cookie; the catalogue keeps only its SHA-256, the
user and a CSRF token, so a copied database gives no way in. Repeated wrong passwords
lock the name for a while; a disabled user (a leaver) cannot sign in and loses every
session at once. Each change and each sign-in is an audit event.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine, bindparam, delete
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from bwv.core import audit
from bwv.core.db import read_connection, session_scope
from bwv.core.errors import BwvError, LoginRefused, NotFound
from bwv.core.models import User, WebSession, utc_now

ROLES = ("evidence_officer", "inspector", "trainer", "admin")
MIN_PASSWORD = 10
MAX_FAILURES = 5  # wrong passwords in a row before the name is locked
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)  # one shift


@dataclass(frozen=True)
class UserView:
    name: str
    role: str
    disabled: bool
    locked_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class SignedIn:
    """The user behind a session cookie, and the CSRF token its forms must carry."""

    user_id: int
    name: str
    role: str
    csrf_token: str


@dataclass(frozen=True)
class NewSession:
    token: str  # goes in the cookie; only its hash is stored
    user: SignedIn


@cache
def _hasher() -> Any:
    from pwdlib import PasswordHash  # argon2 is loaded only by commands that need it

    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def add_user(name: str, role: str, password: str, *, engine: Engine, actor: str) -> UserView:
    """A new user; names are unique and kept once taken (a leaver is disabled, not removed)."""
    name = _checked_name(name)
    if role not in ROLES:
        raise BwvError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise BwvError(f"the password is too short; give at least {MIN_PASSWORD} characters")
    with session_scope(engine) as session:
        if session.exec(select(User).where(col(User.name) == name)).first() is not None:
            raise BwvError(f"user {name!r} already exists")
        user = User(name=name, role=role, password_hash=hash_password(password))
        session.add(user)
        session.flush()
        audit.record(
            session, actor=actor, action="user_add", object_ids=[f"user:{name}"],
            details={"role": role},
        )  # fmt: skip
        return _view(user)


def _checked_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 64 or not cleaned.isprintable():
        raise BwvError("a user name is 1 to 64 printable characters")
    return cleaned


def disable_user(name: str, *, engine: Engine, actor: str) -> UserView:
    """A leaver: can no longer sign in, and every open session ends now."""
    with session_scope(engine) as session:
        user = _user(session, name)
        user.disabled = True
        session.add(user)
        session.execute(delete(WebSession).where(col(WebSession.user_id) == user.id))
        audit.record(session, actor=actor, action="user_disable", object_ids=[f"user:{name}"])
        return _view(user)


def list_users(*, engine: Engine, actor: str) -> list[UserView]:
    with session_scope(engine) as session:
        users = session.exec(select(User).order_by(col(User.name))).all()
        audit.record(session, actor=actor, action="user_list", details={"count": len(users)})
        return [_view(user) for user in users]


def _user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(col(User.name) == name)).first()
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user


def _view(user: User) -> UserView:
    return UserView(user.name, user.role, user.disabled, user.locked_until, user.created_at)


def sign_in(name: str, password: str, *, engine: Engine) -> NewSession:
    """A new session for a right password; every refusal says the same, and is audited."""
    with session_scope(engine) as session:
        user = session.exec(select(User).where(col(User.name) == name)).first()
        problem = _refusal(user, password)
        if problem is not None or user is None:
            _count_failure(session, user)
            audit.record(
                session, actor=name[:64], action="login", outcome="refused",
                details={"why": problem},
            )  # fmt: skip
        else:
            user.failed_logins, user.locked_until = 0, None
            session.add(user)
            created = _new_session(session, user)
            audit.record(session, actor=user.name, action="login", object_ids=[f"user:{name}"])
            return created
    raise LoginRefused("wrong name or password, or the account is disabled or locked")


def _refusal(user: User | None, password: str) -> str | None:
    """Why a sign-in is refused (for the audit trail only), or None."""
    if user is None:
        _hasher().hash(password)  # same work as a real check: timing tells no names apart
        return "unknown user"
    if user.disabled:
        return "disabled"
    if user.locked_until is not None and user.locked_until > utc_now():
        return "locked"
    if not _hasher().verify(password, user.password_hash):
        return "wrong password"
    return None


def _count_failure(session: Session, user: User | None) -> None:
    if user is None:
        return
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILURES:
        user.locked_until, user.failed_logins = utc_now() + LOCKOUT, 0
    session.add(user)


def _new_session(session: Session, user: User) -> NewSession:
    assert user.id is not None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utc_now()
    session.add(
        WebSession(
            token_hash=_token_hash(token), user_id=user.id, csrf_token=csrf,
            created_at=now, expires_at=now + SESSION_LIFETIME,
        )
    )  # fmt: skip
    return NewSession(token, SignedIn(user.id, user.name, user.role, csrf))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_user(token: str | None, *, engine: Engine) -> SignedIn | None:
    """The enabled user of a live session, or None (no cookie, expired, ended, disabled)."""
    if not token:
        return None
    with read_connection(engine) as connection:  # plain columns, no ORM session
        found: Any = connection.execute(_SESSION_USER, {"hash": _token_hash(token)}).first()
    if found is None:
        return None
    user_id, name, role, disabled, csrf_token, expires_at = found
    if disabled or expires_at <= utc_now():
        return None
    return SignedIn(user_id, name, role, csrf_token)


_SESSION_USER = (
    core_select(
        *(col(c) for c in (User.id, User.name, User.role, User.disabled)),
        col(WebSession.csrf_token),
        col(WebSession.expires_at),
    )
    .join(WebSession, col(WebSession.user_id) == col(User.id))
    .where(col(WebSession.token_hash) == bindparam("hash"))
)


def sign_out(token: str | None, *, engine: Engine) -> None:
    if not token:
        return
    with session_scope(engine) as session:
        query = delete(WebSession).where(col(WebSession.token_hash) == _token_hash(token))
        session.execute(query)


def check_csrf(user: SignedIn, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(user.csrf_token, given)

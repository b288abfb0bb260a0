"""Login sessions that survive a reload and end everywhere on logout.

The browser keeps a random 256-bit token (a cookie set by ``app.session_cookie``); the database
keeps only its SHA-256 (:class:`db.models.LoginSession`), like the invite tokens. A session ends
after :data:`IDLE_LIMIT` without activity, after :data:`MAX_AGE` in any case, when the user
logs out (every session of the account: every tab and device), when the password is reset or
the account deactivated. The app checks the session on every script run *and* inside the
transaction that stores an answer (:func:`require_live`), so a tab that was open when the
reader logged out elsewhere cannot vote any more.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from db.models import LoginSession, User
from studies import clock
from studies.errors import AuthError

IDLE_LIMIT = timedelta(hours=8)
MAX_AGE = timedelta(hours=24)
# last_seen_at is written at most this often (a rerun per click must not mean a write per click)
_TOUCH_EVERY = timedelta(minutes=1)
SESSION_ENDED = "Your session has ended (logged out, expired or signed in again); log in again."


def _hash(token: str) -> str:
    return hashlib.sha256(str(token).encode("utf-8")).hexdigest()


def start(session: Session, user: User, source: str = "unknown") -> str:
    """Open a session for an authenticated ``user``; returns the token (only its hash is
    stored)."""
    now = clock.now()
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            token_sha256=_hash(token),
            user_id=user.id,
            source=str(source)[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + MAX_AGE,
        )
    )
    session.flush()
    return token


def _live_row(session: Session, token: str | None, now: datetime) -> LoginSession | None:
    if not token:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.token_sha256 == _hash(token)))
    if (
        row is None
        or row.revoked_at is not None
        or clock.as_utc(row.expires_at) <= now
        or clock.as_utc(row.last_seen_at) + IDLE_LIMIT <= now
    ):
        return None
    return row


def resume(session: Session, token: str | None) -> User | None:
    """The active user of a live session ``token`` (refreshing its activity), else None."""
    now = clock.now()
    row = _live_row(session, token, now)
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if clock.as_utc(row.last_seen_at) + _TOUCH_EVERY <= now:
        row.last_seen_at = now
        session.flush()
    return user


def require_live(session: Session, token: str | None) -> User:
    """Like :func:`resume` but raises :class:`AuthError` (:data:`SESSION_ENDED`) instead of
    returning None: the check a service runs before it writes on the user's behalf."""
    user = resume(session, token)
    if user is None:
        raise AuthError(SESSION_ENDED)
    return user


def end(session: Session, token: str | None) -> None:
    """End one session (no error if it is unknown or already ended)."""
    if token:
        session.execute(
            update(LoginSession)
            .where(LoginSession.token_sha256 == _hash(token), LoginSession.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )


def end_all(session: Session, user_id: int | None) -> int:
    """End every open session of the account (logout, password reset, deactivation)."""
    if user_id is None:
        return 0
    # DML statements yield a CursorResult; Session.execute is only typed as Result
    return (
        cast(
            CursorResult[Any],
            session.execute(
                update(LoginSession)
                .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
                .values(revoked_at=clock.now())
            ),
        ).rowcount
        or 0
    )


__all__ = [
    "IDLE_LIMIT",
    "MAX_AGE",
    "SESSION_ENDED",
    "end",
    "end_all",
    "require_live",
    "resume",
    "start",
]

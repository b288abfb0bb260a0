"""Shared app plumbing: the cached engine, short-lived sessions, the login in session state.

Streamlit caches the *engine* (``st.cache_resource``); every action opens its own short
``Session`` through :func:`db_session` and closes it, so no ORM object outlives a request.

The login is a small frozen record in ``st.session_state`` (user id, name, role, login time and
the token of its database login session, :mod:`studies.sessions`). The token is also kept in
the browser as a cookie (:mod:`app.session_cookie`), so a reload (a new Streamlit session)
resumes the login from ``st.context.cookies``. Every script run checks the token against the
database, so a logout in one tab (which ends every session of the account) ends all tabs;
sessions expire after :data:`studies.sessions.IDLE_LIMIT` without activity.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import streamlit as st

from studies.sessions import IDLE_LIMIT

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from db.models import User

__all__ = [
    "IDLE_LIMIT",
    "Login",
    "current_login",
    "db_session",
    "log_in",
    "log_out",
    "require_login",
    "show_flash",
]

LOGIN_KEY = "turingct_login"
LAST_SEEN_KEY = "turingct_last_seen"
FLASH_KEY = "turingct_flash"
STUDY_KEY = "turingct_study_id"  # the study a reader is working on (server side only)
COOKIE_KEY = "turingct_cookie"  # what the session cookie must become on the next run
RESEARCH_ROLES = ("researcher", "admin")
# Behind a reverse proxy every client has the proxy's address; name the header the proxy sets
# with the client address (e.g. X-Real-IP) here. Only set it when the proxy overwrites it:
# a client can send any header.
ENV_CLIENT_IP_HEADER = "TURINGCT_CLIENT_IP_HEADER"


@dataclass(frozen=True)
class Login:
    """Who is logged in; ``role`` is the :class:`db.models.Role` value."""

    user_id: int
    username: str
    role: str
    login_at: datetime
    session_token: str | None = None  # studies.sessions token; None is never accepted

    @property
    def is_researcher(self) -> bool:
        return self.role in RESEARCH_ROLES


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    from db.session import open_engine

    return open_engine(url)


def get_engine() -> Engine:
    """The process-wide engine for ``$TURINGCT_DATABASE_URL`` (set by ``turingct serve``)."""
    from core.settings import database_url

    return _engine(database_url())


@contextlib.contextmanager
def db_session() -> Iterator[Session]:
    """One unit of work (commit on success, rollback on error); never cache what it yields."""
    from db.session import session_scope

    with session_scope(get_engine()) as session:
        yield session


def now() -> datetime:
    return datetime.now(UTC)


def client_source() -> str:
    """The client's address for login throttling: ``st.context.ip_address`` (the websocket's
    TCP peer; Streamlit gives None for localhost, recorded as "local"), or the header named in
    ``$TURINGCT_CLIENT_IP_HEADER`` when a reverse proxy sets it."""
    header = os.environ.get(ENV_CLIENT_IP_HEADER, "").strip()
    try:
        if header:
            value = (st.context.headers.get(header) or "").split(",")[0].strip()
            if value:
                return value[:64]
        return (st.context.ip_address or "local")[:64]
    except Exception:  # no browser context (AppTest, bare script run)
        return "local"


def _store_login(user: User, token: str) -> Login:
    login = Login(
        user.id,
        user.username,
        str(user.role.value if hasattr(user.role, "value") else user.role),
        now(),
        token,
    )
    st.session_state[LOGIN_KEY] = login
    st.session_state[LAST_SEEN_KEY] = login.login_at
    return login


def log_in(session: Session, user: User) -> Login:
    """Open a login session for the authenticated ``user`` (in ``session``, the auth
    transaction), keep it in session state and have the browser store its cookie."""
    from studies import sessions

    token = sessions.start(session, user, client_source())
    st.session_state[COOKIE_KEY] = token
    return _store_login(user, token)


def log_out(message: str | None = None) -> None:
    """End the login everywhere (every session of the account: all tabs), forget everything
    page-specific (case timers, selected study) and clear the browser's cookie."""
    login = st.session_state.get(LOGIN_KEY)
    if login is not None:
        from studies import sessions

        with db_session() as session:
            sessions.end_all(session, login.user_id)
    _forget(message)


def _forget(message: str | None) -> None:
    for key in list(st.session_state.keys()):
        if str(key).startswith("turingct_") or str(key).startswith("case_"):
            del st.session_state[key]
    st.session_state[COOKIE_KEY] = ""  # clear the cookie on the next run
    if message:
        st.session_state[FLASH_KEY] = message


def _cookie_token() -> str | None:
    from app.session_cookie import COOKIE_NAME

    try:
        return st.context.cookies.get(COOKIE_NAME) or None
    except Exception:  # no browser context
        return None


def current_login(at: datetime | None = None) -> Login | None:
    """The login if its database session is still live (checked on every run), else None.

    Without a login in session state (a reload), the browser's session cookie is tried. A
    login whose session ended (logout in another tab, expiry, password reset, deactivation) is
    dropped with a message.
    """
    from studies import sessions

    login = st.session_state.get(LOGIN_KEY)
    if login is None:
        token = _cookie_token()
        if token is None or st.session_state.get(COOKIE_KEY) == "":
            return None  # no cookie, or one this session has just cleared
        with db_session() as session:
            user = sessions.resume(session, token)
            login = _store_login(user, token) if user is not None else None
        if login is None:
            st.session_state[COOKIE_KEY] = ""  # a dead cookie: remove it
        return login
    with db_session() as session:
        alive = sessions.resume(session, login.session_token) is not None
    if not alive:
        _forget(
            "Your session has ended (logged out in another tab, expired or the account "
            "changed); please log in again."
        )
        return None
    st.session_state[LAST_SEEN_KEY] = at or now()
    return login


def load_user(session: Session, login: Login) -> User:
    """The logged-in user's row in ``session``; logs out (and stops) if it is gone/inactive."""
    from db.models import User

    user = session.get(User, login.user_id)
    if user is None or not user.is_active:
        log_out("Your account is no longer active; contact the study organiser.")
        st.rerun()
    return user


def require_login(*roles: str) -> Login:
    """Page guard: the current login, or an error and ``st.stop()`` when the role is not allowed.

    Pages call this first, in addition to ``st.navigation`` only listing allowed pages, so a
    page reached by any other route still refuses.
    """
    login = current_login()
    if login is None:
        st.error("Please log in first.")
        st.stop()
    if roles and login.role not in roles:
        st.error(f"Access denied: this page is only for {' / '.join(roles)} accounts.")
        st.stop()
    return login


def show_flash() -> None:
    """Show (once) a message left by a previous run, e.g. after logout or expiry."""
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.info(message)

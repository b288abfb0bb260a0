"""Shared app plumbing: the cached engine, short-lived sessions, the login in session state.

Streamlit caches the *engine* (``st.cache_resource``); every action opens its own short
``Session`` through :func:`db_session` and closes it, so no ORM object outlives a request. The
login is a small frozen record in ``st.session_state`` (user id, name, role, login time); the
user row is re-read in each session to notice deactivated accounts. Sessions expire after
:data:`IDLE_LIMIT` without activity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from db.models import User

IDLE_LIMIT = timedelta(hours=8)
LOGIN_KEY = "turingct_login"
LAST_SEEN_KEY = "turingct_last_seen"
FLASH_KEY = "turingct_flash"
STUDY_KEY = "turingct_study_id"   # the study a reader is working on (server side only)
RESEARCH_ROLES = ("researcher", "admin")


@dataclass(frozen=True)
class Login:
    """Who is logged in; ``role`` is the :class:`db.models.Role` value."""

    user_id: int
    username: str
    role: str
    login_at: datetime

    @property
    def is_researcher(self) -> bool:
        return self.role in RESEARCH_ROLES


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    from db.session import open_engine

    return open_engine(url)


def get_engine() -> Engine:
    """The process-wide engine for ``$TURINGCT_DATABASE_URL`` (set by ``turingct serve``)."""
    from turingct.config import database_url

    return _engine(database_url())


@contextlib.contextmanager
def db_session() -> Iterator[Session]:
    """One unit of work (commit on success, rollback on error); never cache what it yields."""
    from db.session import session_scope

    with session_scope(get_engine()) as session:
        yield session


def now() -> datetime:
    return datetime.now(UTC)


def log_in(user: User) -> Login:
    """Store the authenticated ``user`` in session state (call inside the auth session)."""
    login = Login(user.id, user.username, str(user.role.value if hasattr(user.role, "value")
                                                else user.role), now())
    st.session_state[LOGIN_KEY] = login
    st.session_state[LAST_SEEN_KEY] = login.login_at
    return login


def log_out(message: str | None = None) -> None:
    """Forget the login and everything page-specific (case timers, selected study)."""
    for key in list(st.session_state.keys()):
        if str(key).startswith("turingct_") or str(key).startswith("case_"):
            del st.session_state[key]
    if message:
        st.session_state[FLASH_KEY] = message


def current_login(at: datetime | None = None) -> Login | None:
    """The login if present and not idle for more than :data:`IDLE_LIMIT`; refreshes activity."""
    login = st.session_state.get(LOGIN_KEY)
    if login is None:
        return None
    at = at or now()
    last = st.session_state.get(LAST_SEEN_KEY, login.login_at)
    if at - last > IDLE_LIMIT:
        hours = int(IDLE_LIMIT.total_seconds() // 3600)
        log_out(f"Your session expired after {hours} hours without activity; please log in "
                "again.")
        return None
    st.session_state[LAST_SEEN_KEY] = at
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
        st.error("Access denied: this page is only for "
                 f"{' / '.join(roles)} accounts.")
        st.stop()
    return login


def show_flash() -> None:
    """Show (once) a message left by a previous run, e.g. after logout or expiry."""
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.info(message)

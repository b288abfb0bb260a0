"""Login sessions: hashed tokens, idle and absolute expiry, logout ends every tab."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import LoginSession
from db.session import session_scope
from studies import accounts, clock, sessions
from studies.errors import AuthError

_REAL_NOW = clock.now


def _shift_clock(monkeypatch, delta: timedelta) -> None:
    """The clock ``delta`` after the real time (not cumulative)."""
    base = _REAL_NOW()
    monkeypatch.setattr(clock, "now", lambda: base + delta)


def test_token_resumes_and_only_its_hash_is_stored(engine):
    with session_scope(engine) as s:
        ann = accounts.create_user(s, "ann", "correct horse")
        token = sessions.start(s, ann, "10.0.0.9")
    with session_scope(engine) as s:
        assert sessions.resume(s, token).username == "ann"
        stored = s.scalar(select(LoginSession.token_sha256))
        assert stored != token and len(stored) == 64
        assert sessions.resume(s, token + "x") is None
        assert sessions.resume(s, None) is None


def test_logout_ends_every_session_of_the_account(engine):
    """Issue 10 item 11: logging out in one tab left other tabs able to vote."""
    with session_scope(engine) as s:
        ann = accounts.create_user(s, "ann", "correct horse")
        tab1, tab2 = sessions.start(s, ann), sessions.start(s, ann)
        other = sessions.start(s, accounts.create_user(s, "bob", "bob password"))
    with session_scope(engine) as s:
        assert sessions.end_all(s, ann.id) == 2
    with session_scope(engine) as s:
        assert sessions.resume(s, tab1) is None and sessions.resume(s, tab2) is None
        with pytest.raises(AuthError, match="session has ended"):
            sessions.require_live(s, tab2)
        assert sessions.resume(s, other).username == "bob"


def test_idle_and_absolute_expiry(engine, monkeypatch):
    with session_scope(engine) as s:
        token = sessions.start(s, accounts.create_user(s, "ann", "correct horse"))
    _shift_clock(monkeypatch, sessions.IDLE_LIMIT - timedelta(minutes=1))
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is not None  # activity: idle timer restarts
    _shift_clock(monkeypatch, 2 * sessions.IDLE_LIMIT - timedelta(minutes=3))
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is not None
    _shift_clock(monkeypatch, sessions.MAX_AGE + timedelta(seconds=1))
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is None  # absolute limit, however active


def test_idle_session_expires(engine, monkeypatch):
    with session_scope(engine) as s:
        token = sessions.start(s, accounts.create_user(s, "ann", "correct horse"))
    _shift_clock(monkeypatch, sessions.IDLE_LIMIT + timedelta(seconds=1))
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is None


def test_password_reset_ends_sessions(engine):
    with session_scope(engine) as s:
        ann = accounts.create_user(s, "ann", "correct horse")
        token = sessions.start(s, ann)
        accounts.set_password(s, ann, "another password", actor=accounts.OPERATOR)
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is None

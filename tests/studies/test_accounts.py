"""Accounts: argon2 hashes, login errors and lockout, single-use expiring invites, roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import Invite, Role, User
from db.session import session_scope
from studies import accounts, clock
from studies.errors import AccessDenied, AuthError, StudyError


def _shift_clock(monkeypatch, delta: timedelta) -> None:
    base = clock.now()
    monkeypatch.setattr(clock, "now", lambda: base + delta)


def test_password_is_hashed_with_argon2(engine):
    with session_scope(engine) as s:
        user = accounts.create_user(s, "ann", "correct horse", years_experience=7)
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    with session_scope(engine) as s:
        assert accounts.authenticate(s, "ann", "correct horse").username == "ann"


def test_wrong_password_and_unknown_user_get_the_same_message(engine):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
    for name, pw in (("ann", "wrong pass"), ("nobody", "correct horse")):
        with session_scope(engine) as s, pytest.raises(AuthError) as err:
            accounts.authenticate(s, name, pw)
        assert str(err.value) == "Wrong username or password."


def test_lockout_after_five_failures_then_expiry(engine, monkeypatch):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
    for _ in range(accounts.MAX_FAILURES):
        # each failure is committed even though the caller's transaction rolls back
        with pytest.raises(AuthError), session_scope(engine) as s:
            accounts.authenticate(s, "ann", "nope-nope")
    with pytest.raises(AuthError, match="try again in 5 minutes"), session_scope(engine) as s:
        accounts.authenticate(s, "ann", "correct horse")
    _shift_clock(monkeypatch, accounts.LOCKOUT + timedelta(seconds=1))
    with session_scope(engine) as s:
        user = accounts.authenticate(s, "ann", "correct horse")
        assert user.failed_logins == 0 and user.locked_until is None


def test_invite_single_use_and_only_hash_stored(engine, tmp_path):
    with session_scope(engine) as s:
        user = accounts.create_user(s, "bob")
        token = accounts.create_invite(s, user)
    assert accounts.invite_link(token).endswith(f"/?invite={token}")
    with session_scope(engine) as s:
        stored = s.scalar(select(Invite.token_sha256))
    assert stored != token and len(stored) == 64
    with pytest.raises(AuthError), session_scope(engine) as s:  # no password yet
        accounts.authenticate(s, "bob", "new password 1")
    with session_scope(engine) as s:
        accounts.redeem_invite(s, token, "new password 1")
    with session_scope(engine) as s:
        assert accounts.authenticate(s, "bob", "new password 1").username == "bob"
    with pytest.raises(AuthError, match="already used"), session_scope(engine) as s:
        accounts.redeem_invite(s, token, "other password")
    with pytest.raises(AuthError, match="not valid"), session_scope(engine) as s:
        accounts.redeem_invite(s, token + "x", "other password")


def test_invite_expires(engine, monkeypatch):
    with session_scope(engine) as s:
        token = accounts.create_invite(s, accounts.create_user(s, "bob"), ttl_hours=1)
    _shift_clock(monkeypatch, timedelta(hours=1, seconds=1))
    with pytest.raises(AuthError, match="expired"), session_scope(engine) as s:
        accounts.redeem_invite(s, token, "new password 1")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"username": "a b"}, "username must be"),
    ({"username": "ann", "password": "short"}, "at least 8 characters"),
    ({"username": "ann2", "role": "boss"}, "role must be one of"),
    ({"username": "ann3", "years_experience": -1}, "years of experience"),
])
def test_create_user_validation(engine, kwargs, fragment):
    with session_scope(engine) as s, pytest.raises(StudyError, match=fragment):
        accounts.create_user(s, **kwargs)


def test_duplicate_username(engine):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann")
    with session_scope(engine) as s, pytest.raises(StudyError, match="already exists"):
        accounts.create_user(s, "ann")


def test_require_role(engine):
    with session_scope(engine) as s:
        reader = accounts.create_user(s, "ann")
        admin = accounts.create_user(s, "root", role="admin")
    accounts.require_role(admin, Role.ADMIN, Role.RESEARCHER)
    accounts.require_role(accounts.OPERATOR, "researcher", "admin")
    with pytest.raises(AccessDenied, match="needs role admin or researcher"):
        accounts.require_role(reader, Role.ADMIN, Role.RESEARCHER)
    with pytest.raises(AccessDenied):
        accounts.require_role(None, Role.READER)
    disabled = User(username="x", role=Role.ADMIN, is_active=False)
    with pytest.raises(AccessDenied, match="disabled"):
        accounts.require_role(disabled, Role.ADMIN)


def test_list_users_is_for_staff_only_and_hides_hashes(engine):
    with session_scope(engine) as s:
        reader = accounts.create_user(s, "ann", "correct horse")
        accounts.create_user(s, "bob", role="researcher")
        with pytest.raises(AccessDenied):
            accounts.list_users(s, reader)
        rows = accounts.list_users(s, accounts.OPERATOR)
    assert [(r.username, r.role, r.has_password) for r in rows] == [
        ("ann", "reader", True), ("bob", "researcher", False)]
    assert not any("argon2" in str(r) for r in rows)

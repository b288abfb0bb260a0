"""Accounts: argon2 hashes, login errors and lockout, single-use expiring invites, roles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import Invite, Role, User
from db.session import session_scope
from studies import accounts, clock, login_throttle, sessions
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


def _fail_logins(engine, name, source, n=accounts.MAX_FAILURES):
    for _ in range(n):
        # each failure is committed even though the caller's transaction rolls back
        with pytest.raises(AuthError), session_scope(engine) as s:
            accounts.authenticate(s, name, "nope-nope", source)


def test_lockout_after_five_failures_then_expiry(engine, monkeypatch):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
    _fail_logins(engine, "ann", "10.0.0.9")
    with pytest.raises(AuthError, match="try again in 5 minutes"), session_scope(engine) as s:
        accounts.authenticate(s, "ann", "correct horse", "10.0.0.9")
    _shift_clock(monkeypatch, accounts.LOCKOUT + timedelta(seconds=1))
    with session_scope(engine) as s:
        assert accounts.authenticate(s, "ann", "correct horse", "10.0.0.9").username == "ann"
        assert not login_throttle.locked_usernames(s)


def test_lockout_answer_is_the_same_for_unknown_usernames(engine):
    """Issue 10 item 3: a real account said "Too many failed logins" after 5 failures while an
    unknown name kept saying "Wrong username or password.", telling which names exist."""
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
    answers = {}
    for name in ("ann", "nobody"):
        seen = []
        for _ in range(accounts.MAX_FAILURES + 2):
            with pytest.raises(AuthError) as err, session_scope(engine) as s:
                accounts.authenticate(s, name, "nope-nope", "10.0.0.9")
            seen.append(re.sub(r" \(after \d\d:\d\d UTC\)", "", str(err.value)))
        answers[name] = seen  # (the clock time in the lock message is left out)
    assert answers["ann"] == answers["nobody"]
    assert answers["ann"][: accounts.MAX_FAILURES] == [accounts.WRONG_CREDENTIALS] * 5
    assert "Too many failed logins" in answers["ann"][-1]


def test_lockout_is_per_source_so_others_cannot_lock_a_reader_out(engine):
    """Issue 10 item 3: typing a reader's name five times must not lock the reader out."""
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
    _fail_logins(engine, "ann", "203.0.113.7")  # the attacker's address is locked ...
    with pytest.raises(AuthError, match="Too many"), session_scope(engine) as s:
        accounts.authenticate(s, "ann", "correct horse", "203.0.113.7")
    with session_scope(engine) as s:  # ... the reader at her own address logs in
        assert accounts.authenticate(s, "ann", "correct horse", "10.0.0.9").username == "ann"
        assert login_throttle.locked_usernames(s) == {"ann"}  # staff see the lock


def test_lockout_backs_off(engine, monkeypatch):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
    assert [login_throttle.lockout_duration(k) for k in (1, 2, 3, 4, 5, 9)] == [
        timedelta(minutes=m) for m in (5, 10, 20, 40, 60, 60)
    ]
    _fail_logins(engine, "ann", "x")
    _shift_clock(monkeypatch, timedelta(minutes=5, seconds=1))  # first lock over
    _fail_logins(engine, "ann", "x")
    with pytest.raises(AuthError, match="try again in 10 minutes"), session_scope(engine) as s:
        accounts.authenticate(s, "ann", "correct horse", "x")


def test_unlock_by_a_researcher(engine):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", "correct horse")
        accounts.create_user(s, "rita", "rita password", role="researcher")
    _fail_logins(engine, "ann", "x")
    with session_scope(engine) as s:
        rita = accounts.require_user(s, "rita")
        assert [u.locked for u in accounts.list_users(s, rita) if u.username == "ann"] == [True]
        assert accounts.unlock(s, accounts.require_user(s, "ann"), actor=rita) == 1
    with session_scope(engine) as s:
        assert accounts.authenticate(s, "ann", "correct horse", "x").username == "ann"


# (actor role, target role) -> may the actor invite / reset / unlock / deactivate the target
MANAGE = {
    ("reader", "reader"): False,
    ("reader", "researcher"): False,
    ("reader", "admin"): False,
    ("researcher", "reader"): True,
    ("researcher", "researcher"): False,
    ("researcher", "admin"): False,
    ("admin", "reader"): True,
    ("admin", "researcher"): True,
    ("admin", "admin"): True,
}


@pytest.mark.parametrize("actor_role, target_role", sorted(MANAGE))
def test_invite_and_reset_only_by_a_role_above_the_target(engine, actor_role, target_role):
    """Issue 10 item 1: a researcher took over the admin account with a new invite link."""
    with session_scope(engine) as s:
        actor = accounts.create_user(s, "actor", "actor password", role=actor_role)
        target = accounts.create_user(s, "target", "target password", role=target_role)
        allowed = MANAGE[actor_role, target_role]
        assert accounts.can_manage(actor, target.role) is allowed
        actions = [
            lambda: accounts.create_invite(s, target, actor=actor),
            lambda: accounts.set_password(s, target, "new password 9", actor=actor),
            lambda: accounts.revoke_invites(s, target, actor=actor),
            lambda: accounts.unlock(s, target, actor=actor),
            lambda: accounts.set_active(s, target, False, actor=actor),
        ]
        for action in actions:
            if allowed:
                action()
            else:
                with pytest.raises(AccessDenied):
                    action()
    if not allowed:  # the target's password still works
        with session_scope(engine) as s:
            assert accounts.authenticate(s, "target", "target password").username == "target"


def test_only_admins_create_staff_accounts(engine):
    with session_scope(engine) as s:
        rita = accounts.create_user(s, "rita", "rita password", role="researcher")
        root = accounts.create_user(s, "root", "root password", role="admin")
        accounts.create_user(s, "ann", role="reader", actor=rita)
        for role in ("researcher", "admin"):
            with pytest.raises(AccessDenied, match="may not create"):
                accounts.create_user(s, f"x{role}", role=role, actor=rita)
            accounts.create_user(s, f"y{role}", role=role, actor=root)


def test_a_new_invite_revokes_the_earlier_ones(engine):
    """Issue 10 item 2: old invite links stayed valid after a newer one was issued."""
    with session_scope(engine) as s:
        bob = accounts.create_user(s, "bob")
        first = accounts.create_invite(s, bob, actor=accounts.OPERATOR)
        second = accounts.create_invite(s, bob, actor=accounts.OPERATOR)
    with pytest.raises(AuthError) as err, session_scope(engine) as s:
        accounts.redeem_invite(s, first, "new password 1")
    assert str(err.value) == accounts.INVITE_INVALID
    with session_scope(engine) as s:
        assert accounts.redeem_invite(s, second, "new password 2").username == "bob"


def test_revoke_invites(engine):
    with session_scope(engine) as s:
        bob = accounts.create_user(s, "bob")
        token = accounts.create_invite(s, bob, actor=accounts.OPERATOR)
        assert accounts.list_users(s, accounts.OPERATOR)[0].invite_expires_at is not None
        assert accounts.revoke_invites(s, bob, actor=accounts.OPERATOR) == 1
        assert accounts.list_users(s, accounts.OPERATOR)[0].invite_expires_at is None
    with pytest.raises(AuthError, match="no longer valid"), session_scope(engine) as s:
        accounts.redeem_invite(s, token, "new password 1")


def test_used_revoked_expired_and_unknown_links_get_one_message(engine, monkeypatch):
    with session_scope(engine) as s:
        users = [accounts.create_user(s, n) for n in ("u1", "u2", "u3")]
        used = accounts.create_invite(s, users[0], actor=accounts.OPERATOR)
        revoked = accounts.create_invite(s, users[1], actor=accounts.OPERATOR)
        accounts.create_invite(s, users[1], actor=accounts.OPERATOR)  # replaces `revoked`
        expired = accounts.create_invite(s, users[2], ttl_hours=1, actor=accounts.OPERATOR)
        accounts.redeem_invite(s, used, "new password 1")
    _shift_clock(monkeypatch, timedelta(hours=1, seconds=1))
    for token in (used, revoked, expired, "not-a-token"):
        with pytest.raises(AuthError) as err, session_scope(engine) as s:
            accounts.redeem_invite(s, token, "new password 2")
        assert str(err.value) == accounts.INVITE_INVALID


def test_invite_lifetime_bounds(engine):
    with session_scope(engine) as s:
        bob = accounts.create_user(s, "bob")
        for bad in (0, -1, accounts.MAX_INVITE_HOURS + 1, float("nan"), True):
            with pytest.raises(StudyError, match="invite lifetime"):
                accounts.create_invite(s, bob, ttl_hours=bad, actor=accounts.OPERATOR)


def test_deactivate_ends_sessions_and_invites(engine):
    with session_scope(engine) as s:
        ann = accounts.create_user(s, "ann", "correct horse")
        token = sessions.start(s, ann)
        invite = accounts.create_invite(s, ann, actor=accounts.OPERATOR)
        accounts.set_active(s, ann, False, actor=accounts.OPERATOR)
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is None
        with pytest.raises(AuthError, match="disabled"):
            accounts.authenticate(s, "ann", "correct horse")
    with pytest.raises(AuthError, match="no longer valid"), session_scope(engine) as s:
        accounts.redeem_invite(s, invite, "new password 1")
    with session_scope(engine) as s:
        accounts.set_active(s, accounts.require_user(s, "ann"), True, actor=accounts.OPERATOR)
        assert accounts.authenticate(s, "ann", "correct horse").username == "ann"


def test_nobody_deactivates_their_own_account(engine):
    with session_scope(engine) as s:
        root = accounts.create_user(s, "root", "root password", role="admin")
        with pytest.raises(StudyError, match="your own account"):
            accounts.set_active(s, root, False, actor=root)


def test_change_own_password(engine):
    with session_scope(engine) as s:
        ann = accounts.create_user(s, "ann", "correct horse")
        with pytest.raises(AuthError, match="current password is wrong"):
            accounts.change_own_password(s, ann, "wrong one", "new password 1")
        with pytest.raises(StudyError, match="at least 8"):
            accounts.change_own_password(s, ann, "correct horse", "short")
        accounts.change_own_password(s, ann, "correct horse", "new password 1")
    with session_scope(engine) as s:
        assert accounts.authenticate(s, "ann", "new password 1").username == "ann"


def test_invite_single_use_and_only_hash_stored(engine, tmp_path):
    with session_scope(engine) as s:
        user = accounts.create_user(s, "bob")
        token = accounts.create_invite(s, user, actor=accounts.OPERATOR)
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
    with pytest.raises(AuthError, match="no longer valid"), session_scope(engine) as s:
        accounts.redeem_invite(s, token, "other password")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"username": "a b"}, "username must be"),
        ({"username": "ann", "password": "short"}, "at least 8 characters"),
        ({"username": "ann2", "role": "boss"}, "role must be one of"),
        ({"username": "ann3", "years_experience": -1}, "years of experience"),
    ],
)
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
        ("ann", "reader", True),
        ("bob", "researcher", False),
    ]
    assert not any("argon2" in str(r) for r in rows)

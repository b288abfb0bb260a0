"""Login, logout, session expiry and invite pages (AppTest)."""

from __future__ import annotations

from datetime import timedelta

from tests.app.conftest import PASSWORD, button, new_app, texts


def _login(at, username, password):
    at.run()
    labels = [t.label for t in at.text_input]
    assert labels == ["Username", "Password"]
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    button(at, "Log in").click()
    return at.run()


def test_wrong_password_is_refused_with_a_clear_message(app_db):
    at = _login(new_app(app_db), "ann", "not the password")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert "My studies" not in texts(at)


def test_unknown_user_gets_the_same_message(app_db):
    at = _login(new_app(app_db), "nobody", PASSWORD)
    assert [e.value for e in at.error] == ["Wrong username or password."]


def test_reader_logs_in_and_sees_their_study(app_db):
    at = _login(new_app(app_db), "ann", PASSWORD)
    assert not at.exception
    assert "My studies" in [t.value for t in at.title]
    assert "0 of 6 cases answered" in [p.proto.text for p in at.get("progress")]
    assert [b.label for b in at.button if b.label in ("Start", "Continue")] == ["Start"]


def test_logout_returns_to_login(app_db):
    at = new_app(app_db, "ann").run()
    button(at.sidebar, "Log out").click()
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "You have been logged out." in texts(at)


def _age_login_sessions(app_db, idle) -> None:
    """Make every login session look idle for ``idle`` (its last activity moved back)."""
    from sqlalchemy import update

    from db.models import LoginSession
    from db.session import session_scope
    from studies import clock

    with session_scope(app_db.engine) as s:
        s.execute(update(LoginSession).values(last_seen_at=clock.now() - idle))


def test_session_expires_after_idle_limit(app_db):
    from app.state import IDLE_LIMIT

    at = new_app(app_db, "ann")
    _age_login_sessions(app_db, IDLE_LIMIT + timedelta(minutes=1))
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "expired" in texts(at)


def test_recent_activity_keeps_the_session(app_db):
    from app.state import IDLE_LIMIT

    at = new_app(app_db, "ann")
    _age_login_sessions(app_db, IDLE_LIMIT - timedelta(minutes=5))
    at.run()
    assert "My studies" in [t.value for t in at.title]


def test_invite_link_sets_password_and_logs_in(app_db):
    from db.models import User
    from db.session import session_scope
    from studies.accounts import OPERATOR, authenticate, create_invite, create_user

    with session_scope(app_db.engine) as s:
        token = create_invite(s, create_user(s, "newbie"), actor=OPERATOR)
    at = new_app(app_db)
    at.query_params["invite"] = token
    at.run()
    assert [t.label for t in at.text_input] == ["New password", "Repeat password"]
    at.text_input[0].input("a fine passphrase")
    at.text_input[1].input("a fine passphrase")
    button(at, "Set password").click()
    at.run()
    assert not at.exception
    assert "My studies" in [t.value for t in at.title]
    with session_scope(app_db.engine) as s:
        assert authenticate(s, "newbie", "a fine passphrase").username == "newbie"
        assert s.query(User).filter_by(username="newbie").one().password_hash is not None
    # the link is single use
    again = new_app(app_db)
    again.query_params["invite"] = token
    again.run()
    again.text_input[0].input("another passphrase")
    again.text_input[1].input("another passphrase")
    button(again, "Set password").click()
    again.run()
    assert "no longer valid" in again.error[0].value

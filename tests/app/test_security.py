"""Security of the app pages (AppTest): user text is never rendered as markdown, no page shows a
traceback box for bad input, sessions end in every tab, invites follow the role rule.

Issue 10 items 1, 2, 5, 11, 12 (the real-browser side is in test_browser_security.py).
"""

from __future__ import annotations

import markdown_it
import pytest

from tests.app.conftest import PASSWORD, button, new_app, shown, texts

EVIL_IMAGE = "![x](http://127.0.0.1:9/evil.png)"
EVIL_LINK = "[link](javascript:alert(1))"
HOSTILE = [
    EVIL_IMAGE,
    EVIL_LINK,
    "<img src=x onerror=alert(1)>",
    "short",
    "",
    " " * 3,
    "x" * 5000,
    "1. ## :red[big]",
]
_MD = markdown_it.MarkdownIt("commonmark", {"html": True})
_MARKDOWN_KINDS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "error",
    "warning",
    "info",
    "success",
    "toast",
)


def assert_plain(at) -> None:
    """No element renders markup that came from user input: no image, no link, no HTML."""
    for kind in _MARKDOWN_KINDS:
        for element in getattr(at, kind):
            html = _MD.render(str(getattr(element, "value", "") or ""))
            assert "<img" not in html and "<a href" not in html, (kind, element.value, html)


def _no_crash(at, where: str) -> None:
    assert not at.exception, (where, [e.value for e in at.exception])
    assert_plain(at)


def test_echoed_username_is_plain_text(app_db):
    """A username such as ``![x](http://host/...)`` echoed in an error made the browser fetch
    that URL (the message was markdown)."""
    at = new_app(app_db, "rita", "researcher").run()
    at.switch_page("pages_/readers.py").run()
    for evil in (EVIL_IMAGE, EVIL_LINK):
        [t for t in at.text_input if t.label == "Username of the new account"][0].input(evil)
        button(at, "Create account").click()
        at.run()
        (error,) = at.error
        assert "username must be" in shown(error.value) and evil in shown(error.value)
        html = _MD.render(error.value)
        assert "<img" not in html and "<a " not in html, html


def _fill(at, value: str) -> None:
    for t in at.text_input:
        t.input(value)
    for t in at.text_area:
        t.input(value)


PAGES = {
    "reader": ["pages_/my_studies.py", "pages_/reading.py"],
    "researcher": [
        "pages_/studies.py",
        "pages_/readers.py",
        "pages_/progress.py",
        "pages_/datasets.py",
        "pages_/synthesis.py",
        "pages_/dashboard.py",
    ],
}
_SKIP = {"Log out", "Launch"}  # Launch starts a real batch process (tested with a fake one)


@pytest.mark.parametrize("role", sorted(PAGES))
def test_every_page_survives_bad_input_without_a_traceback_box(app_db, role):
    """Issue 10 item 12: a short invite password gave Streamlit's generic crash box. Every
    page, every button, with hostile text in every field: never an exception box."""
    user = "ann" if role == "reader" else "rita"
    for page in PAGES[role]:
        at = new_app(app_db, user, role).run()
        at.switch_page(page).run()
        _no_crash(at, page)
        labels = [b.label for b in at.button if b.label not in _SKIP]
        for value, label in zip(HOSTILE * len(labels), labels, strict=False):
            _fill(at, value)
            found = [b for b in at.button if b.label == label and not b.disabled]
            if found:
                found[0].click()
                at.run()
                _no_crash(at, f"{page}: {label} with {value[:20]!r}")


def test_login_and_invite_pages_survive_bad_input(app_db):
    for value in HOSTILE:
        at = new_app(app_db).run()
        _fill(at, value)
        button(at, "Log in").click()
        at.run()
        _no_crash(at, f"login with {value[:20]!r}")
        invite = new_app(app_db)
        invite.query_params["invite"] = value or "x"
        invite.run()
        _fill(invite, value)
        button(invite, "Set password").click()
        invite.run()
        _no_crash(invite, f"invite with {value[:20]!r}")


def test_short_invite_password_gets_the_rule_and_one_line(app_db):
    from db.session import session_scope
    from studies.accounts import OPERATOR, PASSWORD_RULE, create_invite, create_user

    with session_scope(app_db.engine) as s:
        token = create_invite(s, create_user(s, "newbie"), actor=OPERATOR)
    at = new_app(app_db)
    at.query_params["invite"] = token
    at.run()
    assert PASSWORD_RULE in texts(at)  # stated next to the field
    _fill(at, "short")
    button(at, "Set password").click()
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The password is too short: it needs at least 8 characters."
    ]


def test_researcher_cannot_invite_an_admin_from_the_readers_page(app_db):
    """Issue 10 item 1: Existing account -> labadmin -> New invite link took the admin over."""
    from db.session import session_scope
    from studies.accounts import authenticate, create_user

    with session_scope(app_db.engine) as s:
        create_user(s, "labadmin", "admin password", role="admin")
    at = new_app(app_db, "rita", "researcher").run()
    at.switch_page("pages_/readers.py").run()
    assert [s.options for s in at.selectbox if s.label == "Role"] == [["reader"]]
    for action in ("New invite link", "Deactivate", "Unlock", "Revoke invites"):
        [s for s in at.selectbox if s.label == "Account"][0].set_value("labadmin")
        button(at, action).click()
        at.run()
        assert not at.code, action  # no invite link shown
        assert [shown(e.value) for e in at.error] == [
            "Access denied: researcher accounts may not manage admin accounts; ask an admin"
        ], action
    with session_scope(app_db.engine) as s:
        assert authenticate(s, "labadmin", "admin password").username == "labadmin"


def test_logout_in_one_tab_ends_the_other_tabs(app_db):
    """Issue 10 item 11: after a logout in one tab another tab could still vote."""
    from sqlalchemy import func, select

    from db.models import Answer
    from db.session import session_scope

    other = new_app(app_db, "ann").run()  # a second tab, already on a case
    (start,) = [b for b in other.button if b.label in ("Start", "Continue")]
    start.click()
    other.run()
    assert "Case 1 of 6" in texts(other)
    tab = new_app(app_db, "ann").run()
    button(tab.sidebar, "Log out").click()
    tab.run()
    other.run()  # any interaction of the other tab (its vote: tests/app/test_reader.py)
    assert [t.label for t in other.text_input] == ["Username", "Password"]
    assert "session has ended" in texts(other)
    with session_scope(app_db.engine) as s:
        assert s.scalar(select(func.count()).select_from(Answer)) == 0


def test_a_reload_resumes_the_login_from_the_session_cookie(app_db, monkeypatch):
    """Issue 10 item 11: F5 logged the reader out. A new Streamlit session (the reload) with
    the browser's cookie is logged in; a dead cookie is not."""
    from app import state
    from tests.app.conftest import login_token

    token = login_token(app_db, "ann")
    monkeypatch.setattr(state, "_cookie_token", lambda: token)
    at = new_app(app_db).run()
    assert "My studies" in [t.value for t in at.title]
    button(at.sidebar, "Log out").click()
    at.run()
    reload = new_app(app_db).run()  # the same (now revoked) cookie
    assert [t.label for t in reload.text_input] == ["Username", "Password"]


def test_login_form_opens_a_session_and_sets_the_cookie(app_db, monkeypatch):
    from app import session_cookie

    sent = []
    monkeypatch.setattr(session_cookie, "sync_cookie", sent.append)
    monkeypatch.setattr("app.main.sync_cookie", sent.append, raising=False)
    at = new_app(app_db).run()
    at.text_input[0].input("ann")
    at.text_input[1].input(PASSWORD)
    button(at, "Log in").click()
    at.run()
    assert "My studies" in [t.value for t in at.title]
    from app.state import LOGIN_KEY

    token = at.session_state[LOGIN_KEY].session_token
    from db.session import session_scope
    from studies import sessions

    with session_scope(app_db.engine) as s:
        assert sessions.resume(s, token).username == "ann"


def test_study_form_lists_unknown_readers_with_invite_links(app_db):
    """Unknown reader names in the study form created password-less accounts silently."""
    at = new_app(app_db, "rita", "researcher").run()
    at.switch_page("pages_/studies.py").run()
    [t for t in at.text_input if t.label == "Name"][0].input("with-new-readers")
    [n for n in at.number_input if n.label == "Real cases per organ"][0].set_value(3)
    [n for n in at.number_input if n.label == "Synthetic cases per organ"][0].set_value(3)
    [t for t in at.text_input if t.label.startswith("Readers")][0].input("ann, carol")
    button(at, "Create study").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("1 reader name(s) had no account" in w.value for w in at.warning)
    (links,) = [d.value for d in at.dataframe if "invite link" in d.value.columns]
    assert list(links["reader"]) == ["carol"]
    assert links["invite link"][0].startswith("http://localhost:8501/?invite=")


def test_secure_download_payload_round_trips():
    from app.secure_download import pack, unpack

    head, content = unpack(pack(b"code,arm\nab12,real\n", "t1-key.csv", "text/csv"))
    assert content == b"code,arm\nab12,real\n"
    assert head["name"] == "t1-key.csv" and head["mime"] == "text/csv" and head["nonce"]
    assert unpack(pack(b"x", "a", "b"))[0]["nonce"] != head["nonce"]  # each press downloads


def test_serve_turns_off_what_streamlit_lets_us():
    """Issue 10 item 7; what cannot be turned off is documented in docs/operations.md."""
    from app.server import streamlit_command

    argv, _ = streamlit_command(8765, "127.0.0.1", "sqlite:////tmp/x.db", base_env={})
    opts = dict(
        zip(argv[argv.index("run") + 2 :: 2], argv[argv.index("run") + 3 :: 2], strict=True)
    )
    assert {
        k: opts[k]
        for k in (
            "--client.showErrorDetails",
            "--client.showErrorLinks",
            "--client.toolbarMode",
            "--server.enableAgentApi",
            "--server.enableStaticServing",
            "--server.enableXsrfProtection",
            "--server.enableCORS",
            "--browser.gatherUsageStats",
            "--global.developmentMode",
            "--server.maxUploadSize",
        )
    } == {
        "--client.showErrorDetails": "none",
        "--client.showErrorLinks": "false",
        "--client.toolbarMode": "minimal",
        "--server.enableAgentApi": "false",
        "--server.enableStaticServing": "false",
        "--server.enableXsrfProtection": "true",
        "--server.enableCORS": "true",
        "--browser.gatherUsageStats": "false",
        "--global.developmentMode": "false",
        "--server.maxUploadSize": "10",
    }


def test_page_icon_is_a_local_file():
    """A ``:material/...:`` page icon made every page fetch it from a font CDN."""
    from tests.app.conftest import MAIN

    source = MAIN.read_text(encoding="utf-8")
    assert ":material/radiology:" not in source and "page_icon=str(ICON)" in source
    assert (MAIN.parent / "static" / "icon.png").stat().st_size < 4096


def test_metrics_guard_blocks_only_the_metrics_endpoint():
    import asyncio

    from app.asgi import BlockEndpoints

    passed, sent = [], []

    async def inner(scope, receive, send):
        passed.append(scope["path"])

    async def send(message):
        sent.append(message)

    guard = BlockEndpoints(inner)
    for path in ("/_stcore/metrics", "/base/_stcore/metrics/", "/_stcore/health", "/"):
        asyncio.run(guard({"type": "http", "path": path}, None, send))
    asyncio.run(guard({"type": "websocket", "path": "/_stcore/stream"}, None, send))
    assert passed == ["/_stcore/health", "/", "/_stcore/stream"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [404, 404]


def test_session_start_message_loses_the_install_path():
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from app.asgi import MAIN_SCRIPT, scrub_session_start

    msg = ForwardMsg()
    msg.new_session.main_script_path = str(MAIN_SCRIPT)
    msg.new_session.initialize.environment_info.python_version = "3.11.7"
    msg.new_session.initialize.environment_info.server_os = "Linux"
    msg.new_session.initialize.environment_info.streamlit_version = "1.67.0"
    out = ForwardMsg.FromString(scrub_session_start(msg.SerializeToString()))
    assert out.new_session.main_script_path == "main.py"
    env = out.new_session.initialize.environment_info
    assert (env.python_version, env.server_os, env.streamlit_version) == ("", "", "1.67.0")
    other = ForwardMsg()
    other.delta.new_element.markdown.body = "hello"
    assert scrub_session_start(other.SerializeToString()) == other.SerializeToString()

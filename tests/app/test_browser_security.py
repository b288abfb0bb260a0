"""Real-browser security checks (headless Debian Chromium via Playwright), issue 10 items 1-7
and 11: an attacker's path through the app as it is served by `turingct serve`.

- a researcher cannot take over the admin account with "New invite link";
- an earlier invite link stops working once a newer one is issued (one clear message);
- the lockout answers are the same for a real and an unknown username, and typing a reader's
  name five times from one address does not lock the reader out at another address;
- the unblinding key reaches the researcher's browser as a download, and no ``/media/`` URL
  serves it to a request without a session;
- a username typed as markdown is shown as text (the browser fetches nothing);
- no request leaves 127.0.0.1 (page icon shipped locally); ``/_stcore/metrics`` answers 404;
- a reload keeps the reader logged in; a logout in one tab ends the other tab (it cannot vote).
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.app import browser
from tests.app.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_missing = browser.browser_missing()
if _missing:
    pytestmark.append(
        pytest.mark.skip(reason=f"browser test needs Chromium and Playwright: {_missing}")
    )

ADMIN_PASSWORD = "admin password 1"


def _record_requests(page, into: list[str]) -> None:
    page.on("request", lambda req: into.append(req.url))


def _wait_text(page, text: str, timeout: float = 30_000):
    page.get_by_text(text).first.wait_for(timeout=timeout)


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox ``label`` (re-opened if a rerun closed it)."""
    box = page.get_by_role("combobox", name=label)
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(5):
        box.scroll_into_view_if_needed()
        box.click()
        try:
            choice.wait_for(timeout=5_000)
            break
        except Exception:  # the list closed again (the script reran): open it once more
            page.keyboard.press("Escape")
    choice.click()


def _login_answer(page, base: str, username: str, password: str) -> str:
    """Submit the login form once; the error or 'ok'."""
    page.goto(f"{base}/")
    page.wait_for_selector('[data-testid="stApp"]')
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    alert = page.locator('[data-testid="stAlertContentError"]')
    logout = page.get_by_role("button", name="Log out")
    alert.or_(logout).first.wait_for(timeout=30_000)
    return "ok" if logout.count() else alert.first.inner_text().strip()


def _untimed(message: str) -> str:
    """The message without its clock time (two locks started a minute apart differ there)."""
    return re.sub(r" \(after \d\d:\d\d UTC\)", "", message)


def _invite(db_url: str, username: str) -> str:
    done = subprocess.run(
        [*browser.TURINGCT, "reader", "invite", "--username", username, "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return re.search(r"\?invite=(\S+)", done.stdout).group(1)


def _redeem(page, base: str, token: str, password: str) -> None:
    page.goto(f"{base}/?invite={token}")
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Repeat password", exact=True).fill(password)
    page.get_by_role("button", name="Set password").click()


def test_attacker_paths_are_closed(app_db, tmp_path, monkeypatch):
    from db.session import session_scope
    from studies.accounts import create_user

    with session_scope(app_db.engine) as s:
        create_user(s, "labadmin", ADMIN_PASSWORD, role="admin")
        create_user(s, "newbie")
    monkeypatch.setenv("TURINGCT_CLIENT_IP_HEADER", "X-Real-IP")
    art = browser.ARTIFACTS
    art.mkdir(exist_ok=True)
    requests: list[str] = []
    with (
        browser.serve(app_db.url, art / "security-server.log") as base,
        browser.chromium_page() as page,
    ):
        _record_requests(page, requests)
        frames: list[bytes] = []
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived", lambda f: frames.append(f if isinstance(f, bytes) else f.encode())
            ),
        )
        port = base.rsplit(":", 1)[1]

        # 7. the metrics endpoint (no Streamlit setting turns it off) is not served
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/_stcore/metrics", timeout=10)
        assert refused.value.code == 404
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=10) as r:
            assert r.status == 200

        # 7. the session-start message does not carry the install path
        page.goto(f"{base}/")
        page.get_by_label("Username", exact=True).wait_for(timeout=30_000)
        assert frames and not [f for f in frames if str(browser.REPO).encode() in f]

        # 1. a researcher cannot take over the admin account (issue 10 item 1)
        browser.log_in(page, base, "rita", PASSWORD, path="readers")
        page.get_by_role("heading", name="Readers and invites").wait_for(timeout=30_000)
        _pick(page, "Account", "labadmin")
        page.get_by_role("button", name="New invite link").click()
        _wait_text(page, "may not manage admin accounts")
        assert "?invite=" not in page.content()
        page.screenshot(path=str(art / "security-invite-refused.png"))

        # 5. a username typed as markdown is shown as text; the image URL is never fetched
        evil = f"![x](http://127.0.0.1:{port}/evil-username.png)"
        page.get_by_label("Username of the new account").fill(evil)
        page.get_by_role("button", name="Create account").click()
        _wait_text(page, "username must be")
        page.wait_for_timeout(500)
        assert not [u for u in requests if "evil-username" in u]
        assert page.get_by_text(evil, exact=False).count() >= 1  # shown verbatim

        # 6. the key CSV: a download for this browser, no /media/ URL for anyone else
        page.goto(f"{base}/studies")
        page.get_by_role("button", name="Download key CSV").wait_for(timeout=30_000)
        # nothing built before the researcher asks (the page icon is the only media file)
        assert not re.search(r"/media/[^\"']+\.(csv|html)", page.content())
        with page.expect_download(timeout=30_000) as download:
            page.get_by_role("button", name="Download key CSV").click()
        key = Path(download.value.path()).read_text(encoding="utf-8")
        assert download.value.suggested_filename == "t1-key.csv"
        assert key.splitlines()[0].startswith("code,arm") and len(key.splitlines()) == 7
        page.wait_for_timeout(500)
        media = {u for u in requests if "/media/" in u}
        media |= {f"{base}{h}" for h in re.findall(r'"(/media/[^"]+)"', page.content())}
        for url in media:  # e.g. the page icon: none may hold the key
            try:
                with urllib.request.urlopen(url, timeout=10) as r:  # no cookie, no session
                    assert b"synthetic" not in r.read(), url
            except urllib.error.HTTPError:
                pass
        assert not [u for u in media if u.endswith(".csv")]

        # 2. stale invites: the first of two links fails with the one message
        first, second = _invite(app_db.url, "newbie"), _invite(app_db.url, "newbie")
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("Username", exact=True).wait_for(timeout=30_000)
        _redeem(page, base, first, "newbie passphrase")
        _wait_text(page, "This invite link is no longer valid")
        _redeem(page, base, second, "newbie passphrase")
        page.get_by_role("button", name="Log out").wait_for(timeout=30_000)
        page.screenshot(path=str(art / "security-invite-redeemed.png"))
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("Username", exact=True).wait_for(timeout=30_000)

        # 3. lockout: the same answers for a real and an unknown name; per address
        browser_ = page.context.browser
        attacker = browser_.new_context(extra_http_headers={"X-Real-IP": "203.0.113.7"})
        apage = attacker.new_page()
        _record_requests(apage, requests)
        answers = {
            name: [_untimed(_login_answer(apage, base, name, "wrong guess")) for _ in range(6)]
            for name in ("ann", "nobody")
        }
        assert answers["ann"] == answers["nobody"], answers
        assert answers["ann"][:5] == ["Wrong username or password."] * 5
        assert answers["ann"][5].startswith("Too many failed logins; try again in 5 minutes")
        assert _login_answer(apage, base, "ann", PASSWORD).startswith("Too many")
        apage.screenshot(path=str(art / "security-lockout.png"))
        attacker.close()

        # 11. the reader at her own address: logs in, a reload keeps the login, a logout in
        # another tab ends this one
        reader = browser_.new_context(extra_http_headers={"X-Real-IP": "10.0.0.9"})
        tab1 = reader.new_page()
        _record_requests(tab1, requests)
        assert _login_answer(tab1, base, "ann", PASSWORD) == "ok"
        tab1.reload()
        tab1.get_by_role("button", name="Log out").wait_for(timeout=30_000)  # still logged in
        tab1.get_by_role("button", name="Start").click()
        tab1.get_by_role("heading", name="Case 1 of 6").wait_for(timeout=30_000)
        tab2 = reader.new_page()
        tab2.goto(f"{base}/")
        tab2.get_by_role("button", name="Log out").click()  # same cookie: same session
        tab2.get_by_label("Username", exact=True).wait_for(timeout=30_000)
        tab1.wait_for_timeout(1200)
        tab1.get_by_role("button", name=re.compile(r"^Real\b")).click()
        tab1.get_by_label("Username", exact=True).wait_for(timeout=30_000)
        tab1.screenshot(path=str(art / "security-other-tab-logged-out.png"))
        reader.close()

    # no answer was stored by the logged-out tab
    from sqlalchemy import func, select

    from db.models import Answer

    with session_scope(app_db.engine) as s:
        assert s.scalar(select(func.count()).select_from(Answer)) == 0
    # 7. nothing left the machine (page icon and fonts are local)
    outside = [
        u
        for u in requests
        if not re.match(
            r"^(http://127\.0\.0\.1|ws://127\.0\.0\.1|"
            r"blob:|data:|about:)",
            u,
        )
    ]
    assert outside == []

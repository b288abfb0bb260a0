"""Real-browser end-to-end test of the reader flow (headless Debian Chromium via Playwright).

A reader logs in, answers three cases with the buttons, reloads the page (a new browser
session), logs in again and resumes at "Case 4 of 6"; `turingct study results` then lists
exactly those three answers with their durations. A reader who types a researcher page's URL is
refused. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import csv
import re
import subprocess

import pytest

from tests.app import browser
from tests.app.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_missing = browser.browser_missing()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"browser test needs Chromium and Playwright: "
                                              f"{_missing}"))


def _case_heading(page, k: int, n: int = 6):
    page.get_by_role("heading", name=f"Case {k} of {n}").wait_for(timeout=30_000)


def test_reader_answers_three_cases_reloads_and_resumes(app_db, tmp_path):
    art = browser.ARTIFACTS
    art.mkdir(exist_ok=True)
    with browser.serve(app_db.url, art / "e2e-server.log") as base, \
            browser.chromium_page() as page:
        browser.log_in(page, base, "ann", PASSWORD)
        page.get_by_role("button", name="Start").click()
        _case_heading(page, 1)
        browser.wait_viewer(page)
        page.wait_for_timeout(1500)  # let NiiVue draw before the screenshot
        page.screenshot(path=str(art / "reader-case1.png"))
        for k, label in enumerate(("Real", "Synthetic", "Unsure"), start=1):
            page.wait_for_timeout(400)  # a reader looks at the case before answering
            # the accessible name carries the keyboard shortcut too ("Real 1")
            page.get_by_role("button", name=re.compile(rf"^{label}\b")).click()
            _case_heading(page, k + 1)
        browser.wait_viewer(page)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(art / "reader-case4.png"))

        page.reload()  # new websocket session: the login is gone, the answers are not
        browser.log_in(page, base, "ann", PASSWORD)
        page.get_by_role("button", name="Continue").click()
        _case_heading(page, 4)
        browser.wait_viewer(page)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(art / "reader-resumed.png"))

        # no arm-revealing text anywhere in the page the reader got
        html = page.content().lower()
        for word in ("synthetic_", "phantom", "handcrafted", "liver_syn", "liver_real"):
            assert word not in html

        # a reader typing a researcher page's URL
        browser.log_in(page, base, "ann", PASSWORD, path="studies")
        page.get_by_text("Access denied").first.wait_for(timeout=30_000)
        assert page.get_by_role("heading", name="Studies").count() == 0
        assert page.get_by_text("Create a study").count() == 0
        page.screenshot(path=str(art / "reader-refused.png"))

    out = tmp_path / "answers.csv"
    done = subprocess.run([*browser.TURINGCT, "study", "results", "t1",
                           "--out", str(out), "--db", app_db.url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["reader"] for r in rows] == ["ann"] * 3
    assert sorted(r["answer"] for r in rows) == ["real", "synthetic", "unsure"]
    for r in rows:
        assert float(r["seconds_on_case"]) > 0.3  # measured server side, display -> submit
        assert (float(r["window_width"]), float(r["window_level"])) == (150.0, 90.0)

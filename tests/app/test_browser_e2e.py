"""Real-browser end-to-end test of the reader flow (headless Debian Chromium via Playwright).

A reader logs in, answers three cases with the buttons, reloads the page (a new Streamlit
session; the session cookie keeps the login) and resumes at "Case 4 of 6"; `turingct study
results` then lists exactly those three answers with their durations. A reader who types a
researcher page's URL is refused. The case viewer draws CT (non-blank canvases) and scrolls slices with the mouse wheel
without any request leaving the page. Screenshots go to ``test-artifacts/``.
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


# Per plane: slice label and the pixel variance of its canvas (0 for a blank canvas).
_PLANES_JS = """() => tctViewer.views.map(w => {
  const c = w.canvas, d = w.ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, s = 0, s2 = 0;
  for (let i = 0; i < d.length; i += 4) { n++; s += d[i]; s2 += d[i] * d[i]; }
  return {label: w.lbl.textContent, variance: s2 / n - (s / n) ** 2};
})"""
_AXIAL = "tctViewer.views[2].lbl.textContent"


def _case_heading(page, k: int, n: int = 6):
    page.get_by_role("heading", name=f"Case {k} of {n}").wait_for(timeout=30_000)


def _viewer(page):
    """The page once the viewer has drawn a volume newer than the one :func:`_mark_shown` saw
    (the components-v2 element stays for every case; ``tctViewer.loads`` counts the volumes
    decoded and drawn)."""
    page.wait_for_function("""() => window.tctViewer && tctViewer.loads > 0 &&
                                     tctViewer.loads !== window.__shown""", timeout=30_000)
    return page


def _mark_shown(page) -> None:
    page.evaluate("window.__shown = window.tctViewer ? tctViewer.loads : undefined")


def _check_viewer_scrolls_locally(page) -> None:
    viewer = _viewer(page)
    planes = viewer.evaluate(_PLANES_JS)
    assert all(p["variance"] > 100 for p in planes), planes  # CT drawn, not a blank canvas
    before = viewer.evaluate(_AXIAL)
    assert re.fullmatch(r"Axial \d+/\d+", before)
    requests: list[str] = []

    def record(req):
        requests.append(req.url)

    page.on("request", record)
    box = page.locator("#v2 canvas").bounding_box()  # in the element's (open) shadow root
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, -100)  # wheel up: next slice
    index, total = (int(v) for v in before.split()[1].split("/"))
    after = f"Axial {index + 3}/{total}"
    viewer.wait_for_function(f"{_AXIAL} === {after!r}", timeout=10_000)
    page.wait_for_timeout(300)  # a late request would show up here
    assert requests == []  # slice changes never reach the server
    page.remove_listener("request", record)
    # another window preset reruns the script; the browser redraws the same volume (no second
    # decode) with the new window and keeps the slices
    loads = viewer.evaluate("tctViewer.loads")
    for preset, shown in (("Abdomen (W400 / L40)", "W400 / L40"),
                          ("Liver (W150 / L90)", "W150 / L90")):
        page.get_by_role("combobox", name="Window").click()
        page.get_by_role("option", name=preset).click()
        viewer.wait_for_function(f"tctViewer.msg.textContent === {shown!r}", timeout=30_000)
        assert viewer.evaluate(f"[{_AXIAL}, tctViewer.loads]") == [after, loads]


def test_reader_answers_three_cases_reloads_and_resumes(app_db, tmp_path):
    art = browser.ARTIFACTS
    art.mkdir(exist_ok=True)
    with browser.serve(app_db.url, art / "e2e-server.log") as base, \
            browser.chromium_page() as page:
        browser.log_in(page, base, "ann", PASSWORD)
        page.get_by_role("button", name="Start").click()
        _case_heading(page, 1)
        _check_viewer_scrolls_locally(page)
        page.screenshot(path=str(art / "reader-case1.png"))
        for k, label in enumerate(("Real", "Synthetic", "Unsure"), start=1):
            page.wait_for_timeout(400)  # a reader looks at the case before answering
            _mark_shown(page)
            # the accessible name carries the keyboard shortcut too ("Real 1")
            page.get_by_role("button", name=re.compile(rf"^{label}\b")).click()
            _case_heading(page, k + 1)
        _viewer(page)
        page.screenshot(path=str(art / "reader-case4.png"))

        page.reload()  # new websocket session: the session cookie keeps the login, and the
        page.get_by_role("button", name="Log out").wait_for(timeout=30_000)  # reading page
        # opens at the first unanswered case
        _case_heading(page, 4)
        _viewer(page)
        page.screenshot(path=str(art / "reader-resumed.png"))

        # no arm-revealing text anywhere in the page the reader got
        html = page.content().lower()
        for word in ("synthetic_", "phantom", "handcrafted", "liver_syn", "liver_real"):
            assert word not in html

        # a reader typing a researcher page's URL
        page.goto(f"{base}/studies")
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

"""Real-browser end-to-end tests of the reader flow (headless Debian Chromium via Playwright).

A reader logs in, answers three cases with the viewer's vote buttons and keys, reloads the page
(a new Streamlit session; the session cookie keeps the login) and resumes at "Case 4 of 6"; `turingct study results`
then lists exactly those three answers with their durations. A double click and a double key
press each record exactly one answer. Voting after the study was closed shows one truthful
message. A reader who types a researcher page's URL is refused. The case viewer draws CT
(non-blank canvases) with orientation letters and a scale bar, opens on the lesion, and
scrolls slices and changes the window without any request leaving the page. Screenshots go to
``test-artifacts/``.
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
    pytestmark.append(
        pytest.mark.skip(reason=f"browser test needs Chromium and Playwright: {_missing}")
    )


# Per plane: slice label and the pixel variance of its canvas (0 for a blank canvas).
_PLANES_JS = """() => tctViewer.views.map(w => {
  const c = w.canvas, d = w.ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, s = 0, s2 = 0;
  for (let i = 0; i < d.length; i += 4) { n++; s += d[i]; s2 += d[i] * d[i]; }
  return {label: w.lbl.textContent, variance: s2 / n - (s / n) ** 2, scale: w.scale};
})"""
_AXIAL = "tctViewer.views[2].lbl.textContent"
_ARMED = "() => window.tctViewer && tctViewer.armed && tctViewer.here >= 1000"


@pytest.fixture
def careful_db(engine, db_url, tmp_path, monkeypatch):
    """A study whose readers must look at a case for 3 s: long enough that a vote sent as soon
    as the case is drawn is early on a loaded machine too."""
    from tests.app.conftest import _app_db
    from tests.studies._catalog import spec_dict

    return _app_db(
        engine,
        db_url,
        tmp_path,
        monkeypatch,
        spec_dict(confidence=True, reading={"min_seconds_on_case": 3}),
    )


def _case_heading(page, k: int, n: int = 6):
    page.get_by_role("heading", name=f"Case {k} of {n}").wait_for(timeout=30_000)


def _viewer(page):
    """The page once the viewer has drawn a volume newer than the one :func:`_mark_shown` saw
    (the components-v2 element stays for every case; ``tctViewer.loads`` counts the volumes
    decoded and drawn)."""
    page.wait_for_function(
        """() => window.tctViewer && tctViewer.loads > 0 &&
                                     tctViewer.loads !== window.__shown""",
        timeout=30_000,
    )
    return page


def _mark_shown(page) -> None:
    page.evaluate("window.__shown = window.tctViewer ? tctViewer.loads : undefined")


def _vote_button(page, label: str):
    return page.locator("button.choice", has_text=re.compile(rf"^{label} \(\d\)$"))


def _ready_to_vote(page):
    """Wait until the vote buttons are enabled (the case was on screen for 1 s)."""
    page.wait_for_function(_ARMED, timeout=30_000)
    _vote_button(page, "Real").wait_for(state="visible")
    page.wait_for_function(
        "() => [...tctViewer.views[0].canvas.getRootNode()"
        ".querySelectorAll('button.choice')].every(b => !b.disabled)",
        timeout=10_000,
    )


def _watch_websocket(page) -> list:
    """Every frame the page sends on Streamlit's websocket (a rerun request is one)."""
    sent: list = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(frame)))
    return sent


def _check_viewer_scrolls_locally(page, sent: list) -> None:
    viewer = _viewer(page)
    sent_before = len(sent)
    planes = viewer.evaluate(_PLANES_JS)
    assert all(p["variance"] > 100 for p in planes), planes  # CT drawn, not a blank canvas
    assert all(p["scale"] in (1, 2, 5, 10, 20, 50) for p in planes), planes  # mm scale bars
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
    # window: a preset from the list, then a right-button drag; all in the browser
    loads = viewer.evaluate("tctViewer.loads")
    page.locator("select.pre").select_option(label="Abdomen (W400 / L40)")
    viewer.wait_for_function("tctViewer.wl.textContent === 'W 400 / L 40'", timeout=10_000)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 60, y + 30, steps=4)
    page.mouse.up(button="right")
    win = viewer.evaluate("tctViewer.win")
    assert win["width"] > 400 and win["level"] > 40, win
    page.wait_for_timeout(300)  # a late request would show up here
    assert requests == []  # slices and windows never reach the server
    assert len(sent) == sent_before  # no rerun: the volume is not sent again
    page.remove_listener("request", record)
    assert viewer.evaluate(f"[{_AXIAL}, tctViewer.loads]") == [after, loads]
    page.locator("select.pre").select_option(label="Liver (W150 / L90)")
    viewer.wait_for_function("tctViewer.wl.textContent === 'W 150 / L 90'", timeout=10_000)


def _answers(db):
    from sqlalchemy import select

    from db.models import Answer
    from db.session import session_scope

    with session_scope(db.engine) as s:
        return s.execute(
            select(Answer.value, Answer.seconds_on_case, Answer.confidence).order_by(Answer.id)
        ).all()


def test_reader_answers_three_cases_reloads_and_resumes(reader_db, tmp_path):
    art = browser.ARTIFACTS
    art.mkdir(exist_ok=True)
    with (
        browser.serve(reader_db.url, art / "e2e-server.log") as base,
        browser.chromium_page() as page,
    ):
        sent = _watch_websocket(page)
        browser.log_in(page, base, "ann", PASSWORD)
        page.get_by_role("button", name="Start").click()
        _case_heading(page, 1)
        page.get_by_text("Is this tumor real or synthetic?").wait_for()
        # the case opens with the crosshair on the lesion (crop centred on it)
        pos, dim = _viewer(page).evaluate("[tctViewer.pos, tctViewer.V.dim]")
        assert all(abs(p - (n - 1) / 2) <= 1.5 for p, n in zip(pos, dim, strict=True))
        assert sent  # the websocket is watched (login and Start were sent on it)
        _check_viewer_scrolls_locally(page, sent)
        page.screenshot(path=str(art / "reader-case1.png"))
        _ready_to_vote(page)
        page.locator("button.conf", has_text="4").click()
        for k, label in enumerate(("Real", "Synthetic", "Unsure"), start=1):
            _ready_to_vote(page)
            _mark_shown(page)
            if label == "Synthetic":
                page.keyboard.press("2")
            else:
                _vote_button(page, label).click()
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

    values = [a.value for a in _answers(reader_db)]
    assert values == ["real", "synthetic", "unsure"]
    assert _answers(reader_db)[0].confidence == 4
    out = tmp_path / "answers.csv"
    done = subprocess.run(
        [*browser.TURINGCT, "study", "results", "t1", "--out", str(out), "--db", reader_db.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["reader"] for r in rows] == ["ann"] * 3
    assert sorted(r["answer"] for r in rows) == ["real", "synthetic", "unsure"]
    for r in rows:
        # time visibly on screen (>= the 1 s minimum), measured by the browser, server-capped
        assert 1.0 <= float(r["seconds_on_case"]) < 60
        assert (float(r["window_width"]), float(r["window_level"])) == (150.0, 90.0)


def test_double_click_and_double_key_record_one_answer_each(careful_db):
    """A double click (200 ms apart) and a double key press (60 ms apart) on the vote: the
    second never lands on the next case. Then a vote after the study was closed: one
    truthful message, and My studies marks the study closed."""
    from db.models import Study, StudyStatus
    from db.session import session_scope

    art = browser.ARTIFACTS
    art.mkdir(exist_ok=True)
    with (
        browser.serve(careful_db.url, art / "e2e-double-server.log") as base,
        browser.chromium_page() as page,
    ):
        browser.log_in(page, base, "ann", PASSWORD)
        page.get_by_role("button", name="Start").click()
        _case_heading(page, 1)
        _viewer(page)
        _ready_to_vote(page)
        _mark_shown(page)
        box = _vote_button(page, "Real").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        page.wait_for_timeout(200)
        page.mouse.click(x, y)  # the second click of a double click
        _case_heading(page, 2)
        _viewer(page)
        page.wait_for_timeout(1500)
        assert len(_answers(careful_db)) == 1
        # double key press
        _ready_to_vote(page)
        _mark_shown(page)
        page.keyboard.press("2")
        page.wait_for_timeout(60)
        page.keyboard.press("2")
        _case_heading(page, 3)
        # a vote that skips the browser's guard, sent as soon as case 3 is drawn, is refused by
        # the server: the minimum time on screen is enforced where the answer is stored
        _viewer(page).evaluate("""() => tctViewer.component.setTriggerValue("vote",
            {value: "real", confidence: null, width: 150, level: 90, visible_s: 0.3,
             ballot: tctViewer.ballot})""")
        page.get_by_text("look at it for at least 3 s before answering").wait_for(timeout=30_000)
        # still case 3 once the rerun that shows the refusal has drawn (the heading is redrawn)
        page.get_by_role("heading", name="Case 3 of 6").wait_for(timeout=30_000)
        assert page.get_by_role("heading", name="Case 4 of 6").count() == 0
        page.wait_for_timeout(1500)
        assert [a.value for a in _answers(careful_db)] == ["real", "synthetic"]

        # the organiser closes the study while the reader looks at case 3
        _ready_to_vote(page)
        with session_scope(careful_db.engine) as s:
            s.get(Study, careful_db.study_id).status = StudyStatus.CLOSED
        _vote_button(page, "Unsure").click()
        page.get_by_role("heading", name="Study closed").wait_for(timeout=30_000)
        page.get_by_text("This study is closed; your answer was not recorded.").wait_for()
        page.screenshot(path=str(art / "reader-closed.png"))
        text = page.inner_text("body")
        assert "Thank you" not in text and "not recorded" in text
        assert "recorded." not in text.replace("not recorded.", "")
        assert text.count("This study is closed") == 1
        assert len(_answers(careful_db)) == 2
        page.get_by_role("link", name="Back to my studies").click()
        page.get_by_role("heading", name="t1 (closed)").wait_for(timeout=30_000)
        assert page.get_by_role("button", name="Continue").count() == 0


def test_time_logged_out_does_not_count(reader_db):
    """Item 10 in miniature: a case looked at, the reader logs out for 6 s, logs in again and
    answers: the recorded time on case is the time it was on screen, not the wall time."""
    import time

    art = browser.ARTIFACTS
    art.mkdir(exist_ok=True)
    with (
        browser.serve(reader_db.url, art / "e2e-logout-server.log") as base,
        browser.chromium_page() as page,
    ):
        browser.log_in(page, base, "ann", PASSWORD)
        t0 = time.monotonic()
        page.get_by_role("button", name="Start").click()
        _case_heading(page, 1)
        _viewer(page)
        _ready_to_vote(page)
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
        page.wait_for_timeout(6000)  # logged out: must not count
        browser.log_in(page, base, "ann", PASSWORD)
        page.get_by_role("button", name="Start").click()  # nothing answered yet
        _case_heading(page, 1)
        _viewer(page)
        _ready_to_vote(page)
        _vote_button(page, "Real").click()
        _case_heading(page, 2)
        wall = time.monotonic() - t0
    (answer,) = _answers(reader_db)
    assert 1.0 <= answer.seconds_on_case <= wall - 5.5, (answer.seconds_on_case, wall)

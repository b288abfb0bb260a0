"""Reader pages: one case at a time with the question, resume, thank-you, a closed study said
once, and no way into researcher pages (AppTest; the vote itself is the viewer's, driven in
a real browser by test_browser_e2e.py)."""

from __future__ import annotations

import pytest

from tests.app.conftest import login_token, new_app, shown, texts


def _reading(db, user="ann"):
    """The reading page, reached from My studies (Start / Continue) or directly when the
    study has no button (finished, closed)."""
    at = new_app(db, user).run()
    buttons = [b for b in at.button if b.label in ("Start", "Continue")]
    if buttons:
        buttons[0].click()
    else:
        at.switch_page("pages_/reading.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _answers(db, username="ann"):
    from sqlalchemy import select

    from db.models import Answer, User
    from db.session import session_scope

    with session_scope(db.engine) as s:
        return (
            s.execute(
                select(Answer)
                .join(User, Answer.reader_id == User.id)
                .where(User.username == username)
                .order_by(Answer.id)
            )
            .scalars()
            .all()
        )


def _answer(db, username, n, value="unsure"):
    """Answer ``n`` cases through the service the page's vote calls."""
    from db.models import User
    from db.session import session_scope
    from studies.reading import current_case, submit_answer

    with session_scope(db.engine) as s:
        user = s.get(User, db.users[username])
        for _ in range(n):
            view = current_case(s, user, db.study_id)
            submit_answer(s, user, view.code, value=value, idempotency_key=view.idempotency_key)


def _close(db):
    from db.models import Study, StudyStatus
    from db.session import session_scope

    with session_scope(db.engine) as s:
        s.get(Study, db.study_id).status = StudyStatus.CLOSED


def test_reading_page_asks_the_question_and_shows_the_case(app_db):
    at = _reading(app_db)
    assert "Case 1 of 6" in [h.value for h in at.subheader]
    shown = texts(at)
    assert "Is this tumor real or synthetic?" in shown
    assert "at the crosshair" in shown
    assert len(at.get("bidi_component")) == 1  # the viewer with its vote bar
    # the vote is the viewer's: no Streamlit answer button, no window widget that would
    # re-send the volume
    assert not [b for b in at.button if b.label in ("Real", "Synthetic", "Unsure")]
    assert not at.selectbox
    # the case was recorded as displayed on this page (the minimum time counts from here)
    from sqlalchemy import func, select

    from db.models import AnswerEvent
    from db.session import session_scope

    with session_scope(app_db.engine) as s:
        assert (
            s.scalar(select(func.count(AnswerEvent.id)).where(AnswerEvent.event == "displayed"))
            == 1
        )
    at.run()  # a rerun (any widget) is not a new display
    with session_scope(app_db.engine) as s:
        assert (
            s.scalar(select(func.count(AnswerEvent.id)).where(AnswerEvent.event == "displayed"))
            == 1
        )


def test_organ_origin_question_names_the_organs():
    from types import SimpleNamespace

    from app.reading_ui import question_text

    view = SimpleNamespace(
        design="organ_origin",
        choices=(("Liver", "liver"), ("Kidney", "kidney"), ("Unsure", "unsure")),
    )
    assert question_text(view) == "Which organ does this tumor come from: liver, kidney?"


def test_resume_at_first_unanswered_case_in_a_new_session(app_db):
    _reading(app_db)
    _answer(app_db, "ann", 2)
    again = _reading(app_db)  # a new browser session (closed tab, logged in again)
    assert "Case 3 of 6" in [h.value for h in again.subheader]
    assert len(_answers(app_db)) == 2


def test_my_studies_shows_progress(app_db):
    _answer(app_db, "ann", 1)
    home = new_app(app_db, "ann").run()
    assert "1 of 6 cases answered" in [p.proto.text for p in home.get("progress")]
    assert [b.label for b in home.button if b.label in ("Start", "Continue")] == ["Continue"]


def test_finished_study_shows_thank_you_without_correctness(app_db):
    _answer(app_db, "ann", 6)
    at = _reading(app_db)
    assert not at.exception
    shown = texts(at)
    assert "Thank you!" in [t.value for t in at.title]
    assert "answered all 6 cases" in shown
    for word in ("correct", "synthetic", "real", "phantom"):
        assert word not in shown.lower()
    assert not at.get("bidi_component")
    assert len(_answers(app_db)) == 6


def test_readers_do_not_see_each_others_answers(app_db):
    _answer(app_db, "ann", 1)
    bob = _reading(app_db, "bob")
    assert "Case 1 of 6" in [h.value for h in bob.subheader]


def test_closed_study_says_so_once_and_my_studies_marks_it(app_db):
    """Item 9: a vote refused because the study closed gives ONE truthful message (no
    "Thank you ... saved" next to it); My studies marks the study closed, without a button."""
    from app.reading_ui import FEEDBACK_KEY
    from studies.reading import CLOSED

    at = _reading(app_db)
    _answer(app_db, "ann", 2)
    _close(app_db)
    at.session_state[FEEDBACK_KEY] = (False, CLOSED)  # what the vote callback stores
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Study closed"]
    assert [w.value for w in at.warning] == [
        "This study is closed; your answer was not recorded. Your 2 earlier answers of 6 "
        "cases are saved."
    ]
    assert not at.success and not at.error and not at.get("bidi_component")
    assert "Thank you" not in texts(at)
    again = _reading(app_db)  # opened later: closed, nothing was refused
    assert [w.value for w in again.warning] == [
        "This study is closed; answers can no longer be recorded. Your 2 earlier answers of 6 "
        "cases are saved."
    ]
    home = new_app(app_db, "ann").run()
    assert "t1 (closed)" in [shown(h.value) for h in home.subheader]
    assert any("Closed by the study organiser" in i.value for i in home.info)
    assert not [b for b in home.button if b.label in ("Start", "Continue")]
    assert not home.success  # not "Finished"


RESEARCH_PAGES = [
    "pages_/studies.py",
    "pages_/readers.py",
    "pages_/progress.py",
    "pages_/datasets.py",
    "pages_/synthesis.py",
    "pages_/dashboard.py",
]


@pytest.mark.parametrize("page", RESEARCH_PAGES)
def test_reader_cannot_switch_to_researcher_pages(app_db, page):
    at = new_app(app_db, "ann").run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(page)


def test_reader_navigation_lists_only_reader_pages(app_db):
    at = new_app(app_db, "ann").run()
    scripts = {
        str(info["script_path"]).rsplit("/", 1)[-1]
        for info in at._registered_pages.values()
        if info.get("script_path")
    }
    assert scripts == {"my_studies.py", "reading.py"}


@pytest.mark.parametrize("page", RESEARCH_PAGES)
def test_researcher_page_refuses_a_reader_even_when_run_directly(app_db, page):
    from streamlit.testing.v1 import AppTest

    from app.state import LOGIN_KEY, Login, now
    from tests.app.conftest import MAIN, login_token

    at = AppTest.from_file(str(MAIN.parent / page), default_timeout=60)
    at.session_state[LOGIN_KEY] = Login(
        app_db.users["ann"], "ann", "reader", now(), login_token(app_db, "ann")
    )
    at.run()
    assert [e.value for e in at.error] == [
        "Access denied: this page is only for researcher / admin accounts."
    ]
    assert not at.dataframe and not at.button


def _vote_script():
    """Runs the reading page's vote callback with the vote in ``fake_vote`` (what the viewer
    would send) for the case on screen; the page was shown before (volume, ballot)."""
    import streamlit as st

    from app import reading_ui, slice_viewer, state
    from db.models import User
    from studies.reading import current_case

    reading_ui.current_vote = lambda: st.session_state.get("fake_vote")
    login = st.session_state.get(state.LOGIN_KEY) or st.session_state["stale_login"]
    with state.db_session() as s:
        view = current_case(s, s.get(User, login.user_id), st.session_state["study_id"])
    if "case_volume" not in st.session_state:  # first run: the page shows the case
        with state.db_session() as s:
            from studies.reading import case_volume_bytes, record_display

            user = s.get(User, login.user_id)
            data = case_volume_bytes(s, user, view.code)
            record_display(s, user, view.code)
        st.session_state["case_volume"] = (view.code, data)
        st.session_state["case_ballot"] = 1
    else:
        reading_ui._on_vote(login, view)
    st.write(repr(st.session_state.get("case_feedback")))
    assert slice_viewer.COMPONENT_KEY


@pytest.mark.parametrize(
    ("vote", "logged_in", "recorded", "message"),
    [
        (
            {
                "value": "synthetic",
                "confidence": 5,
                "width": 380,
                "level": 45,
                "visible_s": 6.5,
                "ballot": 1,
            },
            True,
            True,
            "Answer recorded.",
        ),
        (
            {
                "value": "synthetic",
                "confidence": None,
                "width": 380,
                "level": 45,
                "visible_s": 6.5,
                "ballot": 0,
            },
            True,
            False,
            "no longer on screen",
        ),  # an earlier ballot
        (
            {"value": "maybe", "width": 380, "level": 45, "visible_s": 6.5, "ballot": 1},
            True,
            False,
            "answer must be one of",
        ),
        (
            {
                "value": "real",
                "confidence": None,
                "width": 380,
                "level": 45,
                "visible_s": 6.5,
                "ballot": 1,
            },
            False,
            False,
            "no longer logged in",
        ),  # logged out in between
    ],
)
def test_vote_callback(app_db, vote, logged_in, recorded, message):
    from streamlit.testing.v1 import AppTest

    from app.state import LOGIN_KEY, Login, now

    at = AppTest.from_function(_vote_script, default_timeout=60)
    login = Login(app_db.users["ann"], "ann", "reader", now(), login_token(app_db, "ann"))
    at.session_state[LOGIN_KEY] = login
    at.session_state["study_id"] = app_db.study_id
    at.run()
    if not logged_in:
        del at.session_state[LOGIN_KEY]
        at.session_state["stale_login"] = login
    at.session_state["fake_vote"] = vote
    at.run()
    assert not at.exception, at.exception
    assert message in texts(at)
    answers = _answers(app_db)
    assert len(answers) == int(recorded)
    if recorded:
        (a,) = answers
        assert (a.value, a.confidence, a.window_width, a.window_level) == (
            "synthetic",
            5,
            380.0,
            45.0,
        )
        assert 0 <= a.seconds_on_case <= 6.5  # the browser's report, capped by the server


def test_vote_from_a_tab_whose_session_was_ended_elsewhere_is_refused(app_db):
    """Issue 10 item 11: a logout in one tab ends every session of the account, so the vote
    of a tab still showing a case (its Login object intact) is not recorded."""
    from streamlit.testing.v1 import AppTest

    from app.state import LOGIN_KEY, Login, now
    from db.session import session_scope
    from studies import sessions

    at = AppTest.from_function(_vote_script, default_timeout=60)
    at.session_state[LOGIN_KEY] = Login(
        app_db.users["ann"], "ann", "reader", now(), login_token(app_db, "ann")
    )
    at.session_state["study_id"] = app_db.study_id
    at.run()
    with session_scope(app_db.engine) as s:  # "Log out" in another tab
        sessions.end_all(s, app_db.users["ann"])
    at.session_state["fake_vote"] = {
        "value": "real",
        "confidence": None,
        "width": 380,
        "level": 45,
        "visible_s": 6.5,
        "ballot": 1,
    }
    at.run()
    assert not at.exception, at.exception
    assert "no longer logged in" in texts(at)
    assert _answers(app_db) == []

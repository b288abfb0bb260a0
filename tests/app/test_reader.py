"""Reader pages: one case at a time, answers recorded with time and window, resume, thank-you,
and no way into researcher pages (AppTest)."""

from __future__ import annotations

import pytest

from tests.app.conftest import button, new_app, texts


def _reading(db, user="ann"):
    at = new_app(db, user).run()
    (start,) = [b for b in at.button if b.label in ("Start", "Continue")]
    start.click()
    at.run()
    assert not at.exception, at.exception
    return at


def _answers(db, username="ann"):
    from sqlalchemy import select

    from db.models import Answer, User
    from db.session import session_scope

    with session_scope(db.engine) as s:
        return s.execute(select(Answer).join(User, Answer.reader_id == User.id)
                         .where(User.username == username).order_by(Answer.id)).scalars().all()


def test_reader_answers_a_case_and_moves_to_the_next(app_db):
    at = _reading(app_db)
    assert "Case 1 of 6" in [h.value for h in at.subheader]
    assert [b.label for b in at.button if b.label in ("Real", "Synthetic", "Unsure")] == \
        ["Real", "Synthetic", "Unsure"]
    at.radio(key="case_confidence").set_value(4)
    button(at, "Synthetic").click()
    at.run()
    assert not at.exception
    assert "Case 2 of 6" in [h.value for h in at.subheader]
    (answer,) = _answers(app_db)
    assert (answer.value, answer.confidence, answer.question) == ("synthetic", 4, "truth")
    # the spec's default window is liver W150/L90: that is what was on screen
    assert (answer.window_width, answer.window_level) == (150.0, 90.0)
    assert answer.seconds_on_case >= 0.0


def test_window_preset_on_screen_is_recorded(app_db):
    at = _reading(app_db)
    at.selectbox(key="case_window_preset").set_value("Abdomen (W400 / L40)")
    at.run()
    button(at, "Real").click()
    at.run()
    (answer,) = _answers(app_db)
    assert (answer.window_width, answer.window_level) == (400.0, 40.0)
    # custom window
    at.selectbox(key="case_window_preset").set_value("Custom")
    at.run()
    at.number_input(key="case_window_width").set_value(350.0)
    at.number_input(key="case_window_level").set_value(55.0)
    at.run()
    button(at, "Unsure").click()
    at.run()
    second = _answers(app_db)[1]
    assert (second.value, second.window_width, second.window_level) == ("unsure", 350.0, 55.0)
    assert second.confidence is None  # confidence is optional


def test_resume_at_first_unanswered_case_in_a_new_session(app_db):
    at = _reading(app_db)
    for label in ("Real", "Synthetic"):
        button(at, label).click()
        at.run()
    assert "Case 3 of 6" in [h.value for h in at.subheader]
    # a new browser session (closed tab, logged in again)
    again = _reading(app_db)
    assert "Case 3 of 6" in [h.value for h in again.subheader]
    assert len(_answers(app_db)) == 2


def test_my_studies_shows_progress(app_db):
    at = _reading(app_db)
    button(at, "Real").click()
    at.run()
    home = new_app(app_db, "ann").run()
    assert "1 of 6 cases answered" in [p.proto.text for p in home.get("progress")]
    assert [b.label for b in home.button if b.label in ("Start", "Continue")] == ["Continue"]


def test_finished_study_shows_thank_you_without_correctness(app_db):
    at = _reading(app_db)
    for _ in range(6):
        button(at, "Unsure").click()
        at.run()
    assert not at.exception
    shown = texts(at)
    assert "Thank you!" in [t.value for t in at.title]
    assert "answered all 6 cases" in shown
    for word in ("correct", "synthetic", "real", "phantom"):
        assert word not in shown.lower()
    assert not [b for b in at.button if b.label in ("Real", "Synthetic", "Unsure")]
    assert len(_answers(app_db)) == 6


def test_readers_do_not_see_each_others_answers(app_db):
    at = _reading(app_db, "ann")
    button(at, "Real").click()
    at.run()
    bob = _reading(app_db, "bob")
    assert "Case 1 of 6" in [h.value for h in bob.subheader]


RESEARCH_PAGES = ["pages_/studies.py", "pages_/readers.py", "pages_/progress.py",
                  "pages_/datasets.py", "pages_/synthesis.py", "pages_/dashboard.py"]


@pytest.mark.parametrize("page", RESEARCH_PAGES)
def test_reader_cannot_switch_to_researcher_pages(app_db, page):
    at = new_app(app_db, "ann").run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(page)


def test_reader_navigation_lists_only_reader_pages(app_db):
    at = new_app(app_db, "ann").run()
    scripts = {str(info["script_path"]).rsplit("/", 1)[-1]
               for info in at._registered_pages.values() if info.get("script_path")}
    assert scripts == {"my_studies.py", "reading.py"}


@pytest.mark.parametrize("page", RESEARCH_PAGES)
def test_researcher_page_refuses_a_reader_even_when_run_directly(app_db, page):
    from streamlit.testing.v1 import AppTest

    from app.state import LOGIN_KEY, Login, now
    from tests.app.conftest import MAIN, login_token

    at = AppTest.from_file(str(MAIN.parent / page), default_timeout=60)
    at.session_state[LOGIN_KEY] = Login(app_db.users["ann"], "ann", "reader", now(),
                                        login_token(app_db, "ann"))
    at.run()
    assert [e.value for e in at.error] == [
        "Access denied: this page is only for researcher / admin accounts."]
    assert not at.dataframe and not at.button

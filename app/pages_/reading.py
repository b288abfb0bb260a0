"""Reading page: one blinded case at a time ("Case k of N"), viewer, window presets, answers.

The server knows everything that matters for the answer row: the case shown (opaque code only),
when it was first displayed (server timestamp), the window preset on screen (a Streamlit widget)
and the confidence. Submitting moves to the next unanswered case; a finished study shows a
thank-you page without correctness.
"""

from __future__ import annotations

import streamlit as st

from app import reading_ui, state

login = state.require_login()

from studies.reading import current_case, reader_studies  # noqa: E402  (after the guard)

with state.db_session() as session:
    user = state.load_user(session, login)
    studies = reader_studies(session, user)
    study = reading_ui.pick_study(studies, st.session_state.get(state.STUDY_KEY))
    view = current_case(session, user, study.study_id) if study is not None else None

if study is None:
    st.title("Read cases")
    st.info("No study is assigned to you yet.")
    st.stop()

st.session_state[state.STUDY_KEY] = study.study_id
reading_ui.show_submit_feedback()

if view is None:
    st.title("Thank you!")
    st.success(f"You have answered all {study.total} cases of this study. Your answers are "
               "saved; you can close this window.")
    if study.educational and study.finished:
        from studies.reading import reader_feedback

        with state.db_session() as session:
            feedback = reader_feedback(session, state.load_user(session, login), study.study_id)
        st.subheader("Your answers and the truth")
        st.dataframe(feedback, hide_index=True)
    st.page_link("pages_/my_studies.py", label="Back to my studies", icon=":material/list:")
    st.stop()

st.subheader(f"Case {view.position} of {view.total}")
st.progress((view.position - 1) / view.total)

viewer_col, panel_col = st.columns([4, 1], gap="medium")
with panel_col:
    window = reading_ui.window_controls(view)
    reading_ui.answer_form(view, window, login)
with viewer_col:
    reading_ui.show_case(view, window, login)

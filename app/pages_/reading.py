"""Reading page: one blinded case at a time ("Case k of N"), the question, viewer and vote bar.

The server knows everything that matters for the answer row: the case shown (opaque code only),
when it was drawn (server timestamps), and from the viewer's vote the window on screen, the
confidence and the seconds the case was visibly on screen. A vote moves to the next unanswered
case; a finished study shows a thank-you page without correctness; a closed study says so,
once, and records nothing.
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
refused_closed = reading_ui.show_submit_feedback()

if study.status == "closed":
    st.title("Study closed")
    first = (
        "This study is closed; your answer was not recorded."
        if refused_closed
        else "This study is closed; answers can no longer be recorded."
    )
    st.warning(f"{first} Your {study.answered} earlier answers of {study.total} cases are saved.")
    st.page_link("pages_/my_studies.py", label="Back to my studies", icon=":material/list:")
    st.stop()

if view is None:
    st.title("Thank you!")
    st.success(
        f"You have answered all {study.total} cases of this study. Your answers are "
        "saved; you can close this window."
    )
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
keys = " / ".join(str(i) for i in range(1, len(view.choices) + 1))
st.markdown(
    f"**{reading_ui.question_text(view)}** The lesion to judge is at the crosshair "
    f"when the case opens. Answer with the buttons under the images or keys {keys}."
)
reading_ui.show_case(view, login)

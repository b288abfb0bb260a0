"""Reader home: the studies assigned to the logged-in user, with progress and a start button."""

from __future__ import annotations

import streamlit as st

from app import safe_text, state

login = state.require_login()

from studies.reading import reader_studies  # noqa: E402  (after the guard: nothing runs before it)

with state.db_session() as session:
    rows = reader_studies(session, state.load_user(session, login))

st.title("My studies")
if not rows:
    st.info(
        "No study is assigned to you yet. The study organiser will let you know when cases "
        "are ready."
    )
for i, row in enumerate(rows):
    closed = row.status == "closed"
    with st.container(border=True):
        safe_text.subheader(f"{row.name} (closed)" if closed else row.name)
        fraction = row.answered / row.total if row.total else 0.0
        st.progress(fraction, text=f"{row.answered} of {row.total} cases answered")
        if closed:
            st.info(
                "Closed by the study organiser: no more answers are recorded. Your "
                f"{row.answered} answers are saved."
            )
        elif row.finished:
            st.success("Finished. Thank you for your answers!")
        elif st.button(
            "Continue" if row.answered else "Start", key=f"turingct_open_{i}", type="primary"
        ):
            st.session_state[state.STUDY_KEY] = row.study_id
            st.switch_page("pages_/reading.py")

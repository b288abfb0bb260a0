"""Reader progress (researchers): answered / total and median seconds per case, per reader."""

from __future__ import annotations

import streamlit as st

from app import admin_ui, state

login = state.require_login(*state.RESEARCH_ROLES)

from studies import admin  # noqa: E402  (after the guard)

st.title("Reader progress")
study = admin_ui.study_picker(login, key="turingct_progress_study")
if study is None:
    st.stop()

with admin_ui.staff_session(login) as (session, user):
    rows = admin.progress(session, user, study.id)

admin_ui.show_progress(rows)

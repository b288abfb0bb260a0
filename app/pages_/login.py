"""Login page: "Username", "Password", "Log in"; a wrong password gives one clear message."""

from __future__ import annotations

import streamlit as st

from app import state

st.title("TuringCT reader study")
st.write("Log in with the credentials you received from the study organiser.")

with st.form("login"):
    username = st.text_input("Username", autocomplete="username")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    from studies.accounts import AuthError, authenticate

    try:
        with state.db_session() as session:
            user = authenticate(session, username.strip(), password)
            state.log_in(user)
    except AuthError as exc:
        st.error(str(exc))
    else:
        st.rerun()

"""Login page: "Username", "Password", "Log in"; a wrong password gives one clear message.

Failed logins are throttled per (username, client address) in the service
(:func:`studies.accounts.authenticate`); the page passes the address (``state.client_source``).
"""

from __future__ import annotations

import streamlit as st

from app import state

st.title("TuringCT reader study")
st.write("Log in with the credentials you received from the study organiser.")

with st.form("login"):
    username = st.text_input("Username", autocomplete="username", max_chars=100)
    password = st.text_input(
        "Password", type="password", autocomplete="current-password", max_chars=1000
    )
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    from studies.accounts import AuthError, authenticate

    try:
        with state.db_session() as session:
            user = authenticate(session, username.strip(), password, state.client_source())
            state.log_in(session, user)
    except AuthError as exc:
        st.error(str(exc))
    else:
        st.rerun()

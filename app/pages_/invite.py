"""Invite page (``?invite=TOKEN``): the invited reader chooses a password and is logged in."""

from __future__ import annotations

import streamlit as st

from app import state

st.title("Welcome to the TuringCT reader study")
st.write("Choose a password for your account. The link works once and expires.")

token = st.query_params.get("invite", "")
with st.form("invite"):
    password = st.text_input("New password", type="password", autocomplete="new-password")
    repeat = st.text_input("Repeat password", type="password", autocomplete="new-password")
    submitted = st.form_submit_button("Set password", type="primary")

if submitted:
    from studies.accounts import AuthError, redeem_invite

    if password != repeat:
        st.error("The two passwords differ; type the same password twice.")
    else:
        try:
            with state.db_session() as session:
                user = redeem_invite(session, token, password)
                state.log_in(user)
        except AuthError as exc:
            st.error(str(exc))
        else:
            # Drop the token from the address bar so it is not bookmarked or shared.
            st.query_params.clear()
            st.rerun()

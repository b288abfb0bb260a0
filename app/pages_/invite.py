"""Invite page (``?invite=TOKEN``): the invited reader chooses a password and is logged in.

Every refusal is one line (``st.error``): differing passwords, a password breaking the rule
shown next to the field, or a link that is no longer valid.
"""

from __future__ import annotations

import streamlit as st

from app import state
from studies.accounts import MIN_PASSWORD_LENGTH, PASSWORD_RULE

st.title("Welcome to the TuringCT reader study")
st.write("Choose a password for your account. The link works once and expires.")

token = st.query_params.get("invite", "")
with st.form("invite"):
    password = st.text_input(
        "New password",
        type="password",
        autocomplete="new-password",
        max_chars=1000,
        help=PASSWORD_RULE,
    )
    st.caption(PASSWORD_RULE)
    repeat = st.text_input(
        "Repeat password", type="password", autocomplete="new-password", max_chars=1000
    )
    submitted = st.form_submit_button("Set password", type="primary")

if submitted:
    from studies.accounts import AuthError, redeem_invite
    from studies.errors import StudyError

    if password != repeat:
        st.error("The two passwords differ; type the same password twice.")
    elif len(password) < MIN_PASSWORD_LENGTH:
        st.error(f"The password is too short: it needs at least {MIN_PASSWORD_LENGTH} characters.")
    else:
        try:
            with state.db_session() as session:
                user = redeem_invite(session, token, password)
                state.log_in(session, user)
        except (AuthError, StudyError) as exc:
            st.error(str(exc))
        else:
            # Drop the token from the address bar so it is not bookmarked or shared.
            st.query_params.clear()
            st.rerun()

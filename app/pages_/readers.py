"""Readers and invites (researchers): create accounts, invite links, assign readers to studies."""

from __future__ import annotations

from urllib.parse import urlparse

import streamlit as st

from app import admin_ui, state

login = state.require_login(*state.RESEARCH_ROLES)

from studies import accounts, admin  # noqa: E402  (after the guard)
from synth_backend.errors import TuringCTError  # noqa: E402

st.title("Readers and invites")


def _base_url() -> str:
    """The app's address as the researcher's browser sees it (for invite links)."""
    try:
        parts = urlparse(st.context.url or "")
    except Exception:  # no browser context (tests)
        parts = None
    if parts and parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return "http://localhost:8501"


# Only admins hand out staff roles.
roles = ["reader", "researcher", "admin"] if login.role == "admin" else ["reader"]
study = admin_ui.study_picker(login, key="turingct_readers_study", label="Assign to study")

with st.form("turingct_new_reader", clear_on_submit=True):
    st.subheader("New account")
    username = st.text_input("Username of the new account")
    role = st.selectbox("Role", roles)
    years = st.number_input("Years of experience", 0, 80, None)
    password = st.text_input("Initial password (leave empty to create an invite link)",
                             type="password")
    assign = st.checkbox("Assign to the selected study", value=study is not None,
                         disabled=study is None)
    if st.form_submit_button("Create account"):
        try:
            with admin_ui.staff_session(login) as (session, actor):
                user = accounts.create_user(session, username.strip(), password or None,
                                            role=role, years_experience=years)
                n = admin.assign_reader(session, actor, study.id, user) if assign and study \
                    else 0
                token = None if password else accounts.create_invite(session, user)
        except TuringCTError as exc:
            st.error(str(exc))
        else:
            st.success(f"Account {username!r} created" + (f", {n} cases assigned" if n else ""))
            if token:
                st.write("One-time invite link (shown once, valid 72 h):")
                st.code(accounts.invite_link(token, _base_url()), language=None)

# Read after the form so that an account created just now is listed.
with admin_ui.staff_session(login) as (session, actor):
    users = accounts.list_users(session, actor)

with st.form("turingct_existing_reader"):
    st.subheader("Existing account")
    existing = st.selectbox("Account", [u.username for u in users],
                            help="a new invite link replaces a lost password (single use, 72 h)")
    c1, c2 = st.columns(2)
    new_invite = c1.form_submit_button("New invite link")
    do_assign = c2.form_submit_button("Assign to the selected study", disabled=study is None)
    if new_invite or do_assign:
        token = None
        try:
            with admin_ui.staff_session(login) as (session, actor):
                user = accounts.require_user(session, existing or "")
                if new_invite:
                    token = accounts.create_invite(session, user)
                else:
                    n = admin.assign_reader(session, actor, study.id, user)
        except TuringCTError as exc:
            st.error(str(exc))
        else:
            if token:  # shown only once the invite is committed
                st.write(f"One-time invite link for {existing} (shown once, valid 72 h):")
                st.code(accounts.invite_link(token, _base_url()), language=None)
            else:
                st.success(f"{existing} has {n} cases in {study.name}.")

st.subheader("Accounts")
st.dataframe(admin_ui.as_records(users), hide_index=True, width="stretch",
             column_config={"username": "Username", "role": "Role",
                            "years_experience": "Years", "has_password": "Has password",
                            "locked": "Locked"})

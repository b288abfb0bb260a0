"""Readers and invites (researchers): accounts, invite links, study assignment, account actions.

Every action goes through a service in :mod:`studies.accounts` that checks the rule itself: an
invite (a password reset), unlock or deactivation needs a role strictly above the account's
(admins for staff accounts, researchers or admins for readers). The page lists every account
(any account can be assigned to a study) and shows the service's refusal as one line.
"""

from __future__ import annotations

import streamlit as st

from app import admin_ui, safe_text, state

login = state.require_login(*state.RESEARCH_ROLES)

from core.errors import TuringCTError  # noqa: E402
from studies import accounts, admin  # noqa: E402  (after the guard)

st.title("Readers and invites")


def _show_link(username: str, token: str, hours: float) -> None:
    st.text(
        f"One-time invite link for {username} (shown once, valid {hours:g} h; earlier "
        "links of this account no longer work):"
    )
    st.code(accounts.invite_link(token, admin_ui.base_url()), language=None)


# Roles this researcher may create (the service refuses the others anyway).
roles = [r for r in ("reader", "researcher", "admin") if accounts.can_manage(login, r)]
study = admin_ui.study_picker(login, key="turingct_readers_study", label="Assign to study")
hours = st.number_input(
    "Invite lifetime (hours)",
    min_value=1,
    max_value=accounts.MAX_INVITE_HOURS,
    value=accounts.DEFAULT_INVITE_HOURS,
    step=1,
    key="turingct_invite_hours",
    help="how long a new invite link stays valid (single use)",
)

with st.form("turingct_new_reader", clear_on_submit=True):
    st.subheader("New account")
    username = st.text_input("Username of the new account", max_chars=100)
    role = st.selectbox("Role", roles)
    years = st.number_input("Years of experience", 0, 80, None)
    password = st.text_input(
        "Initial password (leave empty to create an invite link)",
        type="password",
        help=accounts.PASSWORD_RULE,
    )
    assign = st.checkbox(
        "Assign to the selected study", value=study is not None, disabled=study is None
    )
    if st.form_submit_button("Create account"):
        try:
            with admin_ui.staff_session(login) as (session, actor):
                user = accounts.create_user(
                    session,
                    username.strip(),
                    password or None,
                    role=role,
                    years_experience=years,
                    actor=actor,
                )
                n = admin.assign_reader(session, actor, study.id, user) if assign and study else 0
                token = (
                    None if password else accounts.create_invite(session, user, hours, actor=actor)
                )
        except TuringCTError as exc:
            safe_text.error(exc)
        else:
            safe_text.success(
                f"Account {username.strip()!r} created" + (f", {n} cases assigned" if n else "")
            )
            if token:
                _show_link(username.strip(), token, hours)

# Read after the form so that an account created just now is listed.
with admin_ui.staff_session(login) as (session, actor):
    users = accounts.list_users(session, actor)

ACTIONS = {
    "invite": "New invite link",
    "revoke": "Revoke invites",
    "unlock": "Unlock",
    "deactivate": "Deactivate",
    "reactivate": "Reactivate",
    "assign": "Assign to the selected study",
}
with st.form("turingct_existing_reader"):
    st.subheader("Existing account")
    existing = st.selectbox(
        "Account",
        [u.username for u in users],
        help="a new invite link replaces a lost password and revokes the account's earlier links",
    )
    account_actions = [k for k in ACTIONS if k != "assign"]
    cols = st.columns(len(account_actions))
    pressed = [
        key
        for col, key in zip(cols, account_actions, strict=True)
        if col.form_submit_button(ACTIONS[key])
    ]
    if st.form_submit_button(ACTIONS["assign"], disabled=study is None):
        pressed.append("assign")
    if pressed:
        action, token, n = pressed[0], None, 0
        try:
            with admin_ui.staff_session(login) as (session, actor):
                user = accounts.require_user(session, existing or "")
                if action == "invite":
                    token = accounts.create_invite(session, user, hours, actor=actor)
                elif action == "revoke":
                    n = accounts.revoke_invites(session, user, actor=actor)
                elif action == "unlock":
                    n = accounts.unlock(session, user, actor=actor)
                elif action in ("deactivate", "reactivate"):
                    accounts.set_active(session, user, action == "reactivate", actor=actor)
                else:
                    assert study is not None  # the assign button is disabled without one
                    n = admin.assign_reader(session, actor, study.id, user)
        except TuringCTError as exc:
            safe_text.error(exc)
        else:
            if token:  # shown only once the invite is committed
                _show_link(existing, token, hours)
            else:
                safe_text.success(
                    {
                        "revoke": f"{existing}: {n} open invite link(s) revoked.",
                        "unlock": f"{existing}: login locks lifted ({n} address(es)).",
                        "deactivate": f"{existing} is deactivated: logged out everywhere, open "
                        "invites revoked; the answers stay.",
                        "reactivate": f"{existing} is active again.",
                        "assign": f"{existing} has {n} cases in {study.name if study else ''}.",
                    }[action]
                )
            with admin_ui.staff_session(login) as (session, actor):
                users = accounts.list_users(session, actor)

with st.form("turingct_own_password", clear_on_submit=True):
    st.subheader("Change my password")
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    new = st.text_input(
        "New password", type="password", autocomplete="new-password", help=accounts.PASSWORD_RULE
    )
    st.caption(accounts.PASSWORD_RULE)
    again = st.text_input("Repeat the new password", type="password", autocomplete="new-password")
    if st.form_submit_button("Change password"):
        if new != again:
            st.error("The two new passwords differ; type the same password twice.")
        else:
            try:
                with admin_ui.staff_session(login) as (session, actor):
                    accounts.change_own_password(session, actor, current, new)
            except TuringCTError as exc:
                safe_text.error(exc)
            else:
                st.success("Password changed.")

st.subheader("Accounts")
st.dataframe(
    admin_ui.as_records(users),
    hide_index=True,
    width="stretch",
    column_config={
        "username": "Username",
        "role": "Role",
        "years_experience": "Years",
        "has_password": "Has password",
        "locked": "Locked",
        "active": "Active",
        "invite_expires_at": "Open invite until (UTC)",
    },
)

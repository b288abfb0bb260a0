"""Entry script (``streamlit run app/main.py``, started by ``turingct serve``).

It only builds ``st.navigation`` from the logged-in user's role plus the shared chrome (title,
logout); every page guards itself again (``app.state.require_login``) and every service
function checks the role once more. Pages not allowed for a role are never registered, so a
reader cannot open them by URL or page name (a reader typing such a URL gets a refusal stub).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import state
from app.session_cookie import sync_cookie

# A local file: a ":material/...:" page icon makes the browser fetch it from a font CDN.
ICON = Path(__file__).resolve().parent / "static" / "icon.png"
st.set_page_config(page_title="TuringCT", page_icon=str(ICON), layout="wide")

READER_PAGES = [
    st.Page(
        "pages_/my_studies.py",
        title="My studies",
        icon=":material/list:",
        url_path="my-studies",
        default=True,
    ),
    st.Page(
        "pages_/reading.py", title="Read cases", icon=":material/visibility:", url_path="reading"
    ),
]
# url_path -> page; researchers and admins only.
RESEARCH_PAGES = {
    "studies": st.Page(
        "pages_/studies.py", title="Studies", icon=":material/science:", url_path="studies"
    ),
    "readers": st.Page(
        "pages_/readers.py",
        title="Readers and invites",
        icon=":material/group:",
        url_path="readers",
    ),
    "progress": st.Page(
        "pages_/progress.py",
        title="Reader progress",
        icon=":material/monitoring:",
        url_path="progress",
    ),
    "datasets": st.Page(
        "pages_/datasets.py", title="Datasets", icon=":material/database:", url_path="datasets"
    ),
    "synthesis": st.Page(
        "pages_/synthesis.py",
        title="Synthesis batches",
        icon=":material/biotech:",
        url_path="synthesis",
    ),
    "dashboard": st.Page(
        "pages_/dashboard.py", title="Dashboard", icon=":material/insights:", url_path="dashboard"
    ),
}


def _access_denied() -> None:
    st.error("Access denied: that page is only for researcher accounts.")
    st.page_link(READER_PAGES[0], label="Back to my studies", icon=":material/list:")


def _denial_stubs() -> list:
    """Hidden stand-ins at the research URLs for readers: typing such a URL shows a refusal
    (the research page scripts themselves are never registered for a reader)."""
    return [
        st.Page(_access_denied, title="Access denied", url_path=path, visibility="hidden")
        for path in RESEARCH_PAGES
    ]


login = state.current_login()
if login is None:
    page = (
        ("pages_/invite.py", "Set your password", "invite")
        if st.query_params.get("invite")
        else ("pages_/login.py", "Log in", "login")
    )
    # The login form answers at every known address, so a bookmarked or typed URL asks for
    # credentials first (and then shows that page, or the refusal) instead of "page not found".
    known = ["reading", "my-studies", *RESEARCH_PAGES]
    nav = st.navigation(
        [st.Page(page[0], title=page[1], url_path=page[2], default=True)]
        + [st.Page(page[0], title=page[1], url_path=path, visibility="hidden") for path in known],
        position="hidden",
    )
else:
    if login.is_researcher:
        nav = st.navigation({"Reading": READER_PAGES, "Research": list(RESEARCH_PAGES.values())})
    else:
        nav = st.navigation(READER_PAGES + _denial_stubs())
    with st.sidebar:
        # plain text: a username is user input and must never be rendered as markdown
        st.text(f"Logged in as {login.username} ({login.role})")
        if st.button("Log out", key="turingct_logout"):
            state.log_out("You have been logged out.")
            st.rerun()

if state.COOKIE_KEY in st.session_state:  # set after a login, cleared after a logout
    sync_cookie(st.session_state.pop(state.COOKIE_KEY))
state.show_flash()
nav.run()

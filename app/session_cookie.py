"""The browser half of a login session: a cookie holding the session token.

Streamlit reads cookies (``st.context.cookies``, those sent with the websocket handshake) but
has no API to set one, so a tiny components-v2 element (no iframe: it runs in the page) sets or
clears it with ``document.cookie``. Attributes: ``Path=/``, ``SameSite=Strict`` (never sent
with a cross-site request), ``Max-Age`` = the session's maximum age, ``Secure`` when the page is
served over HTTPS. JavaScript can read it (it cannot be HttpOnly when set from the page), which
is why the app renders no user-provided HTML or markdown; the database holds only the token's
SHA-256, and a logout, password reset or deactivation ends the session server side whatever the
browser keeps.
"""

from __future__ import annotations

import functools
from typing import Any

COOKIE_NAME = "turingct_session"
COMPONENT_KEY = "turingct_session_cookie"

_JS = """
export default function (component) {
  const d = component.data || {};
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const value = d.token ? encodeURIComponent(d.token) : "";
  const age = d.token ? d.max_age : 0;
  document.cookie = `${d.name}=${value}; Path=/; Max-Age=${age}; SameSite=Strict${secure}`;
}
"""


@functools.cache
def _component() -> Any:
    import streamlit as st

    return st.components.v2.component("turingct_session_cookie", html="<span></span>", js=_JS)


def sync_cookie(token: str) -> None:
    """Set the session cookie to ``token``, or delete it when ``token`` is empty."""
    from studies.sessions import MAX_AGE

    _component()(
        data={"name": COOKIE_NAME, "token": token or "", "max_age": int(MAX_AGE.total_seconds())},
        key=COMPONENT_KEY,
    )

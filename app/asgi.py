"""The served app: ``app/main.py`` as an ``st.App`` behind two guards for what Streamlit
shows to anyone who connects, logged in or not, with no setting to turn it off.

``turingct serve`` runs this file (``streamlit run app/asgi.py``; Streamlit finds the ``app``
object and serves it with uvicorn), so the guards sit in front of every request without a
reverse proxy:

- :class:`BlockEndpoints`: ``/_stcore/metrics`` (session counts, cache sizes) answers 404;
- :class:`ScrubSessionStart`: the session-start message (``NewSession``, sent before any
  login) carries the absolute path of ``app/main.py`` (the install path), the Python version
  and the server OS; they are replaced by ``main.py`` and empty strings on the way out (the
  browser uses the path only as part of an app id hash).

Everything else passes through unchanged.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

MAIN_SCRIPT = Path(__file__).resolve().parent / "main.py"
BLOCKED_SUFFIXES = ("/_stcore/metrics",)


class BlockEndpoints:
    """ASGI middleware: 404 for the paths in :data:`BLOCKED_SUFFIXES` (with any base path)."""

    def __init__(self, app, suffixes: tuple[str, ...] = BLOCKED_SUFFIXES):
        self.app = app
        self.suffixes = suffixes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith(self.suffixes):
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"Not found"})
            return
        await self.app(scope, receive, send)


_SCRUB_MAX_BYTES = 1 << 20  # session-start messages are a few kB; case volumes are never parsed


def scrub_session_start(payload: bytes, marker: bytes = str(MAIN_SCRIPT).encode()) -> bytes:
    """A serialized ``ForwardMsg`` with the install path and server details removed from a
    ``new_session`` message; any other message is returned as is (a byte search for the
    script path skips parsing them)."""
    if len(payload) > _SCRUB_MAX_BYTES or marker not in payload:
        return payload
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    msg.ParseFromString(payload)
    if not msg.HasField("new_session"):
        return payload
    msg.new_session.main_script_path = "main.py"
    env = msg.new_session.initialize.environment_info
    env.python_version = ""
    env.server_os = ""
    return msg.SerializeToString()


class ScrubSessionStart:
    """ASGI middleware: :func:`scrub_session_start` on every websocket message sent."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def scrubbed(message):
            if message.get("type") == "websocket.send" and message.get("bytes"):
                message = {**message, "bytes": scrub_session_start(message["bytes"])}
            await send(message)

        await self.app(scope, receive, scrubbed)


app = st.App(
    str(MAIN_SCRIPT), middleware=[Middleware(BlockEndpoints), Middleware(ScrubSessionStart)]
)

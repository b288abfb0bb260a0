"""Downloads of sensitive files (the unblinding key, results, the report) without a URL.

``st.download_button`` stores its bytes in Streamlit's media store and serves them at
``/media/<id>`` to *any* HTTP request: no session or cookie is checked, so while the page was
open the unblinding key could be fetched by anyone who saw the URL (proxy logs, browser
history, a shared screen). A callable ``data`` only delays that: once clicked, the file sits at
such a URL until the store's cleanup runs. Here nothing is built until the researcher presses
the button (the builder checks the role against the database); the bytes then travel on the
researcher's own websocket to a small components-v2 element that hands them to the browser as
a ``blob:`` download (a URL that exists only inside that browser tab). The server never holds
them at any URL.
"""

from __future__ import annotations

import functools
import json
import secrets
import struct
from collections.abc import Callable
from typing import Any

import streamlit as st

MAGIC = b"TCTD"

_JS = """
const delivered = new Set();                          // nonces already handed over
export default function (component) {
  const raw = component.data;
  const u8 = raw instanceof Uint8Array ? raw : new Uint8Array(raw.buffer ?? raw);
  if (u8.length < 8) return;
  const n = new DataView(u8.buffer, u8.byteOffset, u8.byteLength).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n)));
  const root = component.parentElement;              // a shadow root or an element
  if (delivered.has(head.nonce)) return;              // a redraw, not a new request
  delivered.add(head.nonce);
  const url = URL.createObjectURL(new Blob([u8.subarray(8 + n)], {type: head.mime}));
  const a = document.createElement("a");
  a.href = url; a.download = head.name; a.style.display = "none";
  root.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
"""


@functools.cache
def _component() -> Any:
    return st.components.v2.component("turingct_secure_download", html="<span></span>", js=_JS)


def pack(content: bytes, file_name: str, mime: str) -> bytes:
    """What is sent to the browser: ``b"TCTD"``, a little-endian uint32 header length, a JSON
    header (file name, MIME type, a random nonce so a redraw does not download twice), then the
    file's bytes."""
    head = json.dumps({"name": file_name, "mime": mime, "nonce": secrets.token_hex(8)}).encode(
        "utf-8"
    )
    return MAGIC + struct.pack("<I", len(head)) + head + content


def unpack(payload: bytes) -> tuple[dict[str, str], bytes]:
    """Inverse of :func:`pack`: (header, content)."""
    if payload[:4] != MAGIC:
        raise ValueError("not a secure download payload")
    (n,) = struct.unpack_from("<I", payload, 4)
    return json.loads(payload[8 : 8 + n]), payload[8 + n :]


def secure_download(
    label: str,
    build: Callable[[], bytes | str],
    *,
    file_name: str,
    mime: str,
    key: str,
    help: str | None = None,
    container: Any = st,
) -> bool:
    """A button that builds the file with ``build()`` only when pressed and delivers it to this
    browser only (see module doc). ``build`` runs in the page script, so it must check the
    user's role itself (services do). Returns whether a file was delivered in this run."""
    if not container.button(label, key=key, help=help):
        return False
    content = build()
    if isinstance(content, str):
        content = content.encode("utf-8")
    payload = pack(content, file_name, mime)
    if hasattr(container, "__enter__"):  # a column or container: deliver inside it
        with container:
            _component()(data=payload, key=f"{key}_deliver")
    else:
        _component()(data=payload, key=f"{key}_deliver")
    return True


__all__ = ["pack", "secure_download", "unpack"]

"""Client-side slice viewer of the reading page: a Streamlit components-v2 element.

``app/static/slice_viewer.html`` (a ``<style>``, the markup and a ``<script type="module">``
of about 11 kB of plain JavaScript, no library, no WebGL) is registered once as an
``st.components.v2`` component. Each case is sent to it as raw
bytes (:func:`viewer_payload`: a 28-byte header with the display window and height, then the
case's gzip NIfTI-1 file), which travel in binary on Streamlit's websocket: no base64, no
iframe, no HTML page to parse (the 14 MB ``srcdoc`` of the previous version took 0.5-0.9 s to
load in Chromium). In the browser the module decompresses the volume (``DecompressionStream``),
parses the NIfTI-1 header and draws the axial, coronal and sagittal planes on 2D canvases.
Scrolling (mouse wheel, sliders, arrow / page keys), crosshair clicks and zoom all run in the
browser: nothing goes back to the server until the reader answers (the component sets no
state and has no callbacks, so it never reruns the script).

Orientation (radiological): axial and coronal show patient right on screen left; axial has
anterior at the top, coronal and sagittal superior at the top; sagittal shows anterior on the
left. Blinded exports are RAS (voxel axes x, y, z point to patient Right, Anterior, Superior),
so every displayed axis runs against its voxel index; the module reads the sign of each axis
from the sform (or qform) diagonal and flips only axes that point R, A or S. Pixel aspect comes
from ``pixdim``. The view opens at the volume centre (blinded crops are centred on the tumor in
both arms, so this reveals nothing).

Blinding: the component's name, key, markup and code are the same for every case; the payload
differs only in the volume's bytes (scrubbed gzip header: no file name, zero time stamp). No
code, id, path, file name or time is sent.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from pathlib import Path
from typing import Any

from app.viewer import VIEWER_HEIGHT_PX, ViewerError, Window, prepare_volume

SOURCE = Path(__file__).resolve().parent / "static" / "slice_viewer.html"
COMPONENT_NAME = "turingct_slice_viewer"
COMPONENT_KEY = "case_viewer"       # the same for every case: the element id reveals nothing
MAGIC = b"TCT1"
# MAGIC, then little-endian float64 window width (HU), level (HU), viewer height (CSS px)
_HEAD = struct.Struct("<4sddd")
HEADER_BYTES = _HEAD.size


@functools.cache
def component_sources() -> dict[str, str]:
    """The component's ``html`` (the ``.tct`` block), ``css`` and ``js`` (module text).

    One file keeps the three together (and installed as the package's ``static/*.html``).
    """
    text = SOURCE.read_text(encoding="utf-8")
    parts = {"css": re.search(r"<style>\n(.*?)</style>", text, re.S),
             "html": re.search(r'^<div class="tct".*?^</div>$', text, re.S | re.M),
             "js": re.search(r'<script type="module">\n(.*?)</script>', text, re.S)}
    if not all(parts.values()):
        raise RuntimeError(f"{SOURCE}: a <style>, .tct block or module <script> is missing")
    return {"css": parts["css"].group(1), "html": parts["html"].group(0),
            "js": parts["js"].group(1)}


def viewer_payload(volume_gz: bytes, window: Window, height: int = VIEWER_HEIGHT_PX) -> bytes:
    """The bytes sent to the browser for one case: deterministic, nothing but voxels and window.

    Layout: ``b"TCT1"``, then window width and level (HU) and the viewer height (CSS pixels) as
    little-endian float64, then ``volume_gz``, a gzip-compressed NIfTI-1 file's content (a
    plain ``.nii`` is compressed here) with its gzip header scrubbed (no file name, zero time
    stamp; see :func:`app.viewer.prepare_volume`). ``height`` must be an integer 200-4000.

    Raises :class:`~app.viewer.ViewerError` for a volume that is not NIfTI-1, a bad height or a
    non-finite window.
    """
    if isinstance(height, bool) or not isinstance(height, int) or not 200 <= height <= 4000:
        raise ViewerError(f"viewer height must be an integer 200-4000 px, got {height!r}")
    if not (math.isfinite(window.width) and math.isfinite(window.level)):
        raise ViewerError(f"window must be finite numbers (HU), got {window}; pick a preset")
    head = _HEAD.pack(MAGIC, float(window.width), float(window.level), float(height))
    return head + prepare_volume(volume_gz)


def unpack_payload(payload: bytes) -> tuple[Window, int, bytes]:
    """Inverse of :func:`viewer_payload`: (window, height, gzip NIfTI bytes)."""
    magic, width, level, height = _HEAD.unpack_from(payload)
    if magic != MAGIC:
        raise ViewerError("not a slice viewer payload (missing TCT1 header)")
    return Window(width, level), int(height), payload[HEADER_BYTES:]


@functools.cache
def _component() -> Any:
    import streamlit as st

    # isolate_styles: the markup lives in a shadow root, so its CSS and element ids stay apart
    # from the app's.
    return st.components.v2.component(COMPONENT_NAME, isolate_styles=True,
                                      **component_sources())


def show_slice_viewer(volume_gz: bytes, window: Window, *,
                      height: int = VIEWER_HEIGHT_PX) -> None:
    """Show the viewer in the Streamlit page (one components-v2 element, fixed key).

    One way only: nothing comes back from the browser, so interacting with the viewer never
    reruns the script. A new ``window`` re-sends the payload; the browser sees the same volume
    (gzip CRC and length) and only redraws with the new window, keeping slices and zoom.
    """
    _component()(data=viewer_payload(volume_gz, window, height), key=COMPONENT_KEY,
                 height=height)

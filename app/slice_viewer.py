"""Client-side slice viewer of the reading page: one self-contained HTML page per case.

:func:`slice_viewer_html` fills ``app/static/slice_viewer.html`` (about 10 kB of plain
JavaScript, no library, no WebGL) with the case's gzip NIfTI-1 bytes (base64) and the display
window. In the browser the page decompresses the volume (``DecompressionStream``), parses the
NIfTI-1 header and draws the axial, coronal and sagittal planes on 2D canvases. Scrolling
(mouse wheel, sliders, arrow / page keys), crosshair clicks and zoom all run in the browser:
after the page is loaded nothing goes back to the server until the reader answers.

Orientation (radiological): axial and coronal show patient right on screen left; axial has
anterior at the top, coronal and sagittal superior at the top; sagittal shows anterior on the
left. Blinded exports are RAS (voxel axes x, y, z point to patient Right, Anterior, Superior),
so every displayed axis runs against its voxel index; the page reads the sign of each axis from
the sform (or qform) diagonal and flips only axes that point R, A or S. Pixel aspect comes from
``pixdim``. The view opens at the volume centre (blinded crops are centred on the tumor in both
arms, so this reveals nothing).

Blinding: the page is the same text for every case of a study apart from the volume's base64;
it contains no code, id, path, file name or time.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from pathlib import Path

from app.viewer import VIEWER_HEIGHT_PX, ViewerError, Window, prepare_volume

TEMPLATE = Path(__file__).resolve().parent / "static" / "slice_viewer.html"
_ARGS_SLOT = "__ARGS__"
_VOLUME_SLOT = "__VOLUME__"
# The iframe's accessible name (constant: the same for every case).
IFRAME_TITLE = "CT slice viewer"


@functools.cache
def _template() -> tuple[str, str, str]:
    """The page split around its two slots: (head, between, tail)."""
    text = TEMPLATE.read_text(encoding="utf-8")
    head, rest = text.split(_ARGS_SLOT)
    between, tail = rest.split(_VOLUME_SLOT)
    return head, between, tail


def slice_viewer_html(volume_gz: bytes, window: Window,
                      height: int = VIEWER_HEIGHT_PX) -> str:
    """The viewer page for one case: deterministic, and free of anything but voxels and window.

    ``volume_gz`` is a gzip-compressed NIfTI-1 file's content (a plain ``.nii`` is compressed
    here); its gzip header is scrubbed (no file name, zero time stamp) before it is embedded as
    base64. ``window`` (width, level in HU) is applied in the browser. ``height`` is the iframe
    height in CSS pixels (200-4000). The same inputs always give the same string.

    Raises :class:`~app.viewer.ViewerError` for a volume that is not NIfTI-1 or a bad height.
    """
    if isinstance(height, bool) or not isinstance(height, int) or not 200 <= height <= 4000:
        raise ViewerError(f"viewer height must be an integer 200-4000 px, got {height!r}")
    if not (math.isfinite(window.width) and math.isfinite(window.level)):
        raise ViewerError(f"window must be finite numbers (HU), got {window}; pick a preset")
    payload = base64.b64encode(prepare_volume(volume_gz)).decode("ascii")
    args = json.dumps({"width": float(window.width), "level": float(window.level)},
                      sort_keys=True)
    head, between, tail = _template()
    return "".join((head, args, between, payload, tail))


def show_slice_viewer(volume_gz: bytes, window: Window, *,
                      height: int = VIEWER_HEIGHT_PX) -> None:
    """Show the viewer in the Streamlit page (``st.iframe`` with the page as ``srcdoc``).

    One way only: nothing comes back from the iframe, so interacting with the viewer never
    reruns the script. A new ``window`` re-renders the page; the browser keeps the slices and
    zoom of the same volume across that reload (session storage keyed by the voxels).
    """
    import streamlit as st

    st.iframe(slice_viewer_html(volume_gz, window, height), height=height, alt=IFRAME_TITLE)

"""Client-side slice viewer and vote bar of the reading page: a Streamlit components-v2 element.

``app/static/slice_viewer.html`` (a ``<style>``, the markup and a ``<script type="module">``
of plain JavaScript, no library, no WebGL) is registered once as an ``st.components.v2``
component. Each case is sent to it as raw bytes (:func:`viewer_payload`: ``b"TCT2"``, a small
JSON block of settings, then the case's gzip NIfTI-1 file), which travel in binary on
Streamlit's websocket: no base64, no iframe. In the browser the module decompresses the volume
(``DecompressionStream``), parses the NIfTI-1 header and draws the axial, coronal and sagittal
planes on 2D canvases with orientation letters and a scale bar in mm. Scrolling (mouse wheel,
sliders, arrow / page keys), crosshair clicks, zoom and window / level (preset list, right-drag
or Shift + drag) all run in the browser: nothing goes back to the server until the reader
votes. The vote (buttons or keys 1 / 2 / 3) is the component's only event: one ``vote``
trigger with the answer, the window on screen and the seconds the case was visibly on screen;
from the click until the next case (or the next ballot) arrives every vote control is
disabled, and it is not enabled before the case was on screen for the study's minimum time.

Orientation (radiological): axial and coronal show patient right on screen left; axial has
anterior at the top, coronal and sagittal superior at the top; sagittal shows anterior on the
left. Blinded exports are RAS (voxel axes x, y, z point to patient Right, Anterior, Superior),
so every displayed axis runs against its voxel index; the module reads the sign of each axis
from the sform (or qform) diagonal and flips only axes that point R, A or S. Pixel aspect comes
from ``pixdim``. The view opens with the crosshair on the lesion (``focus``, the lesion voxel
of the blinded case; the volume centre when unknown).

Blinding: the component's name, key, markup and code are the same for every case; the payload
differs only in the volume's bytes (scrubbed gzip header: no file name, zero time stamp), the
lesion voxel (where to look, computed alike for both arms) and the ballot number (a per-session
counter of vote rounds). No code, id, path, file name or time is sent.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.viewer import VIEWER_HEIGHT_PX, ViewerError, Window, prepare_volume

SOURCE = Path(__file__).resolve().parent / "static" / "slice_viewer.html"
COMPONENT_NAME = "turingct_slice_viewer"
COMPONENT_KEY = "case_viewer"  # the same for every case: the element id reveals nothing
MAGIC = b"TCT2"
# MAGIC, then the little-endian uint32 length of the JSON settings that follow
_HEAD = struct.Struct("<4sI")
HEADER_BYTES = _HEAD.size
MAX_SETTINGS_BYTES = 64 * 1024


@dataclass(frozen=True)
class VoteControls:
    """What the viewer's vote bar offers: ``choices`` (button label, stored value) in order
    (keys 1, 2, 3...; empty: view only, no vote bar), the window ``presets`` (label, width,
    level HU) of the preset list, an optional 1-5 ``confidence``, ``min_seconds`` on screen
    before a vote is possible, ``idle_seconds`` after which time on screen stops counting, and
    the ``ballot`` (a new number re-arms the buttons for the same case after a refused vote)."""

    choices: tuple[tuple[str, str], ...] = ()
    presets: tuple[tuple[str, float, float], ...] = ()
    confidence: bool = False
    min_seconds: float = 0.0
    idle_seconds: float = 60.0
    ballot: int = 0


@dataclass(frozen=True)
class Vote:
    """A vote as the browser sent it, checked: ``value`` one of the choices, ``confidence``
    1-5 or None, the window on screen (HU), ``visible_seconds`` on screen, the ``ballot``."""

    value: str
    confidence: int | None
    window: Window
    visible_seconds: float
    ballot: int = field(default=0)


@functools.cache
def component_sources() -> dict[str, str]:
    """The component's ``html`` (the ``.tct`` block), ``css`` and ``js`` (module text).

    One file keeps the three together (and installed as the package's ``static/*.html``).
    """
    text = SOURCE.read_text(encoding="utf-8")
    css = re.search(r"<style>\n(.*?)</style>", text, re.S)
    html = re.search(r'^<div class="tct".*?^</div>$', text, re.S | re.M)
    js = re.search(r'<script type="module">\n(.*?)</script>', text, re.S)
    if css is None or html is None or js is None:
        raise RuntimeError(f"{SOURCE}: a <style>, .tct block or module <script> is missing")
    return {"css": css.group(1), "html": html.group(0), "js": js.group(1)}


def viewer_payload(
    volume_gz: bytes,
    window: Window,
    height: int = VIEWER_HEIGHT_PX,
    *,
    controls: VoteControls = VoteControls(),
    focus: Sequence[int] | None = None,
) -> bytes:
    """The bytes sent to the browser for one case: deterministic, nothing but voxels and settings.

    Layout: ``b"TCT2"``, the little-endian uint32 length of a JSON object (sorted keys) with the
    initial ``window`` [width, level] HU, ``height`` (CSS px), the :class:`VoteControls` and
    ``focus`` (the lesion voxel i, j, k where the crosshair opens, or null), then
    ``volume_gz``, a gzip-compressed NIfTI-1 file's content (a plain ``.nii`` is compressed
    here) with its gzip header scrubbed (no file name, zero time stamp; see
    :func:`app.viewer.prepare_volume`). ``height`` must be an integer 200-4000.

    Raises :class:`~app.viewer.ViewerError` for a volume that is not NIfTI-1, a bad height or a
    non-finite window.
    """
    if isinstance(height, bool) or not isinstance(height, int) or not 200 <= height <= 4000:
        raise ViewerError(
            "height",
            f"viewer height must be an integer 200-4000 px, got {height!r}",
            "pass a whole number of px from 200 to 4000",
        )
    if not (math.isfinite(window.width) and math.isfinite(window.level)):
        raise ViewerError("window", f"must be finite numbers (HU), got {window}", "pick a preset")
    settings = {
        "window": [float(window.width), float(window.level)],
        "height": height,
        "choices": [list(c) for c in controls.choices],
        "presets": [[str(n), float(w), float(lv)] for n, w, lv in controls.presets],
        "confidence": bool(controls.confidence),
        "min_s": float(controls.min_seconds),
        "idle_s": float(controls.idle_seconds),
        "ballot": int(controls.ballot),
        "focus": None if focus is None else [int(v) for v in focus],
    }
    text = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return _HEAD.pack(MAGIC, len(text)) + text + prepare_volume(volume_gz)


def unpack_payload(payload: bytes) -> tuple[Window, int, bytes, dict[str, Any]]:
    """Inverse of :func:`viewer_payload`: (window, height, gzip NIfTI bytes, settings)."""
    magic, n = _HEAD.unpack_from(payload) if len(payload) >= HEADER_BYTES else (b"", 0)
    if magic != MAGIC or n > MAX_SETTINGS_BYTES:
        raise ViewerError(
            "payload",
            "not a slice viewer payload (missing TCT2 header)",
            "pass the bytes viewer_payload() made",
        )
    settings = json.loads(payload[HEADER_BYTES : HEADER_BYTES + n])
    return (
        Window(*settings["window"]),
        int(settings["height"]),
        payload[HEADER_BYTES + n :],
        settings,
    )


def parse_vote(raw: Any, choices: Sequence[tuple[str, str]]) -> Vote:
    """Check the ``vote`` event the browser sent (untrusted) and return it as a :class:`Vote`.

    Raises :class:`~app.viewer.ViewerError` (one line, nothing of the input echoed beyond a
    short repr) when it is not a mapping with a known value, a confidence 1-5 or null, a
    positive finite window and finite seconds >= 0.
    """
    if not isinstance(raw, dict):
        raise ViewerError("vote", "the vote did not arrive in a readable form", "answer again")
    allowed = {v for _, v in choices}
    value, conf = raw.get("value"), raw.get("confidence")
    if value not in allowed:
        raise ViewerError(
            "vote",
            f"answer must be one of {', '.join(sorted(allowed))}, got {str(value)[:40]!r}",
            "answer again",
        )
    if conf is not None and (isinstance(conf, bool) or conf not in range(1, 6)):
        raise ViewerError(
            "vote",
            f"confidence must be 1-5 or none, got {str(conf)[:10]!r}",
            "pick a confidence 1-5 or none and answer again",
        )
    # untrusted JSON values: Any until the check below has seen finite numbers
    numbers: list[Any] = [raw.get(k) for k in ("width", "level", "visible_s", "ballot")]
    if (
        not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in numbers
        )
        or numbers[0] <= 0
        or numbers[2] < 0
    ):
        raise ViewerError(
            "vote",
            "the vote carries no valid window or time on screen",
            "reload the page and answer again",
        )
    width, level, seconds, ballot = numbers
    return Vote(str(value), conf, Window(float(width), float(level)), float(seconds), int(ballot))


@functools.cache
def _component() -> Any:
    import streamlit as st

    # isolate_styles: the markup lives in a shadow root, so its CSS and element ids stay apart
    # from the app's.
    return st.components.v2.component(COMPONENT_NAME, isolate_styles=True, **component_sources())


def show_slice_viewer(
    volume_gz: bytes,
    window: Window,
    *,
    height: int = VIEWER_HEIGHT_PX,
    controls: VoteControls = VoteControls(),
    focus: Sequence[int] | None = None,
    on_vote: Callable[[], None] | None = None,
) -> Any:
    """Show the viewer in the Streamlit page (one components-v2 element, fixed key).

    Only a vote comes back from the browser (``on_vote`` runs before the rerun; read the vote
    with :func:`current_vote`); scrolling, zoom and window changes never rerun the script. The
    same bytes on a rerun reach the browser as a cached reference, and the browser redraws
    the same volume without decoding it again, keeping slices, zoom and window.
    """
    payload = viewer_payload(volume_gz, window, height, controls=controls, focus=focus)
    return _component()(
        data=payload, key=COMPONENT_KEY, height=height, on_vote_change=on_vote or (lambda: None)
    )


def current_vote() -> Any:
    """The ``vote`` event of this run (inside ``on_vote``), or None."""
    import streamlit as st

    state = st.session_state.get(COMPONENT_KEY)
    if state is None:
        return None
    return state.get("vote") if hasattr(state, "get") else getattr(state, "vote", None)

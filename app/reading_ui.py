"""Widgets of the reading page: window controls, the case viewer, the answer form.

State kept per browser session (all keys start with ``case_`` and are dropped at logout): the
current case's blinded bytes as sent to the browser (read and checked once per case), the
idempotency key of the pending answer and the last submit's feedback. Nothing here reveals the
arm: widget keys and the viewer element (name, key, code) are the same for every case; only the
voxel bytes differ. The opaque code stays on the server (nothing sent to the viewer contains it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import streamlit as st

from app import safe_text, state
from app.slice_viewer import show_slice_viewer
from app.viewer import CUSTOM, Window, prepare_volume, preset_label
from synth_backend.errors import TuringCTError

VOLUME_KEY = "case_volume"          # (code, blinded bytes as sent to the browser)
PENDING_KEY = "case_pending"        # code -> (idempotency key, first display time)
FEEDBACK_KEY = "case_feedback"      # (ok: bool, message) of the last submit
PRESET_KEY = "case_window_preset"
CONFIDENCE_KEY = "case_confidence"
CONFIDENCE_LABELS = {1: "1 guess", 2: "2", 3: "3", 4: "4", 5: "5 certain"}


def pick_study(studies: Sequence[Any], selected_id: int | None) -> Any | None:
    """The study to read: the selected one if assigned, else the first unfinished, else first."""
    if not studies:
        return None
    for row in studies:
        if row.study_id == selected_id:
            return row
    return next((row for row in studies if not row.finished), studies[0])


def window_options(view: Any) -> dict[str, tuple[float, float]]:
    """Reader-facing label -> (width, level) HU: the study's presets (default first) + Custom."""
    options = {preset_label(name, width, level): (float(width), float(level))
               for name, width, level in view.window_presets}
    return {**options, CUSTOM: view.default_window[1:]}


def window_controls(view: Any) -> Window:
    """Preset selectbox (+ width/level inputs for Custom); returns the window on screen.

    The choice persists across cases (a reader who prefers the liver window keeps it).
    """
    options = window_options(view)
    if st.session_state.get(PRESET_KEY) not in options:
        st.session_state[PRESET_KEY] = next(iter(options))
    choice = st.selectbox("Window", list(options), key=PRESET_KEY,
                          help="Display window in HU (width / level).")
    if choice != CUSTOM:
        return Window(*options[choice])
    width0, level0 = options[CUSTOM]
    width = st.number_input("Width (HU)", min_value=1.0, max_value=4000.0, value=float(width0),
                            step=10.0, key="case_window_width")
    level = st.number_input("Level (HU)", min_value=-1024.0, max_value=3071.0,
                            value=float(level0), step=5.0, key="case_window_level")
    return Window(float(width), float(level))


def _pending(view: Any) -> tuple[str, datetime]:
    """(idempotency key, first display time) for the case on screen, created on first display.

    The key is kept for the displayed case, so a double click or a retry counts once. The
    service records the server-side first display itself (``view.displayed_at``), so the time on
    case survives a logout and re-login.
    """
    pending = st.session_state.setdefault(PENDING_KEY, {})
    if view.code not in pending:
        pending[view.code] = (view.idempotency_key or uuid.uuid4().hex, view.displayed_at)
    return pending[view.code]


def show_case(view: Any, window: Window, login: state.Login) -> None:
    """Fetch the blinded volume once per case and show it in the client-side slice viewer.

    Changing the window re-sends the bytes with the new window (the browser recognises the
    volume and only redraws it, keeping slices and zoom); scrolling, crosshair and zoom never
    reach the server.
    """
    from studies.reading import case_volume_bytes

    cached = st.session_state.get(VOLUME_KEY)
    if cached is None or cached[0] != view.code:
        with state.db_session() as session:
            data = case_volume_bytes(session, state.load_user(session, login), view.code)
        cached = (view.code, prepare_volume(data))
        st.session_state[VOLUME_KEY] = cached
    _pending(view)  # start the clock when the case is first shown
    show_slice_viewer(cached[1], window)
    st.caption("Mouse wheel over a view or its slider: scroll slices · click or drag: move the "
               "crosshair (the other views follow) · after a click in the viewer: arrow keys / "
               "Page Up / Page Down scroll, + / - zoom, R reset, C crosshair on/off · "
               "Ctrl + wheel: zoom")


def _submit(login: state.Login, code: str, value: str, window: Window) -> None:
    """Form callback: store the answer, remember the outcome for the next run."""
    from studies.reading import submit_answer

    key, displayed_at = st.session_state[PENDING_KEY][code]
    confidence = st.session_state.get(CONFIDENCE_KEY)
    try:
        with state.db_session() as session:
            from studies import sessions

            # in the answer's own transaction: a tab left open after a logout elsewhere (which
            # ends every session of the account) cannot vote
            user = sessions.require_live(session, login.session_token)
            result = submit_answer(session, user, code, value=value, confidence=confidence,
                                   displayed_at=displayed_at, window_width=window.width,
                                   window_level=window.level, idempotency_key=key)
    except TuringCTError as exc:
        st.session_state[FEEDBACK_KEY] = (False, str(exc))
        return
    ok = result.accepted
    st.session_state[FEEDBACK_KEY] = (ok, result.message)
    if ok:
        st.session_state[PENDING_KEY].pop(code, None)


def answer_form(view: Any, window: Window, login: state.Login) -> None:
    """Optional confidence and one submit button per choice ("Real", "Synthetic", "Unsure")."""
    _pending(view)
    with st.form("case_answer", clear_on_submit=True, border=False):
        if getattr(view, "confidence_enabled", False):
            st.radio("Confidence (optional)", list(CONFIDENCE_LABELS), index=None,
                     format_func=CONFIDENCE_LABELS.get, key=CONFIDENCE_KEY)
        for i, (label, value) in enumerate(view.choices, start=1):
            st.form_submit_button(label, key=f"case_answer_{value}", width="stretch",
                                  shortcut=str(i),  # same style for every choice: no nudge
                                  on_click=_submit, args=(login, view.code, value, window))


def show_submit_feedback() -> None:
    """Show the last submit's problem, if any (a saved answer just moves on)."""
    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback and not feedback[0]:
        safe_text.error(feedback[1] or "The answer was not saved; try again.")
    elif feedback and feedback[1]:
        safe_text.toast(feedback[1])


__all__ = ["answer_form", "pick_study", "show_case", "show_submit_feedback", "window_controls",
           "window_options"]

"""Widgets of the reading page: the question, the case viewer with its vote bar, feedback.

State kept per browser session (all keys start with ``case_`` and are dropped at logout): the
current case's blinded bytes as sent to the browser (read, checked and recorded as displayed
once per case), the idempotency key of the pending answer, the ballot number (one per vote
round: a vote is taken only from the round on screen) and the last submit's feedback. Nothing
here reveals the arm: the viewer element (name, key, code) is the same for every case; only
the voxel bytes and the lesion position differ. The opaque code stays on the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import streamlit as st

from app import safe_text, state
from app.slice_viewer import VoteControls, current_vote, parse_vote, show_slice_viewer
from app.viewer import Window, prepare_volume, preset_label
from core.errors import TuringCTError
from core.vocabulary import Answer, StudyDesign

VOLUME_KEY = "case_volume"  # (code, blinded bytes as sent to the browser)
PENDING_KEY = "case_pending"  # code -> idempotency key of the displayed case
BALLOT_KEY = "case_ballot"  # the vote round on screen
FEEDBACK_KEY = "case_feedback"  # (ok: bool, message) of the last submit
LOGGED_OUT = "You are no longer logged in; your answer was not recorded. Log in again."
STALE_VOTE = (
    "Your answer was not recorded: it was given for a case that is no longer on "
    "screen. Look at the case shown and answer again."
)
HELP = (
    "Mouse wheel over a view or its slider: scroll slices · click or drag: move the "
    "crosshair (the other views follow) · right-drag or Shift + drag: window / level · "
    "after a click in the viewer: arrow keys / Page Up / Page Down scroll, + / - zoom, "
    "R back to the lesion, C crosshair on/off · Ctrl + wheel: zoom · keys 1 / 2 / 3: answer"
)


def question_text(view: Any) -> str:
    """The question the reader answers, in words ("Is this tumor real or synthetic?")."""
    if view.design == StudyDesign.TURING:
        return "Is this tumor real or synthetic?"
    organs = [label.lower() for label, value in view.choices if value != Answer.UNSURE]
    return f"Which organ does this tumor come from: {', '.join(organs)}?"


def pick_study(studies: Sequence[Any], selected_id: int | None) -> Any | None:
    """The study to read: the selected one if assigned, else the first open unfinished one,
    else the first."""
    if not studies:
        return None
    for row in studies:
        if row.study_id == selected_id:
            return row
    return next((row for row in studies if not row.finished and row.status != "closed"), studies[0])


def window_presets(view: Any) -> tuple[tuple[str, float, float], ...]:
    """Reader-facing (label, width, level) HU: the study's presets, default first."""
    return tuple(
        (preset_label(name, width, level), float(width), float(level))
        for name, width, level in view.window_presets
    )


def _idempotency_key(code: str, key: str | None = None) -> str:
    """The key of the answer to the case on screen, created on first display and kept for it
    (a retry or a second tab's double submit counts once)."""
    pending = st.session_state.setdefault(PENDING_KEY, {})
    if code not in pending:
        pending[code] = key or uuid.uuid4().hex
    return pending[code]


def _on_vote(login: state.Login, view: Any) -> None:
    """The viewer's vote event (runs before the rerun): check it, store it, start a new ballot.

    ``view`` is the case the browser was showing when it voted; a vote from another ballot
    (an earlier round, another case) is refused without reaching the database.
    """
    from studies.reading import submit_answer

    ballot = st.session_state.get(BALLOT_KEY, 1)
    st.session_state[BALLOT_KEY] = ballot + 1  # every vote round ends: the buttons re-arm
    current = state.current_login()
    if current is None or current.user_id != login.user_id:  # logged out / expired meanwhile
        st.session_state[FEEDBACK_KEY] = (False, LOGGED_OUT)
        return
    try:
        vote = parse_vote(current_vote(), view.choices)
        cached = st.session_state.get(VOLUME_KEY)
        if vote.ballot != ballot or cached is None or cached[0] != view.code:
            st.session_state[FEEDBACK_KEY] = (False, STALE_VOTE)
            return
        with state.db_session() as session:
            from studies import sessions

            # in the answer's own transaction: a tab left open after a logout elsewhere (which
            # ends every session of the account) or a deactivated account cannot vote
            user = sessions.resume(session, login.session_token)
            if user is None or user.id != login.user_id or not user.is_active:
                st.session_state[FEEDBACK_KEY] = (False, LOGGED_OUT)
                return
            result = submit_answer(
                session,
                user,
                view.code,
                value=vote.value,
                confidence=vote.confidence if view.confidence_enabled else None,
                window_width=vote.window.width,
                window_level=vote.window.level,
                visible_seconds=vote.visible_seconds,
                idempotency_key=_idempotency_key(view.code, view.idempotency_key),
            )
    except TuringCTError as exc:
        st.session_state[FEEDBACK_KEY] = (False, str(exc))
        return
    st.session_state[FEEDBACK_KEY] = (result.accepted, result.message)
    if result.accepted:
        st.session_state[PENDING_KEY].pop(view.code, None)


def show_case(view: Any, login: state.Login) -> None:
    """Fetch the blinded volume once per case (recorded as displayed then) and show it in the
    client-side viewer, crosshair on the lesion, vote bar under the images."""
    from studies.reading import case_volume_bytes, record_display

    cached = st.session_state.get(VOLUME_KEY)
    if cached is None or cached[0] != view.code:
        with state.db_session() as session:
            user = state.load_user(session, login)
            data = case_volume_bytes(session, user, view.code)
            record_display(session, user, view.code)
        cached = (view.code, prepare_volume(data))
        st.session_state[VOLUME_KEY] = cached
        _idempotency_key(view.code, view.idempotency_key)
    controls = VoteControls(
        choices=tuple(view.choices),
        presets=window_presets(view),
        confidence=bool(view.confidence_enabled),
        min_seconds=float(view.min_seconds_on_case),
        idle_seconds=float(view.idle_seconds),
        ballot=st.session_state.setdefault(BALLOT_KEY, 1),
    )
    show_slice_viewer(
        cached[1],
        Window(*view.default_window[1:]),
        controls=controls,
        focus=view.lesion_voxel,
        on_vote=lambda: _on_vote(login, view),
    )
    st.caption(HELP)


def show_submit_feedback() -> bool:
    """Show the last submit's problem, if any; True when the last vote was refused because the
    study is closed (the page then says so, once). A saved answer just moves on to the next
    case (no toast: one that outlives its case would sit next to the next case's message)."""
    from studies.reading import CLOSED

    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback and not feedback[0]:
        if feedback[1] == CLOSED:
            return True
        safe_text.error(feedback[1] or "The answer was not saved; try again.")
    return False


__all__ = ["pick_study", "question_text", "show_case", "show_submit_feedback", "window_presets"]

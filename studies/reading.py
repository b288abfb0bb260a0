"""What the reader pages call. Every function takes the acting user and checks access itself.

Readers only ever see opaque case codes, positions and the blinded file; never an arm, a
source, a database id of a case, or another reader's answers. Answers are written by
:func:`submit_answer` in one committed transaction (answer + event + assignment progress),
idempotent per displayed case (see its docstring).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.errors import TuringCTError
from core.vocabulary import DESIGN_QUESTION, StudyDesign
from core.vocabulary import AnswerEventKind as Kind
from db.models import Answer, AnswerEvent, Assignment, Study, StudyCase, StudyStatus, User
from studies import clock
from studies.errors import AccessDenied, StudyError
from studies.spec import WINDOW_PRESETS, Window, parse_spec

log = logging.getLogger(__name__)

NOT_ASSIGNED = "This case is not assigned to you."
CLOSED = "This study is closed; your answer was not recorded."
MAX_ATTEMPTS = 6
DISPLAYED = Kind.DISPLAYED  # record_display: the case drawn on a screen


@dataclass(frozen=True)
class ReaderStudy:
    """A study as one reader sees it (their own progress only)."""

    study_id: int
    name: str
    design: str
    answered: int
    total: int
    finished: bool
    status: str
    educational: bool


@dataclass(frozen=True)
class CaseView:
    """The case to show now. ``position`` is 1-based ("Case k of N"); ``choices`` are
    (button label, value) pairs; ``window_presets`` (name, width, level) in HU, the default
    first; ``idempotency_key`` is fresh per call: keep it for this displayed case and send it
    with every submit of it (double clicks then count once). ``lesion_voxel`` (i, j, k) is the
    voxel of the blinded file where the lesion to judge lies (the viewer opens with its
    crosshair there; None when unknown); ``min_seconds_on_case`` and ``idle_seconds`` are the
    study's reading settings (:class:`studies.spec.Reading`)."""

    study_id: int
    study_name: str
    design: str
    code: str
    position: int
    total: int
    question: str
    choices: tuple[tuple[str, str], ...]
    window_presets: tuple[tuple[str, float, float], ...]
    default_window: tuple[str, float, float]
    planes: tuple[str, ...]
    confidence_enabled: bool
    displayed_at: datetime
    idempotency_key: str
    min_seconds_on_case: float = 1.0
    idle_seconds: float = 60.0
    lesion_voxel: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class SubmitResult:
    """``status``: created | duplicate | changed | rejected; ``message`` is for the reader."""

    status: str
    message: str
    revision: int | None = None

    @property
    def accepted(self) -> bool:
        """True when the answer on record is this submission's (created/duplicate/changed)."""
        return self.status != Kind.REJECTED


def reader_studies(session: Session, reader: User) -> list[ReaderStudy]:
    """Studies with assignments for ``reader``, with their answered/total counts."""
    rows = session.execute(
        select(Study, func.count(Assignment.id), func.count(Assignment.answered_at))
        .join(Assignment, Assignment.study_id == Study.id)
        .where(Assignment.reader_id == reader.id)
        .group_by(Study.id)
        .order_by(Study.created_at, Study.id)
    ).all()
    return [
        ReaderStudy(
            s.id,
            s.name,
            s.design.value,
            answered,
            total,
            answered >= total,
            s.status.value,
            s.educational,
        )
        for s, total, answered in rows
    ]


def _study_for_reader(session: Session, reader: User, study_id: int) -> Study:
    study = session.get(Study, study_id)
    mine = session.scalar(
        select(func.count(Assignment.id)).where(
            Assignment.study_id == study_id, Assignment.reader_id == reader.id
        )
    )
    if study is None or not mine:
        raise AccessDenied("You are not a reader of this study.")
    return study


def _presentation(study: Study):
    spec = parse_spec(study.spec, source=f"study {study.name}")
    return spec, spec.presentation


def window_presets(default: Window) -> tuple[tuple[str, float, float], ...]:
    """The study's default window first, then the standard presets (no duplicates)."""
    out = [(default.name, default.width, default.level)]
    out += [(n, w, lv) for n, (w, lv) in WINDOW_PRESETS.items() if n != default.name]
    return tuple(out)


def current_case(session: Session, reader: User, study_id: int) -> CaseView | None:
    """The first unanswered case in the reader's order, or None when all are answered or the
    study is closed. Records the server-side first display time (committed here)."""
    study = _study_for_reader(session, reader, study_id)
    if study.status == StudyStatus.CLOSED:
        return None
    total = session.execute(
        select(func.count(Assignment.id)).where(
            Assignment.study_id == study_id, Assignment.reader_id == reader.id
        )
    ).scalar_one()
    assignment = session.scalar(
        select(Assignment)
        .where(
            Assignment.study_id == study_id,
            Assignment.reader_id == reader.id,
            Assignment.answered_at.is_(None),
        )
        .order_by(Assignment.position)
        .limit(1)
    )
    if assignment is None:
        return None
    if assignment.first_displayed_at is None:
        assignment.first_displayed_at = clock.now()
        session.commit()
    spec, pres = _presentation(study)
    return CaseView(
        study_id=study.id,
        study_name=study.name,
        design=study.design.value,
        code=assignment.case.code,
        position=assignment.position + 1,
        total=int(total),
        question=spec.question,
        choices=spec.choices,
        window_presets=window_presets(pres.window),
        default_window=(pres.window.name, pres.window.width, pres.window.level),
        planes=pres.planes,
        confidence_enabled=spec.confidence,
        displayed_at=clock.as_utc(assignment.first_displayed_at),
        idempotency_key=secrets.token_hex(16),
        min_seconds_on_case=spec.reading.min_seconds_on_case,
        idle_seconds=spec.reading.idle_seconds,
        lesion_voxel=lesion_voxel(assignment.case),
    )


def lesion_voxel(case: StudyCase) -> tuple[int, int, int] | None:
    """Voxel (i, j, k) of the blinded file at the centre of the lesion the reader judges.

    ``meta['lesion_voxel']`` when the export recorded it, else the bounding-box centre of the
    largest connected component of the blinded tumor mask (server-side file, never sent). Both
    arms get the same treatment, so the position says where to look and nothing about the arm.
    None when the mask is missing or empty.
    """
    recorded = (case.meta or {}).get("lesion_voxel")
    if recorded is not None:
        return tuple(int(v) for v in recorded)  # type: ignore[return-value]
    path = (case.meta or {}).get("mask_path")
    if not path or not Path(path).is_file():
        return None
    return _mask_lesion_voxel(str(path), Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _mask_lesion_voxel(path: str, _mtime_ns: int) -> tuple[int, int, int] | None:
    import nibabel as nib
    import numpy as np
    from scipy import ndimage

    # nib.load is typed as the base image class; masks are NIfTI-1 (blinding.encode_nifti)
    mask = np.asarray(cast("nib.Nifti1Image", nib.load(path)).dataobj) > 0
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    largest = 1 + int(np.argmax(ndimage.sum_labels(mask, labels, range(1, n + 1))))
    box = ndimage.find_objects((labels == largest).astype(np.uint8))[0]
    return tuple(int((b.start + b.stop - 1) // 2) for b in box)  # type: ignore[return-value]


def record_display(session: Session, reader: User, code: str) -> datetime:
    """Note (committed) that case ``code`` was just drawn on ``reader``'s screen; returns the
    server time. Call once per page that shows the case (a reload or a new login draws it
    again). :func:`submit_answer` measures the minimum time on case and, without a client
    report, the time on case from the latest display (time logged out does not count)."""
    a = _assignment(session, reader, code)
    now = clock.now()
    session.add(
        AnswerEvent(
            study_id=a.study_id,
            case_id=a.case_id,
            reader_id=reader.id,
            event=DISPLAYED,
            payload={},
            idempotency_key="-",
            created_at=now,
        )
    )
    session.commit()
    return now


def _last_display(session: Session, a: Assignment) -> datetime | None:
    return clock.as_utc(
        session.scalar(
            select(func.max(AnswerEvent.created_at)).where(
                AnswerEvent.reader_id == a.reader_id,
                AnswerEvent.case_id == a.case_id,
                AnswerEvent.event == DISPLAYED,
            )
        )
    )


def _assignment(session: Session, reader: User, code: str) -> Assignment:
    assignment = session.scalar(
        select(Assignment)
        .join(StudyCase, Assignment.case_id == StudyCase.id)
        .where(StudyCase.code == str(code), Assignment.reader_id == reader.id)
    )
    if assignment is None:  # same message for unknown codes: no existence oracle
        raise AccessDenied(NOT_ASSIGNED)
    return assignment


def case_volume_bytes(session: Session, reader: User, code: str) -> bytes:
    """The blinded ``.nii.gz`` of case ``code``, only if it is assigned to ``reader``
    (else :class:`AccessDenied`). The file's hash is checked against the database."""
    case = _assignment(session, reader, code).case
    payload = Path(case.blinded_path).read_bytes()
    if hashlib.sha256(payload).hexdigest() != case.blinded_sha256:
        raise StudyError(
            f"case {code}",
            "blinded file changed on disk since the study was created",
            "restore the study export folder",
        )
    return payload


def _validate(
    study: Study,
    value: str,
    confidence: int | None,
    window_width: float | None,
    window_level: float | None,
    key: str,
    code: str,
) -> None:
    where = f"case {code}"
    spec, _ = _presentation(study)
    allowed = [v for _, v in spec.choices]
    if value not in allowed:
        raise StudyError(
            where, f"answer must be one of {', '.join(allowed)}, got {value!r}", "pick one of those"
        )
    if confidence is not None:
        if not spec.confidence:
            raise StudyError(
                where, "this study does not ask for a confidence", "send confidence=None"
            )
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int)
            or not 1 <= confidence <= 5
        ):
            raise StudyError(
                where,
                f"confidence must be an integer 1-5, got {confidence!r}",
                "pick a whole number from 1 to 5",
            )
    for name, v in (("window width", window_width), ("window level", window_level)):
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v)):
            raise StudyError(
                where, f"{name} must be a finite number, got {v!r}", f"send a number or no {name}"
            )
    if window_width is not None and window_width <= 0:
        raise StudyError(
            where, f"window width must be > 0, got {window_width!r}", "send a positive width"
        )
    if not isinstance(key, str) or not 8 <= len(key) <= 64:
        raise StudyError(
            where,
            "idempotency key must be a string of 8-64 characters",
            "use CaseView.idempotency_key",
        )


def submit_answer(
    session: Session,
    reader: User,
    code: str,
    *,
    value: str,
    confidence: int | None = None,
    displayed_at: datetime | None = None,
    window_width: float | None = None,
    window_level: float | None = None,
    visible_seconds: float | None = None,
    idempotency_key: str,
) -> SubmitResult:
    """Record ``reader``'s answer to case ``code`` in ONE committed transaction.

    Outcomes: ``created`` (first answer: answer row + 'created' event + assignment answered);
    ``duplicate`` (this idempotency key was already recorded: nothing new but a log event);
    ``changed`` (a new key and the study allows changes: revision + 1, 'changed' event);
    ``rejected`` (the study is closed; the answer came sooner than the study's
    ``reading.min_seconds_on_case`` after the case was last drawn on the reader's screen
    (:func:`record_display`, else the first display), so a double click or double key press
    cannot answer the case drawn in between; or a new key when changes are not allowed).

    Seconds on case: ``visible_seconds`` is the time the browser had the case on screen
    (tab visible, reader not idle), reported with the vote; the server caps it at its own
    bound, submit time - first display. Without a report: submit time - latest display (time
    logged out, between two displays, does not count). ``displayed_at`` from the client is used
    only when the case was never displayed through :func:`current_case`. The event payload
    keeps the reported and the server's seconds and the minimum in force. Concurrent submits
    (two tabs, retries) are resolved by the unique constraints: the loser re-reads. Commits (an
    acknowledged answer is durable); raises :class:`AccessDenied` when the case is not assigned
    to ``reader``.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            result = _submit_once(
                session,
                reader,
                code,
                value,
                confidence,
                displayed_at,
                window_width,
                window_level,
                visible_seconds,
                idempotency_key,
            )
            session.commit()
            return result
        except IntegrityError:
            session.rollback()  # a concurrent submit won the race: re-read its row
        except OperationalError as exc:  # SQLite "database is locked" beyond the busy timeout
            session.rollback()
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            time.sleep(0.05 * 2**attempt)
    # database state, not a bad input: a plain one-line error (the app and CLI print it)
    raise TuringCTError(
        f"case {code}: the answer could not be recorded (database busy); submit "
        "again, nothing was lost"
    )


def _event(
    session: Session, a: Assignment, kind: Kind, key: str, answer: Answer | None, payload: dict
) -> None:
    session.add(
        AnswerEvent(
            answer_id=answer.id if answer else None,
            study_id=a.study_id,
            case_id=a.case_id,
            reader_id=a.reader_id,
            event=kind,
            payload=payload,
            idempotency_key=key,
            created_at=clock.now(),
        )
    )


def too_soon_message(seconds: float, least: float) -> str:
    return (
        f"The case was on screen for {seconds:.1f} s only; look at it for at least "
        f"{least:g} s before answering. Your answer was not recorded."
    )


def _submit_once(
    session: Session,
    reader: User,
    code: str,
    value: str,
    confidence: int | None,
    displayed_at: datetime | None,
    window_width: float | None,
    window_level: float | None,
    visible_seconds: float | None,
    key: str,
) -> SubmitResult:
    a = _assignment(session, reader, code)
    study = session.get_one(Study, a.study_id)
    _validate(study, value, confidence, window_width, window_level, key, code)
    if visible_seconds is not None and not (
        isinstance(visible_seconds, int | float)
        and not isinstance(visible_seconds, bool)
        and math.isfinite(visible_seconds)
        and visible_seconds >= 0
    ):
        raise StudyError(
            f"case {code}",
            f"visible seconds must be a finite number >= 0, got {visible_seconds!r}",
            "send the viewer's report or None",
        )
    spec, _ = _presentation(study)
    least = spec.reading.min_seconds_on_case
    question = DESIGN_QUESTION[study.design].value
    now = clock.now()
    first = clock.as_utc(a.first_displayed_at) or clock.as_utc(displayed_at) or now
    shown = _last_display(session, a) or first
    since_shown = max(0.0, (now - shown).total_seconds())
    bound = max(0.0, (now - first).total_seconds())
    seconds = since_shown if visible_seconds is None else min(float(visible_seconds), bound)
    payload = {
        "value": value,
        "confidence": confidence,
        "window_width": window_width,
        "window_level": window_level,
        "seconds_on_case": round(seconds, 3),
        "visible_seconds": visible_seconds,
        "seconds_since_display": round(since_shown, 3),
        "min_seconds_on_case": least,
    }
    if study.status == StudyStatus.CLOSED:
        _event(session, a, Kind.REJECTED, key, None, {**payload, "reason": "closed"})
        return SubmitResult(Kind.REJECTED, CLOSED)
    answer = session.scalar(
        select(Answer).where(
            Answer.reader_id == reader.id, Answer.case_id == a.case_id, Answer.question == question
        )
    )
    if answer is None:
        other = session.scalar(select(Answer).where(Answer.idempotency_key == key))
        if other is not None and (other.case_id, other.reader_id) != (a.case_id, reader.id):
            raise StudyError(
                f"case {code}",
                "idempotency key already used for another case",
                "use a fresh key per displayed case (CaseView.idempotency_key)",
            )
        answer = other  # not None: a concurrent submit of this very key committed meanwhile
    seen = answer is not None and (
        answer.idempotency_key == key
        or session.scalar(
            select(func.count(AnswerEvent.id)).where(
                AnswerEvent.idempotency_key == key,
                AnswerEvent.reader_id == reader.id,
                AnswerEvent.case_id == a.case_id,
                AnswerEvent.event.in_((Kind.CREATED, Kind.CHANGED)),
            )
        )
    )
    if seen:  # a retry of a recorded submission: never refused, never re-applied
        assert answer is not None  # seen requires an answer
        _event(session, a, Kind.DUPLICATE, key, answer, payload)
        return SubmitResult(Kind.DUPLICATE, "Answer already recorded.", answer.revision)
    if since_shown < least:
        _event(session, a, Kind.REJECTED, key, answer, {**payload, "reason": "too soon"})
        return SubmitResult(
            Kind.REJECTED, too_soon_message(since_shown, least), answer.revision if answer else None
        )
    if answer is None:
        answer = Answer(
            study_id=a.study_id,
            case_id=a.case_id,
            reader_id=reader.id,
            question=question,
            value=value,
            confidence=confidence,
            seconds_on_case=seconds,
            first_answer_seconds=seconds,
            window_width=window_width,
            window_level=window_level,
            displayed_at=first,
            submitted_at=now,
            revision=1,
            idempotency_key=key,
        )
        session.add(answer)
        session.flush()  # IntegrityError here when a concurrent submit inserted first
        _event(session, a, Kind.CREATED, key, answer, payload)
        a.answered_at = now
        return SubmitResult(Kind.CREATED, "Answer recorded.", 1)
    if not study.allow_changes:
        _event(session, a, Kind.REJECTED, key, answer, {**payload, "reason": "changes not allowed"})
        return SubmitResult(
            Kind.REJECTED,
            "You already answered this case; answers cannot be changed in this study.",
            answer.revision,
        )
    before = {"value": answer.value, "confidence": answer.confidence, "revision": answer.revision}
    answer.value, answer.confidence = value, confidence
    answer.window_width, answer.window_level = window_width, window_level
    answer.seconds_on_case, answer.submitted_at = seconds, now
    answer.revision += 1
    answer.idempotency_key = key
    session.flush()
    _event(session, a, Kind.CHANGED, key, answer, {**payload, "before": before})
    a.answered_at = now
    return SubmitResult(Kind.CHANGED, "Answer changed.", answer.revision)


def reader_feedback(session: Session, reader: User, study_id: int) -> list[dict]:
    """Educational studies only, after the reader finished: their answers with the truth.
    Otherwise :class:`AccessDenied` (readers never learn correctness mid-study)."""
    study = _study_for_reader(session, reader, study_id)
    if not study.educational:
        raise AccessDenied("This study does not show the correct answers.")
    rows = session.execute(
        select(Assignment, Answer)
        .join(
            Answer,
            (Answer.case_id == Assignment.case_id) & (Answer.reader_id == Assignment.reader_id),
            isouter=True,
        )
        .where(Assignment.study_id == study_id, Assignment.reader_id == reader.id)
        .order_by(Assignment.position)
    ).all()
    if any(ans is None for _, ans in rows):
        raise AccessDenied("Finish the study to see the correct answers.")
    truth = (lambda c: c.arm.value) if study.design == StudyDesign.TURING else (lambda c: c.organ)
    return [
        {
            "position": a.position + 1,
            "code": a.case.code,
            "your_answer": ans.value,
            "truth": truth(a.case),
            "correct": ans.value == truth(a.case),
        }
        for a, ans in rows
    ]

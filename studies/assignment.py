"""Per-reader case orders: seeded from (study seed, username), stable, different per reader.

The order is a pure function of the study seed, the username and the study's case list (by
case id, itself a seeded shuffle), so re-assigning a reader reproduces the same order and no
two readers share one by construction of the seed (only by chance for tiny studies).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Answer, Assignment, Study, StudyCase, User


def reader_seed(study_seed: int, username: str) -> list[int]:
    """Seed sequence for a reader: the study seed plus 64 bits of SHA-256(username) (stable
    across processes, unlike ``hash()``)."""
    digest = hashlib.sha256(username.encode("utf-8")).digest()
    return [int(study_seed), int.from_bytes(digest[:8], "little")]


def reader_order(n_cases: int, study_seed: int, username: str) -> list[int]:
    """Permutation of ``range(n_cases)``: position k shows case index ``order[k]``."""
    rng = np.random.default_rng(reader_seed(study_seed, username))
    return [int(i) for i in rng.permutation(n_cases)]


def assign(session: Session, study: Study, reader: User) -> list[Assignment]:
    """Create the reader's assignments (idempotent: an existing order is returned unchanged).

    Cases added to a study after a reader was assigned are appended in a seeded order. A
    reader removed from the study and assigned again gets the same order back, with the cases
    they had answered marked answered (from their kept answers).
    """
    cases: Sequence[StudyCase] = session.scalars(
        select(StudyCase).where(StudyCase.study_id == study.id).order_by(StudyCase.id)
    ).all()
    existing = session.scalars(
        select(Assignment)
        .where(Assignment.study_id == study.id, Assignment.reader_id == reader.id)
        .order_by(Assignment.position)
    ).all()
    have = {a.case_id for a in existing}
    missing = [c for c in cases if c.id not in have]
    if not missing:
        return list(existing)
    start = len(existing)
    order = reader_order(len(missing), study.seed + start, reader.username)
    answered = {
        a.case_id: a
        for a in session.scalars(
            select(Answer).where(Answer.study_id == study.id, Answer.reader_id == reader.id)
        )
    }
    new = []
    for k, i in enumerate(order):
        done = answered.get(missing[i].id)
        new.append(
            Assignment(
                study_id=study.id,
                reader_id=reader.id,
                case_id=missing[i].id,
                position=start + k,
                first_displayed_at=done.displayed_at if done else None,
                answered_at=done.submitted_at if done else None,
            )
        )
    session.add_all(new)
    session.flush()
    return [*existing, *new]

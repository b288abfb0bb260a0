"""Read a study's answers from the database as a votes table (the evaluation layer's input).

The votes table has the same columns as the votes CSV (``reader, case, organ, truth, answer,
method, confidence``) plus ``seconds`` (time on case); ``reader`` is the username and ``case``
the blinded case code. The session is passed in (no engine is created here).
"""

from __future__ import annotations

import pandas as pd

from core.vocabulary import QUESTIONS, Task
from evaluation.readers import validate_votes
from evaluation.tables import EvaluationInputError


def study_votes(session, study: str, task: str = "turing") -> pd.DataFrame:
    """Validated votes of study ``study`` (name or numeric id) for ``task`` turing / origin."""
    from sqlalchemy import select

    from db.models import Answer, Study, StudyCase, User

    query = select(Study).where(Study.name == study)
    if study.isdigit():
        query = select(Study).where((Study.name == study) | (Study.id == int(study)))
    found = session.scalars(query).first()
    if found is None:
        raise EvaluationInputError(
            "--study", f"study {study!r} does not exist", "list studies with `turingct study list`"
        )
    rows = session.execute(
        select(
            User.username,
            StudyCase.code,
            StudyCase.organ,
            StudyCase.arm,
            StudyCase.method,
            Answer.value,
            Answer.confidence,
            Answer.seconds_on_case,
            User.years_experience,
        )
        .join(Answer, Answer.case_id == StudyCase.id)
        .join(User, User.id == Answer.reader_id)
        .where(Answer.study_id == found.id, Answer.question == QUESTIONS[task])
        .order_by(User.username, StudyCase.code)
    ).all()
    if not rows:
        raise EvaluationInputError(
            "--study",
            f"study {found.name!r} has no {QUESTIONS[task]!r} answers yet",
            "wait for readers to answer, or check --task",
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "reader",
            "case",
            "organ",
            "truth",
            "method",
            "answer",
            "confidence",
            "seconds",
            "years_experience",
        ],
    )
    df["truth"] = [str(getattr(a, "value", a)) for a in df["truth"]]
    df["method"] = df["method"].fillna("")
    if task == Task.ORIGIN:
        df = df.drop(columns=["truth", "method"])
    for optional in ("confidence", "years_experience"):
        if df[optional].isna().all():
            df = df.drop(columns=optional)
    return validate_votes(df, None, task=task)

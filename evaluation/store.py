"""Stored evaluation results: one ``EvaluationResult`` row per computed table.

A stored result is the table itself (as JSON records, so a dashboard or report can redraw it
without recomputing), its conventions text, the parameters that produced it, the code version
and, when it belongs to a study, the study id. Rows are append-only: storing the same
``(kind, name, study)`` again adds a newer row, and readers ask for the latest one
(:func:`latest_results`), so the history of a number is kept.

Kinds used by the project (free text, max 32 characters): ``readers``, ``agreement``,
``origin``, ``fid``, ``frd``, ``seg``, ``radiomics``, ``segbench``.

The session is passed in (no engine is created here); the caller commits
(``db.session.session_scope``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from evaluation.tables import EvaluationInputError, format_conventions

KIND_MAX = 32
NAME_MAX = 200


def jsonable(value: Any) -> Any:
    """Plain JSON types; NaN / inf become None (JSON has no NaN), numpy scalars become Python."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def table_records(df: pd.DataFrame) -> dict[str, Any]:
    """``{"columns": [...], "records": [{col: value}, ...]}`` with NaN stored as null."""
    return {
        "columns": [str(c) for c in df.columns],
        "records": [jsonable(r) for r in df.to_dict(orient="records")],
    }


def records_table(payload: Mapping[str, Any]) -> pd.DataFrame:
    """Inverse of :func:`table_records` (null -> NaN in numeric columns), column order kept."""
    df = pd.DataFrame.from_records(payload.get("records", []), columns=payload.get("columns"))
    for col in df.columns:
        if df[col].dtype == object:
            converted = pd.to_numeric(df[col], errors="coerce")
            # a column is numeric when every non-null entry converted
            if converted.notna().sum() == df[col].notna().sum() and df[col].notna().any():
                df[col] = converted
    return df


def resolve_study_id(session, study: int | str | None) -> int | None:
    """Study id from a name or id (None passes through); unknown study -> input error."""
    if study is None:
        return None
    from studies.admin import find_study

    found = find_study(session, study)
    if found is None:
        raise EvaluationInputError(  # --study or --for-study: name neither option
            "study", f"study {study!r} does not exist", "list studies with `turingct study list`"
        )
    return found.id


def store_result(
    session,
    kind: str,
    name: str,
    *,
    tables: Mapping[str, pd.DataFrame],
    conventions: Mapping[str, object] | None = None,
    params: Mapping[str, object] | None = None,
    summary: Mapping[str, object] | None = None,
    study: int | str | None = None,
):
    """Add an ``EvaluationResult`` row and flush; returns it.

    ``tables`` maps table name -> DataFrame (each stored as records); ``conventions`` is stored
    both as a mapping and as the rendered text written next to CSVs; ``summary`` holds headline
    numbers (e.g. mean DSC). ``study`` is a study name or id (or None).
    """
    from core.settings import code_version
    from db.models import EvaluationResult

    if not kind or len(kind) > KIND_MAX:
        raise ValueError(f"kind must be 1-{KIND_MAX} characters, got {kind!r}")
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"name must be 1-{NAME_MAX} characters, got {name!r}")
    conv = dict(conventions or {})
    result = {
        "tables": {str(k): table_records(v) for k, v in tables.items()},
        "conventions": jsonable(conv),
        "conventions_text": format_conventions(conv, name),
        "summary": jsonable(dict(summary or {})),
    }
    # round-trip through json so that anything not serializable fails here, not at commit
    json.dumps(result, allow_nan=False)
    row = EvaluationResult(
        study_id=resolve_study_id(session, study),
        kind=kind,
        name=name,
        params=jsonable(dict(params or {})),
        result=result,
        code_version=code_version(),
    )
    session.add(row)
    session.flush()
    return row


def latest_results(
    session, *, kind: str | None = None, study: int | str | None = None, name: str | None = None
) -> list:
    """The newest row per ``(kind, name)`` matching the filters, ordered by kind then name.

    ``study`` restricts to one study's results (by name or id); without it, every result is
    considered. Ties on ``created_at`` are broken by the larger id (inserted later).
    """
    from sqlalchemy import select

    from db.models import EvaluationResult

    query = select(EvaluationResult)
    if kind is not None:
        query = query.where(EvaluationResult.kind == kind)
    if name is not None:
        query = query.where(EvaluationResult.name == name)
    if study is not None:
        query = query.where(EvaluationResult.study_id == resolve_study_id(session, study))
    latest: dict[tuple[str, str], Any] = {}
    for row in session.scalars(query.order_by(EvaluationResult.created_at, EvaluationResult.id)):
        latest[(row.kind, row.name)] = row  # later rows overwrite earlier ones
    return [latest[k] for k in sorted(latest)]


def result_tables(row) -> dict[str, pd.DataFrame]:
    """The stored tables of a result row as DataFrames."""
    return {
        name: records_table(payload)
        for name, payload in (row.result or {}).get("tables", {}).items()
    }

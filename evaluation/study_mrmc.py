"""MRMC analysis of a stored study or a ratings CSV: load, analyse, write ``mrmc.json`` + tables.

Shared by ``turingct evaluate mrmc``, the study report and the dashboard (the formulas live in
:mod:`evaluation.mrmc`). The session is passed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.vocabulary import Task
from evaluation import mrmc
from evaluation.tables import EvaluationInputError, write_table

RATING_SCALE = (
    "rating = realness: answer real with confidence c -> +c, synthetic -> -c, "
    "unsure -> 0 (c = 1 without confidence); positive (truth 1) = real tumor; "
    "modality = synthesis method, the real cases shared by every method"
)


def study_ratings(session, study: str, organ: str | None = None) -> pd.DataFrame:
    """The long ratings table of a study's Turing answers (see :func:`mrmc.ratings_from_votes`),
    optionally for one organ."""
    from evaluation.study_data import study_votes

    votes = study_votes(session, study, task=Task.TURING)
    if organ is not None:
        votes = votes[votes["organ"] == organ]
        if votes.empty:
            raise EvaluationInputError(
                "--organ",
                f"study {study!r} has no answers on {organ} cases",
                "pick an organ of the study or drop --organ",
            )
    return mrmc.ratings_from_votes(votes)


def analyse(
    ratings: pd.DataFrame,
    source: str | Path | None,
    *,
    covariance: str = "jackknife",
    crossed: bool = True,
) -> dict:
    """Validate ``ratings`` and run :func:`mrmc.or_analysis`; ``source`` names the input in
    errors (a CSV path) or is None for a study."""
    path = source if isinstance(source, Path) else None
    data = mrmc.ratings_data(ratings, path, crossed=crossed)
    return mrmc.or_analysis(data, covariance=covariance)


def conventions(result: dict, source: str, *, from_study: bool) -> dict[str, object]:
    conv: dict[str, object] = {
        "source": source,
        **mrmc.CONVENTIONS,
        "covariance_used": result["covariance"]["method"],
    }
    if from_study:
        conv["ratings"] = RATING_SCALE
    return conv


def write_outputs(
    result: dict, out_json: str | Path, conv: dict[str, object]
) -> tuple[Path, Path, Path]:
    """Write ``mrmc.json`` (NaN -> null), ``<stem>.csv`` (+ conventions) and ``<stem>.html``."""
    from evaluation.report import build_report
    from evaluation.store import jsonable
    from synth_backend.io import atomic_write

    out = Path(out_json)
    text = json.dumps(jsonable(result), indent=2, allow_nan=False)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    table = mrmc.result_table(result)
    csv, _ = write_table(table, out.with_suffix(".csv"), conv, "MRMC (Obuchowski-Rockette)")
    html = build_report(
        {"mrmc": table},
        [],
        {"source": conv["source"]},
        out.with_suffix(".html"),
        title="MRMC ROC analysis",
        conventions={"mrmc": conv},
    )
    return out, csv, html


def votes_mrmc(votes: pd.DataFrame, covariance: str = "jackknife") -> tuple[dict, pd.DataFrame]:
    """MRMC result and its long table from a validated Turing votes table (a study's answers).

    Raises :class:`EvaluationInputError` when the answers do not make an MRMC design yet (a
    reader has not answered every case of a method, or a class has fewer than 2 cases).
    """
    result = analyse(mrmc.ratings_from_votes(votes), None, covariance=covariance, crossed=False)
    return result, mrmc.result_table(result)


def add_report_parts(parts, votes: pd.DataFrame, source: str) -> None:
    """Add the MRMC table, its conventions and figure to a :class:`study_report.ReportParts`;
    a study whose answers are not an MRMC design yet gets a note saying why."""
    from evaluation import figures

    try:
        result, table = votes_mrmc(votes)
    except EvaluationInputError as exc:
        parts.notes.append(f"MRMC analysis: {exc.problem}")
        return
    parts.add("mrmc", table, conventions(result, source, from_study=True))
    parts.figures.append(figures.mrmc_figure(result))

"""A study's reader statistics, assembled in one place for the CLI, the report and the dashboard.

The design decides the analysis (a Turing study: the reader table under the chosen unsure
convention; an organ-origin study: the organ-origin reader table), and the conventions travel
with the table so every consumer describes the numbers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.vocabulary import StudyDesign, Task


@dataclass(frozen=True)
class ReaderStatistics:
    """The votes, the design's reader table, its name in reports and its conventions."""

    task: str
    votes: pd.DataFrame
    table: pd.DataFrame
    name: str
    conventions: dict[str, object]


def task_for_design(design: str) -> str:
    """``turing`` for a Turing study, ``origin`` for an organ-origin study."""
    return Task.ORIGIN.value if design == StudyDesign.ORGAN_ORIGIN else Task.TURING.value


def reader_statistics(
    votes: pd.DataFrame, task: str = Task.TURING, unsure: str = "exclude"
) -> ReaderStatistics:
    """The reader table of ``task`` over a validated votes table (pure)."""
    from evaluation import readers

    if task == Task.ORIGIN:
        return ReaderStatistics(
            Task.ORIGIN.value,
            votes,
            readers.organ_origin_table(votes),
            "organ_origin_readers",
            dict(readers.ORIGIN_CONVENTIONS),
        )
    return ReaderStatistics(
        Task.TURING.value,
        votes,
        readers.reader_table(votes, unsure=unsure),
        "reader_table",
        dict(readers.conventions(unsure)),
    )


def study_reader_statistics(
    session, study: str, design: str, unsure: str = "exclude"
) -> ReaderStatistics:
    """:func:`reader_statistics` of study ``study`` (name or id) read from the database.

    Raises :class:`~evaluation.tables.EvaluationInputError` when it has no answers yet.
    """
    from evaluation.study_data import study_votes

    task = task_for_design(design)
    return reader_statistics(study_votes(session, study, task=task), task, unsure)

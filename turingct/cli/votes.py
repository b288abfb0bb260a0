"""The votes an evaluation command reads: ``--votes CSV`` or ``--study NAME`` (shared by
`evaluate readers|auc|origin|methods`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.vocabulary import Task
from turingct.cli import add_db_option


def add_votes_source(p: argparse.ArgumentParser) -> None:
    """--votes CSV | --study NAME (and --db): where an evaluation reads its votes."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--votes", type=Path, help="votes CSV: reader,case,organ,truth,answer[,method,confidence]"
    )
    src.add_argument("--study", help="study name or id in the database")
    add_db_option(p)


def load_votes(args, task: str = Task.TURING):
    """The votes table of ``--votes`` or of ``--study`` in the database."""
    from evaluation.readers import read_votes

    if args.votes is not None:
        return read_votes(args.votes, task=task)
    from db.session import open_engine, session_scope
    from evaluation.study_data import study_votes

    with session_scope(open_engine(args.db)) as session:
        return study_votes(session, args.study, task=task)


def votes_label(args) -> str:
    """How the tables' conventions name the votes' source."""
    return str(args.votes) if args.votes is not None else f"study {args.study}"

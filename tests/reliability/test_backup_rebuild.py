"""`turingct db backup` and the answers CSV are each enough to rebuild a study's results.

A small study is answered by two readers; the reader table computed from the live database
must equal the one computed from the backup copy and the one computed from the exported
answers CSV (columns renamed to the votes format). The backup is taken while a reader session
holds the database open, as during a running study.
"""

from __future__ import annotations

import csv
import shutil

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from db.models import User
from db.session import session_scope
from studies import reading
from studies.accounts import OPERATOR
from tests.studies._catalog import build_catalog, spec_dict
from turingct.cli import main


@pytest.fixture
def answered_study(engine, db_url, tmp_path):
    from studies.admin import create_study

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "cat")
        study_id = create_study(
            s, spec_dict(), actor=OPERATOR, export_root=tmp_path / "exp", progress=False
        ).id
    for name, answers in (
        ("ann", ["real", "synthetic", "real", "unsure", "synthetic", "real"]),
        ("bob", ["synthetic"] * 3 + ["real"] * 3),
    ):
        for value in answers:
            with session_scope(engine) as s:
                user = s.scalar(select(User).where(User.username == name))
                view = reading.current_case(s, user, study_id)
                reading.submit_answer(
                    s, user, view.code, value=value, idempotency_key=view.idempotency_key
                )
    return db_url


def _table(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_backup_and_csv_rebuild_the_reader_table(answered_study, engine, tmp_path, capsys):
    url = answered_study
    live = tmp_path / "live.csv"
    assert main(["evaluate", "readers", "--study", "t1", "--db", url, "--out", str(live)]) == 0
    table = _table(live)
    assert {r["reader"] for r in table} >= {"ann", "bob"}

    backup = (
        tmp_path / "backup.db"
        if make_url(url).get_backend_name() == "sqlite"
        else tmp_path / "backup.dump"
    )
    if backup.suffix == ".dump" and not shutil.which("pg_dump"):
        pytest.skip("pg_dump not on PATH (PostgreSQL client); the SQLite pass covers backup")
    with session_scope(engine) as s:  # a reader session is open while the backup runs
        s.scalar(select(User).where(User.username == "ann"))
        assert main(["db", "backup", "--db", url, "--out", str(backup)]) == 0
    assert backup.is_file() and not backup.with_suffix(backup.suffix + ".part").exists()
    if backup.suffix == ".db":
        from_backup = tmp_path / "from-backup.csv"
        assert (
            main(
                [
                    "evaluate",
                    "readers",
                    "--study",
                    "t1",
                    "--db",
                    str(backup),
                    "--out",
                    str(from_backup),
                ]
            )
            == 0
        )
        assert _table(from_backup) == table

    answers = tmp_path / "answers.csv"
    assert main(["study", "results", "t1", "--db", url, "--out", str(answers)]) == 0
    rows = _table(answers)
    assert len(rows) == 12
    votes = tmp_path / "votes.csv"
    with open(votes, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["reader", "case", "organ", "truth", "answer", "method"])
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    "reader": r["reader"],
                    "case": r["code"],
                    "organ": r["organ"],
                    "truth": r["arm"],
                    "answer": r["answer"],
                    "method": r["method"],
                }
            )
    from_csv = tmp_path / "from-csv.csv"
    assert main(["evaluate", "readers", "--votes", str(votes), "--out", str(from_csv)]) == 0
    assert _table(from_csv) == table

"""Every malformed input gets one line naming the input, the problem and the fix; the database
is left exactly as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import Dataset, Volume, VolumeOrgan
from db.session import session_scope
from tests.corpus import CORPUS
from turingct.cli import main


def _counts(engine):
    with session_scope(engine) as s:
        return tuple(s.scalar(select(func.count(m.id))) for m in (Dataset, Volume, VolumeOrgan))


def test_corpus_has_at_least_twenty_kinds():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_input_is_refused_with_one_line(name, tmp_path, db_url, engine, capsys):
    case_dir = tmp_path / "input"
    case_dir.mkdir()
    args, fragment = CORPUS[name](case_dir)
    before = _counts(engine)
    rc = main(["data", "import", *args, "--db", db_url])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    message = err[-1]
    assert message.startswith("error: ") and fragment in message
    assert str(case_dir) in message or "--organ" in message  # names the input
    assert ";" in message  # ... and says what to do
    assert _counts(engine) == before

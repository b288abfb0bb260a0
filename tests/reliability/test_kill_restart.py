"""Kill -9 in the middle of a study: every acknowledged answer survives, readers resume.

A reader runs as its own process (``reader_script``: login, then the reader page's service
calls, printing each acknowledged answer). It is SIGKILLed at random moments (possibly inside a
transaction), restarted, killed again, then allowed to finish. The database must hold every
answer the reader was told about, no case twice, and ``current_case`` must resume at the first
unanswered position each time. The server-level variant does the same to ``turingct serve``.
"""

from __future__ import annotations

import random
import sys
import time
import urllib.request

import pytest
from sqlalchemy import func, select

from benchmarks.answers_load import PASSWORD, setup_study
from db.models import Answer, Assignment, StudyCase, User
from db.session import session_scope
from studies.reading import current_case
from tests.reliability._procs import LineProcess, free_port, python_module

CASES = 24


def _acks(lines: list[str]) -> list[tuple[int, str, str, str]]:
    out = []
    for line in lines:
        if line.startswith("ACK "):
            _, pos, code, value, status = line.split()
            out.append((int(pos), code, value, status))
    return out


def _answers(engine, study_id: int) -> dict[str, str]:
    with session_scope(engine) as s:
        return dict(
            s.execute(
                select(StudyCase.code, Answer.value)
                .join(StudyCase, Answer.case_id == StudyCase.id)
                .where(Answer.study_id == study_id)
            ).all()
        )


def _reader(db_url: str, study_id: int, name: str, seed: int) -> LineProcess:
    return LineProcess(
        python_module(
            "tests.reliability.reader_script", db_url, str(study_id), name, PASSWORD, str(seed)
        )
    )


def test_reader_process_killed_mid_study_loses_nothing(engine, db_url, tmp_path):
    study_id, (name,) = setup_study(db_url, tmp_path, readers=1, cases=CASES, seed=2)
    rng = random.Random(7)
    acked: list[tuple[int, str, str, str]] = []
    for round_ in range(3):
        proc = _reader(db_url, study_id, name, seed=round_)
        proc.wait_for(lambda ln: ln == "READY", timeout=60)
        for _ in range(rng.randint(2, 4)):
            proc.wait_for(lambda ln: ln.startswith("ACK "), timeout=30)
        time.sleep(rng.uniform(0.0, 0.02))  # land the kill anywhere, even mid-transaction
        new = _acks(proc.kill())
        assert new and all(status == "created" for *_, status in new)
        acked += new
        stored = _answers(engine, study_id)
        # the reader was told about every stored answer except at most the one in flight
        assert {code: v for _, code, v, _ in acked}.items() <= stored.items()
        assert len(stored) - len(acked) in (0, 1)
        with session_scope(engine) as s:
            view = current_case(s, s.scalar(select(User).where(User.username == name)), study_id)
        assert view.position == len(stored) + 1  # resumes at the first unanswered case
    proc = _reader(db_url, study_id, name, seed=99)
    proc.wait_for(lambda ln: ln == "DONE", timeout=90)
    acked += _acks(proc.seen)
    stored = _answers(engine, study_id)
    assert len(stored) == CASES
    assert {code: v for _, code, v, _ in acked}.items() <= stored.items()
    positions = [p for p, *_ in acked]
    assert positions == sorted(set(positions))  # never shown an answered case again
    with session_scope(engine) as s:
        answered = s.scalar(
            select(func.count(Assignment.id)).where(
                Assignment.study_id == study_id, Assignment.answered_at.is_not(None)
            )
        )
        assert answered == CASES
        assert s.scalar(select(func.count(Answer.id))) == CASES  # no duplicates


def _health(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/_stcore/health", timeout=2
            ) as resp:
                if resp.status == 200 and resp.read().strip() == b"ok":
                    return True
        except OSError:
            time.sleep(0.3)
    return False


@pytest.mark.slow
def test_server_killed_and_restarted_keeps_answers(engine, db_url, tmp_path):
    pytest.importorskip("streamlit")
    study_id, (name,) = setup_study(db_url, tmp_path, readers=1, cases=CASES, seed=3)
    port = free_port()
    serve = [
        "-c",
        "from turingct.cli import main; raise SystemExit(main())",
        "serve",
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        "--db",
        db_url,
    ]
    server = LineProcess([sys.executable, *serve])
    if not _health(port, timeout=40):
        server.kill()
        pytest.skip(
            "turingct serve did not become healthy within 40 s: " + " | ".join(server.seen[-5:])
        )
    # a reader answers while the server runs against the same database; both get killed
    reader = _reader(db_url, study_id, name, seed=5)
    reader.wait_for(lambda ln: ln == "READY", timeout=60)
    for _ in range(3):
        reader.wait_for(lambda ln: ln.startswith("ACK "), timeout=30)
    server.kill()
    acked = _acks(reader.kill())
    before = _answers(engine, study_id)
    assert {code: v for _, code, v, _ in acked}.items() <= before.items()
    restarted = LineProcess([sys.executable, *serve])  # same port: nothing stale
    try:
        assert _health(port, timeout=40), restarted.seen[-5:]
        assert _answers(engine, study_id) == before
        with session_scope(engine) as s:
            view = current_case(s, s.scalar(select(User).where(User.username == name)), study_id)
        assert view.position == len(before) + 1
    finally:
        restarted.kill()

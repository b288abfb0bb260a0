"""Answers under load (small): 8 concurrent readers, zero lost, zero duplicated.

Runs the benchmark's own core (``benchmarks/answers_load.py``) for a few seconds against the
``db_url`` fixture (SQLite, or PostgreSQL in the PG pass), and checks that its verifier really
notices a lost, an unacknowledged and a changed answer.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from benchmarks.answers_load import LoadConfig, ReaderLog, run_load, setup_study, verify
from db.models import AnswerEvent, StudyCase
from db.session import session_scope


def test_eight_readers_lose_and_duplicate_nothing(db_url, tmp_path):
    config = LoadConfig(
        db_url=db_url,
        readers=8,
        duration_s=4.0,
        mode="threads",
        cases=60,
        think_s=(0.01, 0.15),
        p_double=0.3,
        p_retry=0.3,
        p_other_tab=0.2,
        seed=1,
    )
    report = run_load(config, work_dir=tmp_path)
    assert report.anomalies == []
    assert (report.lost, report.duplicated, report.unacknowledged, report.wrong_value) == (
        0,
        0,
        0,
        0,
    )
    assert (report.bad_events, report.bad_progress, report.bad_resume) == (0, 0, 0)
    assert report.ok
    # every reader answered, and the double clicks / retries / second tabs really happened
    assert report.answers >= 8 * 5
    assert report.statuses["created"] == report.answers
    assert report.statuses["duplicate"] > 0 and report.statuses["rejected"] > 0
    assert report.submits == sum(report.statuses.values()) + report.retried_errors


def test_verifier_detects_lost_unacknowledged_and_changed_answers(engine, db_url, tmp_path):
    from db.models import User
    from studies.reading import current_case, submit_answer

    study_id, names = setup_study(db_url, tmp_path, readers=2, cases=4, seed=0)
    logs = [ReaderLog(n) for n in names]
    for log in logs:
        for _ in range(2):
            with session_scope(engine) as s:
                user = s.scalar(select(User).where(User.username == log.username))
                view = current_case(s, user, study_id)
                submit_answer(
                    s, user, view.code, value="real", idempotency_key=view.idempotency_key
                )
                log.acked[view.code] = "real"
    assert verify(engine, study_id, logs) == dict.fromkeys(
        (
            "lost",
            "unacknowledged",
            "duplicated",
            "wrong_value",
            "bad_events",
            "bad_progress",
            "bad_resume",
        ),
        0,
    )
    first = next(iter(logs[0].acked))
    logs[0].acked[first] = "synthetic"  # db holds another value
    logs[1].acked.pop(next(iter(logs[1].acked)))  # a row nobody was told about
    logs[1].acked["no-such-case"] = "real"  # acknowledged, never stored
    with session_scope(engine) as s:  # an answer whose event vanished
        case_id = s.scalar(select(StudyCase.id).where(StudyCase.code == first))
        s.execute(delete(AnswerEvent).where(AnswerEvent.case_id == case_id))
    got = verify(engine, study_id, logs)
    assert (got["wrong_value"], got["unacknowledged"], got["lost"], got["bad_events"]) == (
        1,
        1,
        1,
        1,
    )

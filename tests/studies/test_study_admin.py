"""Researcher services used by the app: reopen a study, remove a reader, import a dataset."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Assignment, StudyStatus, User, Volume
from db.session import session_scope
from studies import admin, reading
from studies.accounts import OPERATOR
from studies.errors import StudyError


def _user(s, name):
    return s.scalar(select(User).where(User.username == name))


def test_close_then_reopen_lets_readers_answer_again(study):
    engine, sid = study
    with session_scope(engine) as s:
        admin.close_study(s, OPERATOR, sid)
    with session_scope(engine) as s:
        assert reading.reader_studies(s, _user(s, "ann"))[0].status == "closed"
        st = admin.reopen_study(s, OPERATOR, sid)
        assert st.status == StudyStatus.OPEN and st.closed_at is None
    with session_scope(engine) as s:
        view = reading.current_case(s, _user(s, "ann"), sid)
        out = reading.submit_answer(
            s, _user(s, "ann"), view.code, value="real", idempotency_key=view.idempotency_key
        )
        assert out.status == "created"


def test_remove_reader_keeps_answers_and_readding_restores(study):
    engine, sid = study
    with session_scope(engine) as s:
        view = reading.current_case(s, _user(s, "ann"), sid)
        reading.submit_answer(
            s, _user(s, "ann"), view.code, value="synthetic", idempotency_key=view.idempotency_key
        )
        first_code = view.code
    with session_scope(engine) as s:
        done = admin.remove_reader(s, OPERATOR, sid, "ann")
        assert (done.withdrawn, done.answers_kept) == (6, 1)
    with session_scope(engine) as s:
        assert reading.reader_studies(s, _user(s, "ann")) == []  # no longer her study
        assert [p.username for p in admin.progress(s, OPERATOR, sid)] == ["bob"]
        assert [r["reader"] for r in admin.results_rows(s, OPERATOR, sid)] == ["ann"]
        with pytest.raises(StudyError, match=r"'ann' is not one of its readers \(bob\)"):
            admin.remove_reader(s, OPERATOR, sid, "ann")
        with pytest.raises(StudyError, match="not one of its readers"):
            admin.remove_reader(s, OPERATOR, sid, "nobody")
    with session_scope(engine) as s:  # assigned again: same order, the answer still counts
        assert admin.assign_reader(s, OPERATOR, sid, _user(s, "ann")) == 6
    with session_scope(engine) as s:
        ann = _user(s, "ann")
        assert reading.reader_studies(s, ann)[0].answered == 1
        assert reading.current_case(s, ann, sid).code != first_code
        assert s.scalar(
            select(Assignment).where(Assignment.reader_id == ann.id, Assignment.position == 0)
        ).answered_at


def test_import_dataset_service_registers_like_the_cli(engine, tmp_path):
    from tests.studies._catalog import write_manifest

    manifest = write_manifest(tmp_path / "m", n=2)
    with session_scope(engine) as s:
        report = admin.import_dataset(s, OPERATOR, "manifest", manifest, name="tiny")
        assert report.dataset == "tiny" and len(report.added) == 2
    with session_scope(engine) as s:
        assert sorted(v.case_id for v in s.scalars(select(Volume))) == ["case0", "case1"]
        with pytest.raises(Exception, match="does not exist"):
            admin.import_dataset(s, OPERATOR, "msd", tmp_path / "missing")

"""Access control inside the service functions: readers see only their own assignments."""

from __future__ import annotations

import gzip

import pytest
from sqlalchemy import select

from db.models import User
from db.session import session_scope
from studies import admin, reading
from studies.accounts import create_user
from studies.errors import AccessDenied
from tests.studies._catalog import spec_dict


def _user(s, name):
    return s.scalar(select(User).where(User.username == name))


@pytest.fixture
def with_outsider(study):
    engine, sid = study
    with session_scope(engine) as s:
        create_user(s, "eve", "eve password 1")  # a reader with no assignment
        create_user(s, "rita", "rita password", role="researcher")
    return engine, sid


def test_reader_gets_only_assigned_volumes(with_outsider):
    engine, sid = with_outsider
    with session_scope(engine) as s:
        view = reading.current_case(s, _user(s, "ann"), sid)
        blob = reading.case_volume_bytes(s, _user(s, "ann"), view.code)
        assert gzip.decompress(blob)[344:348] == b"n+1\0"  # a NIfTI-1 single file
        with pytest.raises(AccessDenied) as denied:
            reading.case_volume_bytes(s, _user(s, "eve"), view.code)
        with pytest.raises(AccessDenied) as unknown:
            reading.case_volume_bytes(s, _user(s, "eve"), "0123456789abcdef")
        assert str(denied.value) == str(unknown.value)  # no oracle for valid codes
        with pytest.raises(AccessDenied):
            reading.current_case(s, _user(s, "eve"), sid)
        with pytest.raises(AccessDenied):
            reading.submit_answer(
                s, _user(s, "eve"), view.code, value="real", idempotency_key="k" * 16
            )
        assert reading.reader_studies(s, _user(s, "eve")) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s, u, sid: admin.key_rows(s, u, sid),
        lambda s, u, sid: admin.results_rows(s, u, sid),
        lambda s, u, sid: admin.progress(s, u, sid),
        lambda s, u, sid: admin.list_studies(s, u),
        lambda s, u, sid: admin.show_study(s, u, sid),
        lambda s, u, sid: admin.close_study(s, u, sid),
        lambda s, u, sid: admin.assign_reader(s, u, sid, u),
        lambda s, u, sid: admin.create_study(s, spec_dict(name="x"), actor=u),
        lambda s, u, sid: admin.reopen_study(s, u, sid),
        lambda s, u, sid: admin.remove_reader(s, u, sid, "bob"),
        lambda s, u, sid: admin.import_dataset(s, u, "atlas", "/nonexistent"),
    ],
)
def test_reader_cannot_call_researcher_functions(with_outsider, call):
    engine, sid = with_outsider
    with session_scope(engine) as s, pytest.raises(AccessDenied, match="needs role"):
        call(s, _user(s, "ann"), sid)


def test_reader_never_sees_other_readers_or_truth(with_outsider):
    engine, sid = with_outsider
    with session_scope(engine) as s:
        view = reading.current_case(s, _user(s, "bob"), sid)
        reading.submit_answer(
            s, _user(s, "bob"), view.code, value="synthetic", idempotency_key=view.idempotency_key
        )
    with session_scope(engine) as s:
        ann = reading.reader_studies(s, _user(s, "ann"))[0]
        assert ann.answered == 0  # bob's answer does not show up for ann
        view = reading.current_case(s, _user(s, "ann"), sid)
        shown = repr(view).lower()
        for leak in ("real'", "synthetic'", "phantom", "arm", "source", "volume"):
            assert leak not in shown.replace("'real', 'real'", "").replace(
                "'synthetic', 'synthetic'", ""
            )
        with pytest.raises(AccessDenied, match="does not show the correct answers"):
            reading.reader_feedback(s, _user(s, "ann"), sid)


def test_researcher_can_read_key_and_results(with_outsider):
    engine, sid = with_outsider
    with session_scope(engine) as s:
        rita = _user(s, "rita")
        assert len(admin.key_rows(s, rita, sid)) == 6
        assert admin.results_rows(s, rita, sid) == []
        assert [p.username for p in admin.progress(s, rita, sid)] == ["ann", "bob"]

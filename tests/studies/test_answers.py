"""Answers: one transaction, idempotent per displayed case, changes, timing, resume, races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from db.models import Answer, AnswerEvent, Assignment, Study, StudyStatus, User
from db.session import session_scope
from studies import clock, reading
from studies.errors import StudyError


def _user(s, name):
    return s.scalar(select(User).where(User.username == name))


def _show(engine, name, study_id):
    with session_scope(engine) as s:
        return reading.current_case(s, _user(s, name), study_id)


def _submit(engine, name, view, value="real", key=None, **kw):
    with session_scope(engine) as s:
        return reading.submit_answer(s, _user(s, name), view.code, value=value,
                                     idempotency_key=key or view.idempotency_key, **kw)


def _count(engine, model, **where):
    with session_scope(engine) as s:
        q = select(func.count(model.id))
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


def test_case_view_and_seconds_from_server_display(study, monkeypatch):
    engine, sid = study
    t0 = clock.now()
    monkeypatch.setattr(clock, "now", lambda: t0)
    view = _show(engine, "ann", sid)
    assert (view.position, view.total) == (1, 6)
    assert [v for _, v in view.choices] == ["real", "synthetic", "unsure"]
    assert view.default_window == ("liver", 150.0, 90.0)
    assert view.window_presets[1] == ("abdomen", 400.0, 40.0)
    monkeypatch.setattr(clock, "now", lambda: t0 + timedelta(seconds=5))
    assert _show(engine, "ann", sid).displayed_at == t0  # first display is kept
    monkeypatch.setattr(clock, "now", lambda: t0 + timedelta(seconds=12.5))
    # a client-side displayed_at cannot shorten or stretch the measured time
    res = _submit(engine, "ann", view, window_width=150, window_level=90,
                  displayed_at=t0 + timedelta(seconds=10))
    assert res.status == "created" and res.accepted
    with session_scope(engine) as s:
        ans = s.scalar(select(Answer))
        assert ans.seconds_on_case == pytest.approx(12.5)
        assert (ans.window_width, ans.window_level, ans.question) == (150.0, 90.0, "truth")
    nxt = _show(engine, "ann", sid)
    assert nxt.position == 2 and nxt.code != view.code


def test_double_submit_is_one_answer(study):
    engine, sid = study
    view = _show(engine, "ann", sid)
    statuses = [_submit(engine, "ann", view).status for _ in range(3)]
    assert statuses == ["created", "duplicate", "duplicate"]
    assert _count(engine, Answer) == 1
    assert _count(engine, AnswerEvent, event="created") == 1
    assert _count(engine, AnswerEvent, event="duplicate") == 2


def test_second_tab_is_rejected_when_changes_not_allowed(study):
    engine, sid = study
    view = _show(engine, "ann", sid)
    assert _submit(engine, "ann", view, "real").status == "created"
    res = _submit(engine, "ann", view, "synthetic", key="other-tab-key-1")
    assert res.status == "rejected" and "cannot be changed" in res.message
    with session_scope(engine) as s:
        assert s.scalar(select(Answer.value)) == "real"


def test_change_allowed(study):
    engine, sid = study
    with session_scope(engine) as s:
        s.get(Study, sid).allow_changes = True
    view = _show(engine, "ann", sid)
    _submit(engine, "ann", view, "real")
    res = _submit(engine, "ann", view, "synthetic", key="second-key-123")
    assert (res.status, res.revision) == ("changed", 2)
    # a late retry of the first submission must not flip the answer back
    assert _submit(engine, "ann", view, "real").status == "duplicate"
    with session_scope(engine) as s:
        ans = s.scalar(select(Answer))
        assert (ans.value, ans.revision) == ("synthetic", 2)
        # the time to the first decision is kept; seconds_on_case runs to the latest submit
        assert 0 <= ans.first_answer_seconds <= ans.seconds_on_case
        ev = s.scalar(select(AnswerEvent).where(AnswerEvent.event == "changed"))
        assert ev.payload["before"]["value"] == "real" and ev.payload["value"] == "synthetic"


def test_closed_study_and_invalid_values(study):
    engine, sid = study
    view = _show(engine, "ann", sid)
    with pytest.raises(StudyError, match="answer must be one of real, synthetic, unsure"):
        _submit(engine, "ann", view, "liver")
    with pytest.raises(StudyError, match="does not ask for a confidence"):
        _submit(engine, "ann", view, confidence=3)
    with pytest.raises(StudyError, match="window width must be > 0"):
        _submit(engine, "ann", view, window_width=0)
    with session_scope(engine) as s:
        s.get(Study, sid).status = StudyStatus.CLOSED
    res = _submit(engine, "ann", view)
    assert res.status == "rejected" and "closed" in res.message
    assert _count(engine, Answer) == 0
    assert _show(engine, "ann", sid) is None


def test_resume_at_first_unanswered(study):
    engine, sid = study
    for _ in range(3):
        _submit(engine, "ann", _show(engine, "ann", sid), "unsure")
    view = _show(engine, "ann", sid)  # a "new login": fresh session
    assert view.position == 4
    assert _show(engine, "bob", sid).position == 1  # other readers are independent
    with session_scope(engine) as s:
        mine = reading.reader_studies(s, _user(s, "ann"))
        assert [(r.answered, r.total, r.finished) for r in mine] == [(3, 6, False)]
    for _ in range(3):
        _submit(engine, "ann", _show(engine, "ann", sid), "unsure")
    assert _show(engine, "ann", sid) is None
    with session_scope(engine) as s:
        assert reading.reader_studies(s, _user(s, "ann"))[0].finished


@pytest.mark.parametrize("same_key", [True, False])
def test_concurrent_submits_one_answer(study, same_key):
    engine, sid = study
    view = _show(engine, "ann", sid)
    n = 8
    barrier, results, errors = threading.Barrier(n), [], []

    def worker(i):
        try:
            barrier.wait()
            key = view.idempotency_key if same_key else f"tab-{i}-{view.idempotency_key}"
            results.append(_submit(engine, "ann", view, key=key).status)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results.count("created") == 1
    assert sorted(set(results) - {"created"}) == (["duplicate"] if same_key else ["rejected"])
    assert _count(engine, Answer) == 1
    assert _count(engine, AnswerEvent) == n
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Assignment.id)).where(
            Assignment.answered_at.is_not(None))) == 1


def test_organ_origin_study_and_educational_feedback(engine, tmp_path):
    from studies.accounts import OPERATOR
    from studies.admin import create_study
    from tests.studies._catalog import build_catalog, spec_dict

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", organ="liver", n_real=2, n_synthetic=1)
        build_catalog(s, tmp_path / "c", organ="kidney", n_real=2, n_synthetic=1, seed=1)
        st = create_study(s, spec_dict(design="organ_origin", organs=["liver", "kidney"],
                                       cases_per_organ={"real": 2, "synthetic": 0},
                                       educational=True, readers=["ann"]),
                          actor=OPERATOR, export_root=tmp_path / "e", progress=False)
        sid = st.id
    view = _show(engine, "ann", sid)
    assert view.choices == (("Liver", "liver"), ("Kidney", "kidney"), ("Unsure", "unsure"))
    with pytest.raises(StudyError, match="answer must be one of liver, kidney, unsure"):
        _submit(engine, "ann", view, "real")
    with session_scope(engine) as s, pytest.raises(Exception, match="Finish the study"):
        reading.reader_feedback(s, _user(s, "ann"), sid)
    for _ in range(4):
        _submit(engine, "ann", _show(engine, "ann", sid), "liver")
    with session_scope(engine) as s:
        feedback = reading.reader_feedback(s, _user(s, "ann"), sid)
        assert s.scalar(select(Answer.question).limit(1)) == "origin"
    assert [f["position"] for f in feedback] == [1, 2, 3, 4]
    assert sorted(f["truth"] for f in feedback) == ["kidney", "kidney", "liver", "liver"]
    assert sum(f["correct"] for f in feedback) == 2

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
        return reading.submit_answer(
            s,
            _user(s, name),
            view.code,
            value=value,
            idempotency_key=key or view.idempotency_key,
            **kw,
        )


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
    res = _submit(
        engine,
        "ann",
        view,
        window_width=150,
        window_level=90,
        displayed_at=t0 + timedelta(seconds=10),
    )
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
        assert (
            s.scalar(select(func.count(Assignment.id)).where(Assignment.answered_at.is_not(None)))
            == 1
        )


def test_organ_origin_study_and_educational_feedback(engine, tmp_path):
    from studies.accounts import OPERATOR
    from studies.admin import create_study
    from tests.studies._catalog import build_catalog, spec_dict

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", organ="liver", n_real=2, n_synthetic=1)
        build_catalog(s, tmp_path / "c", organ="kidney", n_real=2, n_synthetic=1, seed=1)
        st = create_study(
            s,
            spec_dict(
                design="organ_origin",
                organs=["liver", "kidney"],
                cases_per_organ={"real": 2, "synthetic": 0},
                educational=True,
                readers=["ann"],
            ),
            actor=OPERATOR,
            export_root=tmp_path / "e",
            progress=False,
        )
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


@pytest.fixture
def timed_study(catalog, tmp_path):
    """A study with the default reading settings (answers need 1 s on screen)."""
    from studies.accounts import OPERATOR
    from studies.admin import create_study
    from tests.studies._catalog import spec_dict

    with session_scope(catalog) as s:
        st = create_study(
            s,
            spec_dict(name="timed", reading={}),
            actor=OPERATOR,
            export_root=tmp_path / "exp-timed",
            progress=False,
        )
        assert st.spec["reading"] == {"min_seconds_on_case": 1.0, "idle_seconds": 60.0}
        return catalog, st.id


def _at(monkeypatch, t0, seconds):
    monkeypatch.setattr(clock, "now", lambda: t0 + timedelta(seconds=seconds))


def _display(engine, name, view):
    with session_scope(engine) as s:
        return reading.record_display(s, _user(s, name), view.code)


def test_double_click_cannot_answer_the_next_case(timed_study, monkeypatch):
    """The second click of a double click (0.15-0.35 s) or key press (0.06 s) lands on the
    case drawn after the first one: refused, because it was on screen for less than 1 s."""
    engine, sid = timed_study
    t0 = clock.now()
    _at(monkeypatch, t0, 0)
    first = _show(engine, "ann", sid)
    assert first.min_seconds_on_case == 1.0
    _display(engine, "ann", first)
    _at(monkeypatch, t0, 4.0)
    assert _submit(engine, "ann", first, "real").status == "created"
    _at(monkeypatch, t0, 4.05)  # the next case is drawn
    second = _show(engine, "ann", sid)
    _display(engine, "ann", second)
    for late in (0.06, 0.3):  # double key press, double click
        _at(monkeypatch, t0, 4.05 + late)
        res = _submit(engine, "ann", second, "real", key=f"second-click-{late}")
        assert res.status == "rejected" and not res.accepted
        assert "at least 1 s" in res.message and "not recorded" in res.message
    assert _count(engine, Answer) == 1
    with session_scope(engine) as s:
        ev = s.scalar(select(AnswerEvent).where(AnswerEvent.event == "rejected"))
        assert ev.payload["reason"] == "too soon"
        assert ev.payload["min_seconds_on_case"] == 1.0
        created = s.scalar(select(AnswerEvent).where(AnswerEvent.event == "created"))
        assert created.payload["min_seconds_on_case"] == 1.0  # recorded with the answer
    # a deliberate answer after a real look is recorded
    _at(monkeypatch, t0, 5.5)
    assert _submit(engine, "ann", second, "synthetic").status == "created"
    # a retry of a recorded submission is still a duplicate, never "too soon"
    _at(monkeypatch, t0, 5.6)
    assert _submit(engine, "ann", second, "synthetic").status == "duplicate"
    assert _count(engine, Answer) == 2


def test_minimum_counts_from_the_latest_display(timed_study, monkeypatch):
    """A reload / new login draws the case again: the minimum starts again from that draw."""
    engine, sid = timed_study
    t0 = clock.now()
    _at(monkeypatch, t0, 0)
    view = _show(engine, "ann", sid)
    _display(engine, "ann", view)
    _at(monkeypatch, t0, 300)
    _display(engine, "ann", view)  # shown again after a logout and login
    _at(monkeypatch, t0, 300.2)
    assert _submit(engine, "ann", view).status == "rejected"
    _at(monkeypatch, t0, 301.5)
    assert _submit(engine, "ann", view).status == "created"


def test_time_on_case_counts_only_time_on_screen(timed_study, monkeypatch):
    """Shown, logged out for 10 minutes, shown again: the time logged out never counts."""
    engine, sid = timed_study
    t0 = clock.now()
    _at(monkeypatch, t0, 0)
    view = _show(engine, "ann", sid)
    _display(engine, "ann", view)
    _at(monkeypatch, t0, 625)  # logged out at ~5 s, back at 625 s
    _display(engine, "ann", view)
    _at(monkeypatch, t0, 630)
    # without a report from the browser: since the latest display
    assert _submit(engine, "ann", view).status == "created"
    # with the browser's visible time; an inflated report is capped by the server's bound
    for visible in (7.25, 1e6):
        _at(monkeypatch, t0, 630)
        view = _show(engine, "ann", sid)
        _display(engine, "ann", view)
        _at(monkeypatch, t0, 640)
        assert _submit(engine, "ann", view, visible_seconds=visible).status == "created"
    with session_scope(engine) as s:
        got = s.scalars(select(Answer.seconds_on_case).order_by(Answer.id)).all()
    assert got[0] == pytest.approx(5.0)
    assert got[1] == pytest.approx(7.25)
    assert got[2] == pytest.approx(10.0)  # first display of that case at 630 s, submit 640 s
    with pytest.raises(StudyError, match="visible seconds must be a finite number >= 0"):
        _submit(engine, "ann", _show(engine, "ann", sid), visible_seconds=float("nan"))


def test_closed_study_answer_has_one_message(timed_study, monkeypatch):
    engine, sid = timed_study
    view = _show(engine, "ann", sid)
    with session_scope(engine) as s:
        s.get(Study, sid).status = StudyStatus.CLOSED
    _at(monkeypatch, clock.now(), 5)
    res = _submit(engine, "ann", view)
    assert (res.status, res.message) == ("rejected", reading.CLOSED)
    with session_scope(engine) as s:
        (row,) = reading.reader_studies(s, _user(s, "ann"))
        assert (row.status, row.finished, row.answered) == ("closed", False, 0)


def test_lesion_voxel_is_the_tumor_centre_of_the_blinded_file(timed_study):
    """The crosshair position is inside the tumor and, with the crop centred on the tumor, at
    the crop centre in every case of both arms: it tells where to look, not which arm."""
    import nibabel as nib
    import numpy as np

    engine, sid = timed_study
    with session_scope(engine) as s:
        view = reading.current_case(s, _user(s, "ann"), sid)
        assert view.lesion_voxel is not None
        cases = s.scalars(select(reading.StudyCase).where(reading.StudyCase.study_id == sid)).all()
        assert {c.arm.value for c in cases} == {"real", "synthetic"}
        for case in cases:
            voxel = reading.lesion_voxel(case)
            mask = np.asarray(nib.load(case.meta["mask_path"]).dataobj) > 0
            assert mask[voxel]
            assert all(
                abs(v - (n - 1) / 2) <= 1.5 for v, n in zip(voxel, mask.shape, strict=True)
            ), (case.arm, voxel)


def test_lesion_voxel_of_a_multifocal_mask_is_the_largest_lesion(tmp_path):
    """Several lesions (hand-crafted makes 3-10): the crosshair goes to the largest one; a
    position recorded by the export wins; no mask file gives None."""
    import nibabel as nib
    import numpy as np

    from db.models import StudyCase

    mask = np.zeros((20, 20, 10), np.uint8)
    mask[2:4, 2:4, 2:4] = 1  # small lesion
    mask[10:17, 5:12, 3:8] = 1  # the largest: centre (13, 8, 5)
    mask[18, 18, 9] = 1  # a single voxel
    path = tmp_path / "m.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), path)
    assert reading.lesion_voxel(StudyCase(meta={"mask_path": str(path)})) == (13, 8, 5)
    assert reading.lesion_voxel(
        StudyCase(meta={"mask_path": str(path), "lesion_voxel": [1, 2, 3]})
    ) == (1, 2, 3)
    assert (
        reading.lesion_voxel(StudyCase(meta={"mask_path": str(tmp_path / "none.nii.gz")})) is None
    )

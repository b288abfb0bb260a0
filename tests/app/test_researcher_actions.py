"""Researcher actions in the app: import a dataset, reopen a study, remove a reader, pass a
checkpoint to a learned method, see why a batch failed; study and dashboard tables show every
row and the cases per arm as a table."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from db.models import Assignment, JobStatus, Study, StudyStatus, Volume
from db.session import session_scope
from tests.app.conftest import button, shown, texts
from tests.app.test_admin_pages import _add_job, _page
from tests.app.test_researcher import _answer


@pytest.fixture
def frames(monkeypatch):
    """Every ``st.dataframe`` call of a run: (number of rows, height argument)."""
    import streamlit
    from streamlit.delta_generator import DeltaGenerator

    seen: list[tuple[int, object]] = []
    original = DeltaGenerator.dataframe

    def spy(self, data=None, *args, **kwargs):
        seen.append((len(data) if data is not None else 0, kwargs.get("height", "auto")))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "dataframe", spy)
    monkeypatch.setattr(streamlit, "dataframe", lambda *a, **k: spy(streamlit._main, *a, **k))
    return seen


def test_datasets_page_imports_a_dataset(app_db, tmp_path):
    from tests.studies._catalog import write_manifest

    manifest = write_manifest(tmp_path / "incoming", n=2)
    at = _page(app_db, "datasets")
    [s for s in at.selectbox if s.label == "Format"][0].set_value("manifest")
    [t for t in at.text_input if t.label.startswith("Path on the server")][0].input(str(manifest))
    [t for t in at.text_input if t.label.startswith("Dataset name")][0].input("incoming")
    button(at, "Import dataset").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Dataset 'incoming': 2 case(s) added, 0 already registered." in texts(at)
    assert "incoming" in set(at.dataframe[-1].value["dataset"])
    with session_scope(app_db.engine) as s:
        assert (
            s.scalar(select(func.count(Volume.id)).where(Volume.case_id.in_(["case0", "case1"])))
            == 2
        )

    # a wrong path is one line, and nothing is registered
    [t for t in at.text_input if t.label.startswith("Path on the server")][0].input(
        str(tmp_path / "nope")
    )
    button(at, "Import dataset").click()
    at.run()
    (error,) = [e.value for e in at.error]
    assert "does not exist" in error and "\n" not in error


def test_studies_page_reopens_a_closed_study(app_db):
    from studies.accounts import OPERATOR
    from studies.admin import close_study

    with session_scope(app_db.engine) as s:
        close_study(s, OPERATOR, app_db.study_id)
    at = _page(app_db, "studies")
    assert "Close study" not in [b.label for b in at.button]
    button(at, "Reopen study").click()
    at.run()
    assert not at.exception and not at.error
    with session_scope(app_db.engine) as s:
        assert s.get(Study, app_db.study_id).status == StudyStatus.OPEN
    assert "Close study" in [b.label for b in at.button]  # the same study stays open on screen
    assert "t1" in at.subheader[0].value


def test_studies_page_removes_a_reader(app_db):
    _answer(app_db, "ann", ["real"])
    at = _page(app_db, "studies")
    [s for s in at.selectbox if s.label == "Reader"][0].set_value("ann")
    button(at, "Remove reader").click()
    at.run()
    assert [e.value for e in at.error] == ["Tick 'I want to remove this reader' first."]
    [s for s in at.selectbox if s.label == "Reader"][0].set_value("ann")
    [c for c in at.checkbox if c.label == "I want to remove this reader"][0].check()
    button(at, "Remove reader").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "ann removed from t1: 6 cases withdrawn, 1 answers kept." in texts(at)
    with session_scope(app_db.engine) as s:
        assert (
            s.scalar(
                select(func.count(Assignment.id)).where(Assignment.reader_id == app_db.users["ann"])
            )
            == 0
        )
    progress = [d.value for d in at.dataframe if "username" in d.value.columns]
    assert list(progress[0]["username"]) == ["bob"]


def test_studies_page_shows_cases_per_arm_and_the_size_match(app_db, frames):
    at = _page(app_db, "studies")
    (cases,) = [d.value for d in at.dataframe if "cases" in d.value.columns]
    assert cases.to_dict("records") == [
        {"arm": "real", "organ": "liver", "method": "", "cases": 3},
        {"arm": "synthetic", "organ": "liver", "method": "handcrafted", "cases": 3},
    ]
    assert "lesion size (selection.match: size)" in " ".join(t.value for t in at.text)
    (pairs,) = [d.value for d in at.dataframe if "real mm" in d.value.columns]
    assert len(pairs) == 3 and "real" not in pairs.columns  # diameters only, no codes
    shown = texts(at) + json.dumps([j.value for j in at.json], default=str)
    with session_scope(app_db.engine) as s:
        codes = [c.code for c in s.get(Study, app_db.study_id).cases]
    assert not any(code in shown for code in codes)  # pairing would reveal the arms
    # tables that can grow past ten rows are drawn at their full height
    assert all(height == "content" for _, height in frames[1:]), frames


def test_dashboard_tables_show_every_row(app_db, frames):
    _answer(app_db, "ann", ["real", "synthetic"])
    _answer(app_db, "bob", ["real"])
    at = _page(app_db, "dashboard")
    (table,) = [
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["data"][0]["type"] == "table"
    ]
    trace, layout = table["data"][0], table["layout"]
    n_rows = len(trace["cells"]["values"][0])
    assert n_rows >= 2
    assert layout["height"] >= (
        layout["margin"]["t"]
        + layout["margin"]["b"]
        + trace["header"]["height"]
        + n_rows * trace["cells"]["height"]
    )
    assert all(height == "content" for _, height in frames), frames


def _fake_popen(monkeypatch):
    from app import jobs

    started = []

    def fake_popen(argv, **kwargs):
        started.append(argv)
        return SimpleNamespace(pid=4343)

    monkeypatch.setattr(jobs.subprocess, "Popen", fake_popen)
    return started


def test_synthesis_form_passes_a_checkpoint_to_learned_methods(app_db, monkeypatch, tmp_path):
    from turingct.cli import build_parser

    started = _fake_popen(monkeypatch)
    weights = tmp_path / "difftumor-liver.pt"
    weights.write_bytes(b"weights")
    at = _page(app_db, "synthesis")
    [s for s in at.selectbox if s.label == "Method"][0].set_value("difftumor")
    button(at, "Launch").click()
    at.run()
    (error,) = [e.value for e in at.error]  # refused before anything starts
    assert error.startswith("Checkpoint: must be given for difftumor") and not started

    [s for s in at.selectbox if s.label == "Method"][0].set_value("difftumor")
    [t for t in at.text_input if t.label.startswith("Checkpoint")][0].input(str(tmp_path / "x"))
    button(at, "Launch").click()
    at.run()
    assert "checkpoint file does not exist" in at.error[0].value and not started

    [s for s in at.selectbox if s.label == "Method"][0].set_value("difftumor")
    [t for t in at.text_input if t.label.startswith("Checkpoint")][0].input(str(weights))
    button(at, "Launch").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    (argv,) = started
    args = build_parser().parse_args(argv[3:])
    assert args.method == "difftumor" and args.checkpoint == str(weights)
    assert "-ckpt" in args.out  # other weights, other output folder


def test_a_failed_batch_shows_failed_with_its_reason(app_db):
    reason = (
        "CheckpointError: /w/liver.pt: checkpoint is a pixel2cancer model, not difftumor; "
        "pass a difftumor checkpoint"
    )
    _add_job(
        app_db,
        method="difftumor",
        status=JobStatus.FAILED,
        n_total=3,
        n_done=0,
        n_failed=3,
        errors=[{"item": i, "case": f"c{i}", "error": reason} for i in range(3)],
    )
    at = _page(app_db, "synthesis")
    assert not at.get("progress")  # no running bar for a finished job
    errors = [shown(e.value) for e in at.error]
    assert errors == [f"Job #1 (difftumor · liver) failed: {reason} (3 of 3 items)"]
    jobs = at.dataframe[-1].value.set_index("id")
    assert jobs.loc[1, "status"] == "failed" and jobs.loc[1, "done"] == 0.0
    assert jobs.loc[1, "reason"].startswith("CheckpointError: ")


def _launch(at, **choices):
    """Set the synthesis form's widgets by label and press Launch."""
    for label, value in choices.items():
        widget = [w for w in (*at.selectbox, *at.number_input) if w.label == label][0]
        widget.set_value(value)
    button(at, "Launch").click()
    at.run()


def test_synthesis_form_passes_the_handcrafted_profile(app_db, monkeypatch):
    from turingct.cli import build_parser

    started = _fake_popen(monkeypatch)
    at = _page(app_db, "synthesis")
    _launch(at, **{"Method": "pixel2cancer", "Hand-crafted profile": "vtt"})
    (error,) = [e.value for e in at.error]  # as the CLI: --profile is for handcrafted only
    assert (
        error.startswith(
            "Hand-crafted profile: profile is a hand-crafted option, not for pixel2cancer"
        )
        and not started
    )

    _launch(at, **{"Method": "handcrafted", "Hand-crafted profile": "vtt"})
    assert not at.error, [e.value for e in at.error]
    (argv,) = started
    args = build_parser().parse_args(argv[3:])
    assert (args.method, args.profile, args.n_tumors) == ("handcrafted", "vtt", None)
    assert Path(args.out).name == "handcrafted-liver-seed0-vtt"  # never resumes train outputs


def test_synthesis_form_passes_the_number_of_tumors_for_every_method(app_db, monkeypatch, tmp_path):
    from synth_backend.registry import LEARNING_BASED, available_methods
    from turingct.cli import build_parser

    started = _fake_popen(monkeypatch)
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"weights")
    at = _page(app_db, "synthesis")
    for method in available_methods():
        if method in LEARNING_BASED:
            [t for t in at.text_input if t.label.startswith("Checkpoint")][0].input(str(weights))
        _launch(at, **{"Method": method, "Number of tumors": 3})
        assert not at.error, (method, [e.value for e in at.error])
        args = build_parser().parse_args(started[-1][3:])
        assert (args.method, args.n_tumors, args.profile) == (method, 3, None)
        assert Path(args.out).name.endswith("-k3")
        [t for t in at.text_input if t.label.startswith("Checkpoint")][0].input("")
    assert len(started) == len(available_methods())

"""Researcher pages as a researcher (they work) and as an account that is not one (refused),
readers and invites, study creation from an uploaded spec, synthesis job progress."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from tests.app.conftest import button, delivered, download, new_app, shown, texts  # noqa: F401
from tests.studies._catalog import spec_dict

PAGES = {
    "studies": "Studies",
    "readers": "Readers and invites",
    "progress": "Reader progress",
    "datasets": "Datasets",
    "synthesis": "Synthesis batches",
    "dashboard": "Dashboard",
}


def _page(db, name, user="rita", role="researcher"):
    at = new_app(db, user, role).run()
    at.switch_page(f"pages_/{name}.py").run()
    assert not at.exception, at.exception
    return at


def test_research_pages_work_for_a_researcher(app_db):
    for name, title in PAGES.items():  # one database for all six (its set-up dominates)
        at = _page(app_db, name)
        assert title in [t.value for t in at.title], name
        assert not at.error, (name, [e.value for e in at.error])


def test_research_pages_check_the_role_in_the_database(app_db):
    """A session claiming the researcher role for a reader account (e.g. demoted since login)
    gets past the page guard but every service call re-reads the role and refuses."""
    for name in PAGES:
        at = _page(app_db, name, user="ann", role="researcher")
        errors = [e.value for e in at.error]
        assert errors and errors[0].startswith("Access denied:"), (name, errors)
        assert "role reader" in errors[0], name
        assert not at.dataframe and not at.get("plotly_chart"), name
        assert not at.get("download_button") and not at.get("progress"), name


def _users_table(at):
    (table,) = [d.value for d in at.dataframe if "has_password" in d.value.columns]
    return table.set_index("username")


def test_readers_page_lists_accounts_and_invites_and_assigns(app_db):
    from db.models import User
    from db.session import session_scope
    from studies.accounts import authenticate, redeem_invite

    at = _page(app_db, "readers")
    users = _users_table(at)
    assert list(users.index) == ["ann", "bob", "rita"]
    assert users.loc["rita", "role"] == "researcher" and users["has_password"].all()
    assert not users["locked"].any()

    # a new reader without a password, not assigned: listed at once, no password yet
    at.text_input[0].input("dave")
    [n for n in at.number_input if n.label == "Years of experience"][0].set_value(12)
    at.checkbox[0].uncheck()
    button(at, "Create account").click()
    at.run()
    assert "Account 'dave' created" in texts(at)
    users = _users_table(at)
    assert not users.loc["dave", "has_password"] and users.loc["dave", "years_experience"] == 12

    # assign the existing account to the study, then hand it a fresh invite link
    (account,) = [s for s in at.selectbox if s.label == "Account"]
    account.set_value("dave")
    button(at, "Assign to the selected study").click()
    at.run()
    assert "dave has 6 cases in t1." in texts(at)
    (account,) = [s for s in at.selectbox if s.label == "Account"]
    account.set_value("dave")
    button(at, "New invite link").click()
    at.run()
    (link,) = [c.value for c in at.code]
    token = link.split("invite=", 1)[1]
    with session_scope(app_db.engine) as s:
        assert redeem_invite(s, token, "dave's passphrase").username == "dave"
        assert (
            authenticate(s, "dave", "dave's passphrase").id
            == s.query(User).filter_by(username="dave").one().id
        )
    assert _users_table(_page(app_db, "readers")).loc["dave", "has_password"]


def test_studies_page_creates_a_study_from_an_uploaded_spec(app_db, delivered):  # noqa: F811
    at = _page(app_db, "studies")
    spec = spec_dict(name="uploaded", readers=["ann"], seed=11)
    at.file_uploader[0].upload("uploaded.yaml", yaml.safe_dump(spec).encode(), "text/yaml")
    at.run()
    button(at, "Create study from file").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Study 'uploaded' created." in texts(at)
    assert "Blinding audit" in texts(at)  # the audit summary (success or warning) is shown
    assert "lesion size (selection.match: size)" in at.text[0].value  # the achieved match
    (listing,) = [d.value for d in at.dataframe if "n_cases" in d.value.columns]
    assert set(listing["name"]) == {"t1", "uploaded"}
    # the CSV downloads of the opened study (the newest is preselected): built on request only
    assert not delivered and not at.get("download_button")
    key_csv, key_name = download(at, "Download key CSV", delivered)
    rows = list(csv.DictReader(io.StringIO(key_csv.decode())))
    assert key_name == "uploaded-key.csv" and len(rows) == 6
    assert sorted(r["arm"] for r in rows) == ["real"] * 3 + ["synthetic"] * 3
    results_csv, _ = download(at, "Download results CSV", delivered)
    assert results_csv.decode().splitlines()[0].startswith("reader,years_experience,code,arm")


def test_studies_page_results_csv_has_one_row_per_answer(app_db, delivered):  # noqa: F811
    from tests.app.test_researcher import _answer

    _answer(app_db, "ann", ["real", "synthetic"])
    at = _page(app_db, "studies")
    results, _ = download(at, "Download results CSV", delivered)
    rows = list(csv.DictReader(io.StringIO(results.decode())))
    assert [(r["reader"], r["answer"]) for r in rows] == [("ann", "real"), ("ann", "synthetic")]
    assert all(float(r["seconds_on_case"]) >= 0 for r in rows)


def test_studies_page_reports_a_broken_spec_file_in_one_line(app_db):
    at = _page(app_db, "studies")
    at.file_uploader[0].upload("broken.yaml", b"name: [unclosed", "text/yaml")
    at.run()
    button(at, "Create study from file").click()
    at.run()
    (error,) = [shown(e.value) for e in at.error]
    assert error.startswith("broken.yaml: is not valid YAML at line 1") and "\n" not in error


def _add_job(db, **fields):
    from db.models import JobStatus, SynthesisJob
    from db.session import session_scope

    values = {
        "method": "handcrafted",
        "organ": "liver",
        "seed": 5,
        "out_dir": "/data/out",
        "n_total": 10,
        "n_done": 3,
        "n_failed": 1,
        "status": JobStatus.RUNNING,
        "config": {"device": "cpu"},
        "errors": [{"item": 4, "case": "case_004", "error": "organ mask is empty"}],
    }
    values.update(fields)
    with session_scope(db.engine) as s:
        s.add(SynthesisJob(**values))


def test_synthesis_page_shows_a_running_jobs_progress_and_errors(app_db):
    from db.models import JobStatus

    _add_job(app_db, status=JobStatus.DONE, n_done=8, n_failed=0, n_total=8, errors=[])
    _add_job(app_db)
    at = _page(app_db, "synthesis")
    (bar,) = at.get("progress")  # only the running job has a bar: (3 + 1) / 10
    assert bar.proto.value == 40
    assert bar.proto.text == "#2 handcrafted · liver · running · 3 done, 1 failed of 10"
    jobs = at.dataframe[-1].value.set_index("id")
    assert list(jobs.index) == [2, 1]
    assert jobs.loc[1, "status"] == "done" and jobs.loc[1, "progress"] == 1.0
    (failures,) = [d.value for d in at.dataframe if "error" in d.value.columns]
    assert failures.to_dict("records") == [
        {"item": 4, "case": "case_004", "error": "organ mask is empty"}
    ]


def test_job_rows_and_datasets_come_from_the_service(app_db):
    from catalog.jobs import dataset_names, list_jobs
    from db.session import session_scope

    _add_job(app_db, n_total=0, n_done=0, n_failed=0, errors=[])
    with session_scope(app_db.engine) as s:
        (job,) = list_jobs(s)
        assert job.progress == 0.0 and job.active and job.device == "cpu"
        assert dataset_names(s) == ["phantoms"]  # the synthetic dataset is not a source


def test_batch_command_matches_the_cli(tmp_path):
    from app import jobs
    from turingct.cli import build_parser

    argv = jobs.batch_command(
        method="handcrafted",
        organ="kidney",
        dataset="phantoms",
        count=3,
        size="small",
        device="cpu",
        seed=9,
        out_dir=tmp_path / "o",
        database_url="sqlite:///x.db",
    )
    args = build_parser().parse_args(argv[3:])  # after `python -c "...main()"`
    assert (args.method, args.organ, args.dataset, args.n, args.seed, args.size) == (
        "handcrafted",
        "kidney",
        "phantoms",
        3,
        9,
        "small",
    )
    assert args.from_catalog and args.device == "cpu" and args.out == str(tmp_path / "o")
    with pytest.raises(jobs.LaunchError, match="Tumor size: must be one of"):
        jobs.batch_command(
            method="handcrafted",
            organ="liver",
            dataset="d",
            count=1,
            size="huge",
            device="cpu",
            seed=0,
            out_dir=tmp_path,
            database_url="sqlite://",
        )
    with pytest.raises(jobs.LaunchError, match="Method: must be one of"):
        jobs.batch_command(
            method="nope",
            organ="liver",
            dataset="d",
            count=1,
            size="small",
            device="cpu",
            seed=0,
            out_dir=tmp_path,
            database_url="sqlite://",
        )


def test_studies_page_warns_when_the_blinding_audit_is_not_near_chance(
    engine, db_url, tmp_path, monkeypatch
):
    """Synthetic arm from a quieter 'scanner' (noise 5 vs 20 HU): the audit separates the
    arms without looking at the tumor and the researcher sees a warning, not a success."""
    from db.session import session_scope
    from studies.accounts import create_user
    from tests.app.conftest import AppDB
    from tests.studies._catalog import build_catalog

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "cat", n_real=8, n_synthetic=8, synthetic_opts={"noise": 5.0})
        rita = create_user(s, "rita", "correct horse battery", role="researcher").id
    monkeypatch.setenv("TURINGCT_DATABASE_URL", db_url)
    monkeypatch.setenv("TURINGCT_DATA_DIR", str(tmp_path / "data"))
    at = _page(AppDB(db_url, engine, -1, {"rita": rita}), "studies")
    spec = spec_dict(name="leaky", readers=[], cases_per_organ={"real": 8, "synthetic": 8})
    at.file_uploader[0].upload("leaky.yaml", yaml.safe_dump(spec).encode(), "text/yaml")
    at.run()
    button(at, "Create study from file").click()
    at.run()
    assert "Study 'leaky' created." in texts(at)
    warnings = [w.value for w in at.warning]
    assert warnings and warnings[0].startswith("Blinding audit: AUC")
    assert "distinguishable without the tumor" in warnings[0]
    assert not [s.value for s in at.success if "near chance" in s.value]


def test_synthesis_form_launches_the_batch_command(app_db, monkeypatch):
    """The Launch button starts `turingct synth batch` with the form's choices as a detached
    process (faked here: the argv is captured, nothing runs)."""
    from types import SimpleNamespace

    from app import jobs
    from turingct.cli import build_parser

    started = []

    def fake_popen(argv, **kwargs):
        started.append((argv, kwargs))
        return SimpleNamespace(pid=4242)

    monkeypatch.setattr(jobs.subprocess, "Popen", fake_popen)
    at = _page(app_db, "synthesis")
    [n for n in at.number_input if n.label == "How many"][0].set_value(3)
    [s for s in at.selectbox if s.label == "Organ"][0].set_value("kidney")
    button(at, "Launch").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    ((argv, kwargs),) = started
    args = build_parser().parse_args(argv[3:])
    assert (args.organ, args.n, args.dataset, args.from_catalog) == ("kidney", 3, "phantoms", True)
    assert kwargs["start_new_session"]  # outlives the Streamlit session
    assert args.db == app_db.url
    assert "Batch started (process 4242)" in texts(at)
    out = Path(args.out)  # under $TURINGCT_DATA_DIR, named by the choices (resumable)
    assert out.name == f"{args.method}-kidney-seed0" and (out / "batch.log").is_file()

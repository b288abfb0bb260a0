"""Researcher pages: studies, progress, readers and invites, datasets, synthesis, dashboard."""

from __future__ import annotations

from tests.app.conftest import button, new_app, shown, texts


def _page(db, page, user="rita", role="researcher"):
    at = new_app(db, user, role).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _answer(db, username, values):
    from db.models import User
    from db.session import session_scope
    from studies.reading import current_case, submit_answer

    with session_scope(db.engine) as s:
        user = s.get(User, db.users[username])
        for value in values:
            view = current_case(s, user, db.study_id)
            submit_answer(s, user, view.code, value=value, idempotency_key=view.idempotency_key)


def test_researcher_navigation_has_reader_and_research_pages(app_db):
    at = new_app(app_db, "rita", "researcher").run()
    scripts = {str(i.get("script_path")).rsplit("/", 1)[-1] for i in at._registered_pages.values()}
    assert {
        "studies.py",
        "readers.py",
        "progress.py",
        "datasets.py",
        "synthesis.py",
        "dashboard.py",
        "my_studies.py",
        "reading.py",
    } == scripts


def test_researcher_sees_progress_per_reader(app_db):
    _answer(app_db, "ann", ["real", "synthetic", "unsure"])
    at = _page(app_db, "pages_/progress.py")
    (table,) = at.dataframe
    df = table.value.set_index("username")
    assert df.loc["ann", "answered"] == 3 and df.loc["ann", "total"] == 6
    assert df.loc["bob", "answered"] == 0
    assert df.loc["ann", "median_seconds"] >= 0
    assert "3 / 12" in [m.value for m in at.metric]


def test_studies_page_lists_and_offers_csv_downloads(app_db):
    _answer(app_db, "bob", ["real"])
    at = _page(app_db, "pages_/studies.py")
    summary = at.dataframe[0].value
    assert list(summary["name"]) == ["t1"] and int(summary["n_cases"][0]) == 6
    for label in ("Download key CSV", "Download results CSV"):
        button(at, label)  # offered; built and delivered on click only (app.secure_download)
    assert not at.get("download_button")  # no st.download_button: its bytes sit at /media/
    assert "Blinding audit" in texts(at)


def test_researcher_closes_a_study_and_readers_can_no_longer_answer(app_db):
    at = _page(app_db, "pages_/studies.py")
    at.checkbox(key="turingct_close_confirm").check()
    at.run()
    button(at, "Close study").click()
    at.run()
    assert not at.exception
    reader = new_app(app_db, "ann").run()
    assert "t1 (closed)" in [shown(h.value) for h in reader.subheader]
    assert not [b for b in reader.button if b.label in ("Start", "Continue")]
    reader.switch_page("pages_/reading.py")
    reader.run()
    assert [t.value for t in reader.title] == ["Study closed"]  # not "Thank you!"


def test_create_study_from_the_form(app_db):
    at = _page(app_db, "pages_/studies.py")
    form_inputs = {t.label: t for t in at.text_input}
    form_inputs["Name"].input("form-study")
    form_inputs["Crop size around the tumor, mm (x, y, z)"].input("24, 24, 18")
    form_inputs["Readers (usernames, comma separated)"].input("ann")
    at.number_input[0].set_value(2)
    at.number_input[1].set_value(2)
    button(at, "Create study").click()
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Study 'form-study' created." in texts(at)
    home = new_app(app_db, "ann").run()
    assert "form-study" in [h.value for h in home.subheader]


def test_readers_page_creates_a_reader_with_invite_link(app_db):
    at = _page(app_db, "pages_/readers.py")
    at.text_input[0].input("carol")
    at.number_input[0].set_value(7)
    button(at, "Create account").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert "Account 'carol' created, 6 cases assigned" in texts(at)
    (link,) = at.code
    assert "/?invite=" in link.value
    # wrong input: a one-line message, nothing created
    at.text_input[0].input("bad name!")
    button(at, "Create account").click()
    at.run()
    assert "username must be" in at.error[0].value


def test_datasets_page_shows_the_catalog(app_db):
    at = _page(app_db, "pages_/datasets.py")
    (table,) = at.dataframe
    assert len(table.value) == 8
    assert set(table.value["dataset"]) == {"phantoms", "synthetic"}


def test_synthesis_page_renders_without_jobs(app_db):
    at = _page(app_db, "pages_/synthesis.py")
    assert "Synthesis batches" in [t.value for t in at.title]
    assert "No synthesis batch yet." in texts(at)


def test_dashboard_shows_reader_metrics_or_says_why_not(app_db):
    at = _page(app_db, "pages_/dashboard.py")
    assert "no 'truth' answers yet" in texts(at)
    _answer(app_db, "ann", ["real", "synthetic", "unsure", "real"])
    _answer(app_db, "bob", ["synthetic", "synthetic", "real", "real"])
    at = _page(app_db, "pages_/dashboard.py")
    assert len(at.get("plotly_chart")) == 4  # table, forest, kappa, time


def test_admin_may_create_staff_accounts_researcher_may_not(app_db):
    at = _page(app_db, "pages_/readers.py")
    roles = [s for s in at.selectbox if s.label == "Role"][0].options
    assert roles == ["reader"]

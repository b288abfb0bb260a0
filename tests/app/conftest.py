"""Fixtures for the app tests: a built 6-case study in a fresh database, and AppTest drivers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.studies._catalog import build_catalog, spec_dict

MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
PASSWORD = "correct horse battery"


@dataclass
class AppDB:
    """The test database: URL, engine, the study's id and the users' ids by name."""

    url: str
    engine: object
    study_id: int
    users: dict[str, int]


@pytest.fixture
def app_db(engine, db_url, tmp_path, monkeypatch) -> AppDB:
    """Readers ann and bob (6 cases each, confidence asked), researcher rita; the app reads the
    database from $TURINGCT_DATABASE_URL like under `turingct serve`. Answers given by test
    code need no time on screen (``reading.min_seconds_on_case: 0``)."""
    return _app_db(engine, db_url, tmp_path, monkeypatch, spec_dict(confidence=True))


@pytest.fixture
def reader_db(engine, db_url, tmp_path, monkeypatch) -> AppDB:
    """As :func:`app_db` with the spec's default reading settings (1 s on screen before an
    answer), for tests where a browser answers like a reader."""
    return _app_db(engine, db_url, tmp_path, monkeypatch, spec_dict(confidence=True, reading={}))


def _app_db(engine, db_url, tmp_path, monkeypatch, spec) -> AppDB:
    from db.session import session_scope
    from studies.accounts import OPERATOR, create_user
    from studies.admin import create_study

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "cat")
        users = {
            name: create_user(s, name, PASSWORD, role=role)
            for name, role in (("ann", "reader"), ("bob", "reader"), ("rita", "researcher"))
        }
        study = create_study(s, spec, actor=OPERATOR, export_root=tmp_path / "exp", progress=False)
        ids = {name: u.id for name, u in users.items()}
        study_id = study.id
    monkeypatch.setenv("TURINGCT_DATABASE_URL", db_url)
    monkeypatch.setenv("TURINGCT_DATA_DIR", str(tmp_path / "data"))  # exports from the app
    return AppDB(db_url, engine, study_id, ids)


def new_app(db: AppDB, user: str | None = None, role: str = "reader"):
    """An AppTest of ``app/main.py``, logged in as ``user`` (without the login form) if given."""
    from streamlit.testing.v1 import AppTest

    from app.state import LOGIN_KEY, Login, now

    at = AppTest.from_file(str(MAIN), default_timeout=60)
    if user is not None:
        at.session_state[LOGIN_KEY] = Login(
            db.users[user], user, role, now(), login_token(db, user)
        )
    return at


def login_token(db: AppDB, user: str) -> str:
    """A live login session for ``user`` (what the login form opens), its token."""
    from db.models import User
    from db.session import session_scope
    from studies import sessions

    with session_scope(db.engine) as s:
        return sessions.start(s, s.get(User, db.users[user]), "test")


def shown(markdown: str) -> str:
    """What a markdown body shows once its backslash escapes are applied (pages escape user
    text with ``app.safe_text``)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(markdown))


def texts(at) -> str:
    """Everything the page shows as text (markdown, titles, alerts, captions), one string."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
        "text",
    ):
        parts += [shown(getattr(e, "value", "")) for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.fixture
def delivered(monkeypatch) -> dict[str, bytes]:
    """File name -> bytes of every file a page hands to the browser with
    ``app.secure_download`` (recorded when the button is pressed)."""
    from app import secure_download

    seen: dict[str, bytes] = {}
    original = secure_download.pack

    def spy(content, file_name, mime):
        seen[file_name] = content
        return original(content, file_name, mime)

    monkeypatch.setattr(secure_download, "pack", spy)
    return seen


def download(at, label: str, delivered: dict[str, bytes]) -> tuple[bytes, str]:
    """Press the secure download button ``label``; (bytes, file name) the browser gets."""
    before = dict(delivered)
    button(at, label).click()
    at.run()
    assert not at.exception, at.exception
    (name,) = [n for n in delivered if delivered[n] is not before.get(n)]
    return delivered[name], name


def button(at, label: str):
    """The (form) button with this label."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]

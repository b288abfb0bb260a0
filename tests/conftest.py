"""Shared fixtures: the real CT files beside the project, and a fresh database per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real CT files; see its README). Skips when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real CT test data not found at {SHARED_DATA} (the ../shared/data folder "
                    "beside the repository); CI always has it")
    return SHARED_DATA


@pytest.fixture
def db_url(tmp_path) -> str:
    """A migrated, empty database: SQLite in tmp_path, or PostgreSQL when
    TURINGCT_TEST_POSTGRES_URL is set (each test then gets its own fresh schema)."""
    from db.session import upgrade

    pg = os.environ.get("TURINGCT_TEST_POSTGRES_URL")
    if pg:
        url = _fresh_postgres_database(pg, tmp_path.name)
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url):
    from db.session import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _fresh_postgres_database(admin_url: str, name: str) -> str:
    import re

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    db_name = "t_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:50]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}"'))
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=db_name).render_as_string(hide_password=False)

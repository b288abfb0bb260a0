"""Fixtures for the study tests: a small catalog and a built study in a fresh database."""

from __future__ import annotations

import pytest

from db.session import session_scope
from studies.accounts import OPERATOR
from tests.studies._catalog import build_catalog, spec_dict


@pytest.fixture
def catalog(engine, tmp_path):
    """4 phantom-lesion + 4 synthetic liver volumes on disk and in the catalog."""
    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "cat")
    return engine


@pytest.fixture
def study(catalog, tmp_path):
    """A built 6-case turing study with readers ann and bob; returns (engine, study_id)."""
    from studies.admin import create_study

    with session_scope(catalog) as s:
        st = create_study(
            s, spec_dict(), actor=OPERATOR, export_root=tmp_path / "exp", progress=False
        )
        study_id = st.id
    return catalog, study_id

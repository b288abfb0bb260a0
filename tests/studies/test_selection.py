"""Case selection: arms from the catalog, seeded draws, clear errors when too few cases."""

from __future__ import annotations

import pytest

from db.session import session_scope
from studies.errors import SelectionError
from studies.selection import select_cases
from studies.spec import parse_spec
from tests.studies._catalog import build_catalog, spec_dict


def test_arms_counts_and_determinism(catalog):
    spec = parse_spec(spec_dict())
    with session_scope(catalog) as s:
        first = select_cases(s, spec)
        again = select_cases(s, spec)
    assert first == again
    real = [c for c in first if c.arm.value == "real"]
    syn = [c for c in first if c.arm.value == "synthetic"]
    assert len(real) == 3 and len(syn) == 3
    assert {c.tumor_kind for c in real} == {"phantom_lesion"}  # demo real arm, marked
    assert {c.method for c in syn} == {"handcrafted"} and {c.source.split("/")[0] for c in syn} == {
        "synthetic"
    }
    assert len({c.volume_id for c in first}) == 6


def test_other_seed_other_draw(catalog):
    with session_scope(catalog) as s:
        draws = {
            tuple(c.volume_id for c in select_cases(s, parse_spec(spec_dict(seed=k))))
            for k in range(6)
        }
    assert len(draws) > 1


def test_too_many_cases_says_how_many_exist(catalog):
    spec = parse_spec(spec_dict(cases_per_organ={"real": 9, "synthetic": 1}), source="s.yaml")
    with session_scope(catalog) as s, pytest.raises(SelectionError) as err:
        select_cases(s, spec)
    msg = str(err.value)
    assert msg.startswith(
        "s.yaml: cases_per_organ.real (liver) asks for 9 cases but the catalog has 4 matching;"
    )
    assert "lower the count" in msg


def test_size_filter_and_missing_organ(catalog):
    with session_scope(catalog) as s:
        spec = parse_spec(spec_dict(selection={"tumor_diameter_mm": [30, 60]}))
        with pytest.raises(
            SelectionError,
            match=r"has 0 matching with tumor diameter in "
            r"\[30.0, 60.0\] mm",
        ):
            select_cases(s, spec)
        with pytest.raises(SelectionError, match=r"\(pancreas\) asks for 3 cases .* has 0"):
            select_cases(s, parse_spec(spec_dict(organs=["pancreas"])))


def test_per_method_counts(engine, tmp_path):
    with session_scope(engine) as s:
        build_catalog(s, tmp_path, n_real=2, n_synthetic=4, methods=("a", "b"))
        spec = parse_spec(spec_dict(cases_per_organ={"real": 2, "synthetic": {"a": 2, "b": 1}}))
        picked = select_cases(s, spec)
        assert sorted(c.method for c in picked if c.method) == ["a", "a", "b"]
        with pytest.raises(SelectionError, match=r"synthetic.a \(liver\) asks for 3 .* has 2"):
            select_cases(
                s, parse_spec(spec_dict(cases_per_organ={"real": 1, "synthetic": {"a": 3}}))
            )

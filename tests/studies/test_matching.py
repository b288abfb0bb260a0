"""Size-matched arms: optimal pairing, achieved-match report, audit of size alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import ks_2samp, mannwhitneyu

from db.session import session_scope
from studies.accounts import OPERATOR
from studies.admin import create_study, show_study
from studies.matching import assign_nearest, balance, size_match_line, target_diameters
from studies.selection import select_cases, size_match_report
from studies.spec import parse_spec
from tests.studies._catalog import build_catalog, spec_dict


def test_assign_nearest_is_optimal_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        targets = rng.uniform(5, 30, 4)
        pool = rng.uniform(5, 60, 7)
        picked = assign_nearest(targets, pool)
        assert len(set(picked)) == 4
        best = min(
            sum(abs(t - pool[j]) for t, j in zip(targets, perm, strict=True))
            for perm in itertools.permutations(range(7), 4)
        )
        assert sum(abs(targets - pool[picked])) == pytest.approx(best)


def test_target_diameters_cover_the_real_arm():
    real = [20.0, 11.0, 26.0, 15.0]
    same, idx = target_diameters(real, 4)
    assert sorted(same) == sorted(real) and sorted(idx) == [0, 1, 2, 3]
    fewer, idx2 = target_diameters(real, 2)
    np.testing.assert_array_equal(fewer, [np.asarray(real)[i] for i in idx2])
    assert list(fewer) == [15.0, 26.0]  # ranks 1 and 3 of 4: spread over the range


def test_balance_matches_scipy():
    r, s = [11.0, 14.0, 19.0, 26.0], [16.0, 30.0, 45.0, 64.0]
    out = balance(r, s, [(11.0, 16.0), (26.0, 30.0)])
    assert out["mannwhitney_p"] == round(mannwhitneyu(r, s).pvalue, 4)
    assert out["ks_p"] == round(ks_2samp(r, s).pvalue, 4)
    assert out["median_abs_diff_mm"] == 4.5
    assert out["real_range_mm"] == [11.0, 26.0] and out["synthetic_range_mm"] == [16.0, 64.0]


def _sized_catalog(engine, root):
    # the reported study: real lesions small, synthetic ones spread over a much wider range
    real = list(np.linspace(2.5, 5.0, 8))
    synthetic = list(np.linspace(3.0, 9.0, 16))
    with session_scope(engine) as s:
        build_catalog(s, root, n_real=8, n_synthetic=16, radii_mm=real + synthetic)


def test_default_turing_study_is_size_matched(engine, tmp_path):
    _sized_catalog(engine, tmp_path / "c")
    counts = {"real": 6, "synthetic": 6}
    assert parse_spec(spec_dict()).match == "size"  # on by default for turing
    with session_scope(engine) as s:
        unmatched = size_match_report(
            select_cases(
                s, parse_spec(spec_dict(cases_per_organ=counts, selection={"match": "none"}))
            )
        )
        matched = size_match_report(select_cases(s, parse_spec(spec_dict(cases_per_organ=counts))))
    # without matching the arms differ by size; with it they pair up within a millimetre
    assert unmatched["mannwhitney_p"] < 0.05 and unmatched["pairs"] == []
    assert matched["mannwhitney_p"] > 0.5 and matched["ks_p"] > 0.5
    assert len(matched["pairs"]) == 6 and matched["median_abs_diff_mm"] < 1.0
    for p in matched["pairs"]:
        assert abs(p["real_mm"] - p["synthetic_mm"]) < 1.5


def test_study_reports_match_and_size_audit(engine, tmp_path):
    _sized_catalog(engine, tmp_path / "c")
    counts = {"real": 6, "synthetic": 6}
    with session_scope(engine) as s:
        st = create_study(
            s,
            spec_dict(name="m", readers=[], cases_per_organ=counts),
            actor=OPERATOR,
            export_root=tmp_path / "e",
            progress=False,
        )
        off = create_study(
            s,
            spec_dict(name="u", readers=[], cases_per_organ=counts, selection={"match": "none"}),
            actor=OPERATOR,
            export_root=tmp_path / "e",
            progress=False,
        )
        info, info_off = show_study(s, OPERATOR, st.id), show_study(s, OPERATOR, off.id)
        codes = {c.code for c in st.cases}
    match = info["size_match"]
    assert match["match"] == "size" and len(match["pairs"]) == 6
    assert {p["real"] for p in match["pairs"]} | {
        p["synthetic"] for p in match["pairs"]
    } <= codes  # pairs are named by blinded codes, not catalog sources
    assert "median |real - synthetic|" in size_match_line(match)
    # the audit reports size alone as a separating feature, and warns only when unmatched
    assert info["audit"]["size_auc"] < 0.75
    assert info_off["audit"]["size_auc"] > 0.8 and info_off["audit"]["size_p_value"] < 0.05
    assert "lesion size alone separates the arms" in info_off["audit"]["warning"]
    assert "lesion size alone" not in (info["audit"]["warning"] or "")


def test_match_spec_key_validated_and_round_trips():
    from studies.errors import SpecError

    spec = parse_spec(spec_dict(selection={"match": "none"}))
    assert parse_spec(spec.to_dict()).match == "none"
    assert parse_spec(spec_dict(design="organ_origin", organs=["liver", "kidney"])).match == "none"
    with pytest.raises(SpecError, match="selection.match must be one of size, none"):
        parse_spec(spec_dict(selection={"match": "diameter"}))

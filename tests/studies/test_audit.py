"""Blinding audit: chance when arms are matched, high AUC and a warning when they differ."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from db.session import session_scope
from studies.accounts import OPERATOR
from studies.admin import create_study
from studies.audit import (
    auc_mann_whitney,
    context_features,
    loo_ridge_scores,
    run_audit,
    standardize,
)
from tests.studies._catalog import build_catalog, spec_dict


def test_mann_whitney_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 30)
        y[:2] = [0, 1]
        s = np.round(rng.normal(size=30), 1)  # ties on purpose
        assert auc_mann_whitney(y, s) == pytest.approx(roc_auc_score(y, s))


def test_context_excludes_the_tumor():
    ct = np.full((20, 20, 20), 40.0)
    tumor = np.zeros(ct.shape, bool)
    tumor[8:12, 8:12, 8:12] = True
    ct[tumor] = 5000.0  # only the tumor differs: the context must not see it
    f = context_features(ct, tumor, (1.0, 1.0, 1.0))
    assert f["ctx_mean"] == 40.0 and f["ctx_p99"] == 40.0 and f["ctx_std"] == 0.0
    assert f["ctx_fraction"] == pytest.approx(1 - 14**3 / 20**3)  # dilated by 5 voxels


def test_loo_ridge_matches_sklearn_leave_one_out():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    rng = np.random.default_rng(0)
    X = standardize(rng.normal(size=(15, 4)))
    y = (rng.random(15) > 0.5).astype(int)
    expected = cross_val_predict(Ridge(alpha=10.0), X, y, cv=LeaveOneOut())
    np.testing.assert_allclose(loo_ridge_scores(X, y, 10.0), expected, atol=1e-12)


def test_false_alarm_rate_holds_under_the_null():
    # 20 cases with 15 correlated features and no arm signal: a calibrated audit warns in
    # about 5% of studies (a bootstrap CI alone warned in ~15%).
    warnings = 0
    for k in range(100):
        rng = np.random.default_rng(k)
        X = rng.normal(size=(20, 3)) @ rng.normal(size=(3, 15)) + 0.3 * rng.normal(size=(20, 15))
        feats = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in X]
        warnings += run_audit(feats, [0] * 10 + [1] * 10, seed=k).warning is not None
    assert warnings <= 10


def _features(rng, n, shift):
    return [
        {"a": float(rng.normal(shift)), "b": float(rng.normal()), "const": 1.0} for _ in range(n)
    ]


def test_run_audit_chance_vs_leak():
    rng = np.random.default_rng(1)
    same = run_audit(_features(rng, 20, 0) + _features(rng, 20, 0), [0] * 20 + [1] * 20, seed=0)
    assert same.p_value > 0.05 and same.warning is None
    leak = run_audit(_features(rng, 20, 0) + _features(rng, 20, 3), [0] * 20 + [1] * 20, seed=0)
    assert leak.auc > 0.9 and leak.ci_low > 0.5 and leak.p_value < 0.01
    assert "most separating: a (AUC" in leak.warning
    assert leak.top_features[0][0] == "a"
    assert "WARNING" in leak.summary()
    assert run_audit(_features(rng, 1, 0) + _features(rng, 5, 0), [0] + [1] * 5, seed=0).auc is None


def _study_audit(engine, root, **synthetic_opts):
    with session_scope(engine) as s:
        build_catalog(
            s, root / "c", n_real=10, n_synthetic=10, seed=0, synthetic_opts=synthetic_opts
        )
        st = create_study(
            s,
            spec_dict(readers=[], cases_per_organ={"real": 10, "synthetic": 10}),
            actor=OPERATOR,
            export_root=root / "e",
            progress=False,
        )
        return st.audit


def test_study_audit_matched_arms_near_chance(engine, tmp_path):
    audit = _study_audit(engine, tmp_path)
    assert audit["ci_low"] <= 0.5 <= audit["ci_high"] and audit["p_value"] > 0.05
    assert audit["warning"] is None and audit["n_real"] == audit["n_synthetic"] == 10


def test_study_audit_flags_a_noisier_arm(engine, tmp_path):
    # same anatomy and tumors, but the synthetic arm comes from a quieter "scanner"
    audit = _study_audit(engine, tmp_path, noise=5.0)
    assert audit["auc"] >= 0.9 and audit["ci_low"] > 0.5 and audit["p_value"] < 0.01
    assert audit["warning"] and "ctx_" in audit["warning"]


def test_size_alone_is_reported_and_warns():
    rng = np.random.default_rng(0)
    feats = _features(rng, 10, 0) + _features(rng, 10, 0)
    y = [0] * 10 + [1] * 10
    small, large = list(rng.uniform(11, 26, 10)), list(rng.uniform(16, 64, 10))
    out = run_audit(feats, y, seed=0, lesion_diameters_mm=small + large)
    a = roc_auc_score(y, small + large)
    assert out.size_auc == pytest.approx(max(a, 1 - a), abs=1e-4)
    assert out.size_p_value < 0.05 and "lesion size alone separates the arms" in out.warning
    same = run_audit(feats, y, seed=0, lesion_diameters_mm=small + small[::-1])
    assert same.size_auc == 0.5 and "lesion size" not in (same.warning or "")
    assert run_audit(feats, y, seed=0).size_auc is None

"""Dashboard and study report: stored machine Turing test results (kind ``realism``).

Study t1 is a liver study: its dashboard shows the realism result attached to it and the
unattached liver pre-screen, never a kidney pre-screen; the report has the same figures and
the pre-screen's tables.
"""

from __future__ import annotations

import json

import pandas as pd

from tests.app.conftest import texts
from tests.app.test_dashboard import _dashboard, _figures, _title


def _table(method: str, auc: float, organ: str = "liver") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": [method] * 2,
            "organ": organ,
            "discriminator": ["radiomics-logreg", "cnn"],
            "auc": [auc, auc - 0.1],
            "auc_ci_low": [auc - 0.2, auc - 0.3],
            "auc_ci_high": [auc + 0.1, auc],
            "p_value": [0.01, float("nan")],
            "n_real": 9,
            "n_synthetic": 9,
            "n_volumes": 3,
            "n_folds": 3,
            "frd": 4.2,
            "frd_n_features": 180,
        }
    )


def _features(method: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": method,
            "organ": "liver",
            "rank": [1, 2],
            "feature": ["original_firstorder_Mean", "original_glcm_Idm"],
            "region": ["tumor", "rim"],
            "auc": [0.95, 0.1],
            "higher_in": ["real", "synthetic"],
            "median_real": [80.0, 0.3],
            "median_synthetic": [40.0, 0.6],
            "p_mannwhitney": [0.001, 0.004],
        }
    )


def _store(db) -> None:
    from db.session import session_scope
    from evaluation.store import store_result

    with session_scope(db.engine) as s:
        for name, method, organ, study in (
            ("machine Turing test liver: pixel2cancer", "pixel2cancer", "liver", "t1"),
            ("machine Turing test liver: handcrafted", "handcrafted", "liver", None),
            ("machine Turing test kidney: handcrafted", "handcrafted", "kidney", None),
        ):
            store_result(
                s,
                "realism",
                name,
                study=study,
                params={"organ": organ},
                tables={
                    "realism": _table(method, 0.8, organ),
                    "realism_features": _features(method),
                },
                conventions={"chance": "AUC 0.5; lower is more realistic"},
            )


def test_dashboard_without_realism_says_how_to_run_it(app_db):
    at = _dashboard(app_db)
    assert (
        "turingct evaluate realism --real DATASET_OR_DIR --synthetic DIR_OR_METHOD ... "
        "--organ ORGAN --store --for-study t1"
    ) in texts(at)


def test_dashboard_shows_the_study_and_organ_realism_results(app_db):
    _store(app_db)
    at = _dashboard(app_db)
    forests = [f for f in _figures(at) if _title(f).startswith("machine Turing test")]
    assert [_title(f).split(":")[0] for f in forests] == ["machine Turing test liver"] * 2
    assert "kidney" not in " ".join(_title(f) for f in forests)
    frames = [d.value for d in at.dataframe]
    tables = [f for f in frames if "discriminator" in f.columns]
    features = [f for f in frames if "higher_in" in f.columns]
    assert {m for t in tables for m in t.method} == {"pixel2cancer", "handcrafted"}
    assert len(features) == 2 and features[0]["feature"].iloc[0] == "original_firstorder_Mean"
    shown = texts(at)
    assert "Which features give a method away" in shown
    assert "(this study)" in shown and "pre-screen, not tied to a study" in shown


def test_report_has_realism_figures_and_prescreen_tables(app_db):
    from db.session import session_scope
    from evaluation.study_report import collect_report

    _store(app_db)
    with session_scope(app_db.engine) as s:
        parts = collect_report(s, "t1", include_key=False, n_boot=20)
    titles = [f.layout.title.text for f in parts.figures]
    assert sum(t.startswith("machine Turing test liver") for t in titles) == 2
    names = set(parts.tables)
    # attached: the generic stored section; pre-screen: added by the realism section
    assert "realism_machine_Turing_test_liver_pixel2cancer_realism" in names
    assert "realism_machine_Turing_test_liver_handcrafted" in names
    assert "realism_machine_Turing_test_liver_handcrafted_features" in names
    assert not any("kidney" in n for n in names)
    spec = json.loads(parts.figures[-1].to_json())
    assert {t["name"] for t in spec["data"]} == {"radiomics-logreg", "cnn"}

"""Dashboard: reader metrics of a study with answers, stored FID/FRD/DSC-NSD/radiomics results
drawn from the database (or the CLI command that makes each missing one), report download."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from tests.app.conftest import button, delivered, download, new_app, texts  # noqa: F401
from tests.app.test_researcher import _answer


def _dashboard(db):
    at = new_app(db, "rita", "researcher").run()
    at.switch_page("pages_/dashboard.py").run()
    assert not at.exception, at.exception
    return at


def _figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _values(v) -> list:
    """A trace's data array: plotly may ship numbers as base64 typed arrays."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _title(fig: dict) -> str:
    title = fig["layout"].get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


@pytest.fixture
def answered(app_db):
    """ann and bob answered the same first 4 cases of their own orders."""
    _answer(app_db, "ann", ["real", "synthetic", "unsure", "real"])
    _answer(app_db, "bob", ["synthetic", "synthetic", "real", "real"])
    return app_db


def _store_results(db) -> dict[str, pd.DataFrame]:
    """FID of two methods (one extractor), FRD, DSC/NSD and a radiomics run, stored for t1."""
    from db.session import session_scope
    from evaluation.radiomics import summarize_svm
    from evaluation.store import store_result

    fid = {
        m: pd.DataFrame(
            {
                "plane": ["axial", "coronal", "sagittal", "average"],
                "fid": [v, v + 1.0, v + 2.0, v + 1.0],
                "extractor": "random-conv-v1",
            }
        )
        for m, v in (("handcrafted", 3.0), ("pixel2cancer", 7.5))
    }
    seg = pd.DataFrame({"case": ["a", "b", "c"], "dsc": [0.8, 0.6, 0.9], "nsd": [0.85, 0.7, 0.95]})
    frd = pd.DataFrame(
        {
            "organ": ["all"],
            "frd": [2.3],
            "d2": [9.97],
            "n_features": [40],
            "n_real": [3],
            "n_synthetic": [3],
        }
    )
    splits = pd.DataFrame(
        {
            "split": [0, 1, 2],
            "train_precision": [0.9, 0.8, 1.0],
            "train_recall": [0.9, 0.7, 1.0],
            "test_precision": [0.5, 0.6, 0.4],
            "test_recall": [0.4, 0.6, 0.5],
        }
    )
    tsne = pd.DataFrame(
        {
            "organ": ["liver", "liver", "kidney", "kidney"],
            "arm": ["real", "synthetic", "real", "synthetic"],
            "tsne_1": [0.0, 1.0, 5.0, 6.0],
            "tsne_2": [0.0, 1.0, 5.0, 6.5],
        }
    )
    with session_scope(db.engine) as s:
        for method, table in fid.items():
            store_result(
                s,
                "fid",
                f"FID random-conv-v1 {method}",
                tables={"fid": table},
                params={"extractor": "random-conv-v1", "method": method},
                study="t1",
            )
        store_result(
            s,
            "seg",
            "DSC/NSD handcrafted",
            tables={"seg": seg},
            params={"tolerance_mm": 2.0},
            study="t1",
        )
        store_result(s, "frd", "FRD", tables={"frd": frd}, study="t1")
        store_result(
            s,
            "radiomics",
            "radiomics organ origin",
            params={"seed": 4},
            tables={"svm_summary": summarize_svm(splits), "tsne": tsne},
            study="t1",
        )
        # a result of another study (none attached to a study here) must not show up
        store_result(
            s, "seg", "unrelated", tables={"seg": seg.assign(dsc=0.1)}, params={"tolerance_mm": 5.0}
        )
    return {"fid_handcrafted": fid["handcrafted"], "fid_pixel2cancer": fid["pixel2cancer"]}


def test_dashboard_draws_reader_metrics_and_says_how_to_get_model_metrics(answered):
    at = _dashboard(answered)
    titles = [_title(f) for f in _figures(at)]
    assert titles[0].startswith("Reader performance (real tumor = positive; unsure exclude")
    assert [t.split(" ")[0] for t in titles] == ["Reader", "Specificity", "Cohen's", "Time"]
    # the reader table has one row per reader x organ (+ all-organ rows): ann and bob appear
    table = _figures(at)[0]["data"][0]["cells"]["values"]
    assert {"ann", "bob"} <= set(table[0])
    shown = texts(at)
    for command in (
        "turingct evaluate fid --real REAL_DIR --synthetic SYNTHETIC_DIR --store --for-study t1",
        "turingct evaluate frd --cases cases.csv --store --for-study t1",
        "turingct evaluate seg --pred PRED_DIR --truth TRUTH_DIR --tolerance-mm 2 "
        "--store --for-study t1",
        "turingct evaluate radiomics --study t1 --out-dir radiomics --store",
        "turingct evaluate realism --real DATASET_OR_DIR --synthetic DIR_OR_METHOD "
        "... --organ ORGAN --store --for-study t1",
    ):
        assert command in shown
    # both answered the same 4 cases, only one synthetic: not an MRMC design yet, and the page
    # says why
    assert (
        "MRMC analysis not available: modality 'handcrafted' has 3 positive and 1 negative "
        "cases" in [i.value for i in at.info]
    )
    assert len(at.info) == 6  # + the machine Turing test hint (none stored)


def test_dashboard_draws_the_mrmc_analysis_when_every_case_is_answered(app_db):
    _answer(app_db, "ann", ["real", "synthetic", "unsure", "real", "real", "synthetic"])
    _answer(app_db, "bob", ["synthetic", "synthetic", "real", "real", "unsure", "real"])
    at = _dashboard(app_db)
    mrmc = [f for f in _figures(at) if _title(f).startswith("MRMC ROC AUC")]
    assert len(mrmc) == 1
    assert "Hillis" in _title(mrmc[0])
    table = next(d.value for d in at.dataframe if "analysis" in d.value.columns)
    assert {"auc", "rrrc", "frrc", "rrfc"} <= set(table.analysis)


def test_dashboard_shows_stored_fid_seg_frd_and_radiomics(answered):
    stored = _store_results(answered)
    at = _dashboard(answered)
    # every stored kind is drawn; only MRMC (not a crossed design here) and the machine
    # Turing test (none stored here) have a hint
    missing = [
        i.value
        for i in at.info
        if not i.value.startswith("MRMC analysis") and "evaluate realism" not in i.value
    ]
    assert not missing, missing
    figs = {_title(f).split(",")[0].split(" (")[0].split(" of ")[0]: f for f in _figures(at)}
    fid = figs["FID per plane"]
    assert "random-conv-v1" in _title(fid)
    bars = {t["name"]: _values(t["y"]) for t in fid["data"]}
    assert bars == {m: stored[f"fid_{m}"]["fid"].tolist() for m in ("handcrafted", "pixel2cancer")}
    seg = figs["Segmentation DSC / NSD"]
    assert "NSD tolerance 2 mm" in _title(seg)
    boxes = {t["name"]: _values(t["y"]) for t in seg["data"]}
    assert sorted(boxes) == ["DSC", "NSD"]  # one result of this study; the unrelated one: not
    assert boxes["DSC"] == pytest.approx([80.0, 60.0, 90.0])
    assert boxes["NSD"] == pytest.approx([85.0, 70.0, 95.0])
    tsne = figs["t-SNE"]
    assert sorted(t["name"] for t in tsne["data"]) == [
        "kidney (real)",
        "kidney (synthetic)",
        "liver (real)",
        "liver (synthetic)",
    ]
    svm = figs["Organ origin: SVM on radiomics vs readers"]
    precision = next(t for t in svm["data"] if t["name"] == "precision")
    assert _values(precision["y"]) == pytest.approx(
        [90.0, 50.0]
    )  # mean train / test over the splits
    (frd,) = [d.value for d in at.dataframe if "frd" in d.value.columns]
    assert frd["frd"].tolist() == [2.3]


def test_dashboard_report_download_is_the_study_report(answered, delivered):  # noqa: F811
    from app import admin_ui, dashboard_ui
    from studies.errors import AccessDenied

    _store_results(answered)
    at = _dashboard(answered)
    assert not delivered and not at.get("download_button")  # built only when asked for
    content, file_name = download(at, "Download report", delivered)
    assert file_name == "t1-report.html"
    html = content.decode()  # what the browser receives on click
    assert html.startswith("<!DOCTYPE html>") and "Study report: t1" in html
    for part in (
        "reader_table",
        "unblinding_key",
        "fid_FID_random-conv-v1_handcrafted_fid",
        "radiomics_radiomics_organ_origin_svm_summary",
    ):
        assert f"<h3>{part}</h3>" in html
    with pytest.raises(AccessDenied):  # the deferred build re-checks the role by user id
        admin_ui.staff_call_by_id(
            answered.users["ann"], dashboard_ui.report_html, answered.study_id
        )


def test_dashboard_of_a_study_without_answers_says_why(app_db):
    at = _dashboard(app_db)
    assert "no 'truth' answers yet" in texts(at)
    assert not at.get("plotly_chart")
    button(at, "Download report")  # offered (built on click, app.secure_download)

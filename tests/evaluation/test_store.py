"""Stored evaluation results: round trip of tables (NaN kept), latest-per-name, study link."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from db.session import session_scope
from evaluation.store import (
    latest_results,
    records_table,
    result_tables,
    store_result,
    table_records,
)
from evaluation.tables import EvaluationInputError


def test_records_round_trip_keeps_nan_and_order():
    df = pd.DataFrame(
        {
            "reader": ["a", "b"],
            "sensitivity": [0.5, np.nan],
            "n": np.array([3, 4], dtype=np.int64),
            "ok": [True, False],
        }
    )
    payload = table_records(df)
    assert payload["records"][1]["sensitivity"] is None  # JSON has no NaN
    back = records_table(payload)
    assert list(back.columns) == ["reader", "sensitivity", "n", "ok"]
    assert back.sensitivity.iloc[0] == 0.5 and math.isnan(back.sensitivity.iloc[1])
    assert back.n.tolist() == [3, 4] and back.reader.tolist() == ["a", "b"]


def _study(session, name="s1"):
    from db.models import Study, StudyDesign

    study = Study(name=name, design=StudyDesign.TURING, spec={}, seed=1, export_dir="/x")
    session.add(study)
    session.flush()
    return study.id


def test_store_and_latest(engine):
    table = pd.DataFrame({"plane": ["axial", "average"], "fid": [12.5, float("nan")]})
    with session_scope(engine) as s:
        sid = _study(s)
        first = store_result(
            s,
            "fid",
            "fid random-conv-v1",
            tables={"fid": table},
            conventions={"extractor": "random-conv-v1"},
            params={"seed": 0},
            summary={"average": np.float32(12.5)},
            study="s1",
        )
        assert first.study_id == sid and first.code_version
        second = store_result(
            s, "fid", "fid random-conv-v1", tables={"fid": table.iloc[:1]}, study=sid
        )
        store_result(s, "seg", "seg", tables={"seg": pd.DataFrame({"dsc": [0.7]})})
        first_id, second_id = first.id, second.id
    with session_scope(engine) as s:
        rows = latest_results(s, study="s1")
        assert [(r.kind, r.id) for r in rows] == [("fid", second_id)]  # newest wins
        assert first_id != second_id
        assert len(latest_results(s)) == 2  # the unlinked seg result too
        got = result_tables(latest_results(s, kind="fid")[0])["fid"]
        assert got.plane.tolist() == ["axial"]
        older = s.get(type(rows[0]), first_id)
        assert older.result["summary"]["average"] == pytest.approx(12.5)
        assert "extractor: random-conv-v1" in older.result["conventions_text"]
        with pytest.raises(EvaluationInputError, match="does not exist"):
            latest_results(s, study="nope")
        with pytest.raises(ValueError, match="kind must be"):
            store_result(s, "x" * 40, "n", tables={})


def _three_organ_catalog(engine, root):
    from tests.studies._catalog import build_catalog

    with session_scope(engine) as s:
        for organ in ("liver", "pancreas", "kidney"):
            build_catalog(s, root, organ=organ, n_real=4, n_synthetic=2, seed=len(organ))


def test_radiomics_from_catalog_stored(engine, db_url, tmp_path):
    from turingct.cli import main

    _three_organ_catalog(engine, tmp_path / "cat")
    out = tmp_path / "rad"
    assert (
        main(
            [
                "evaluate",
                "radiomics",
                "--from-catalog",
                "--out-dir",
                str(out),
                "--splits",
                "3",
                "--store",
                "--db",
                db_url,
            ]
        )
        == 0
    )
    feats = pd.read_csv(out / "features.csv")
    assert len(feats) == 18 and feats.organ.value_counts().to_dict() == {
        "kidney": 6,
        "liver": 6,
        "pancreas": 6,
    }
    assert set(feats.arm) == {"real", "synthetic"}
    assert set(feats.tumor_kind) == {"phantom_lesion", "synthetic"}
    assert set(feats.method.dropna()) == {"handcrafted"}
    assert feats["original_shape_VoxelVolume"].gt(0).all()
    comparison = pd.read_csv(out / "origin_comparison.csv")
    assert comparison.who.tolist() == ["SVM train", "SVM test"]
    with session_scope(engine) as s:
        (row,) = latest_results(s, kind="radiomics")
        assert row.study_id is None
        assert result_tables(row)["svm_summary"].n_splits.iloc[0] == 3
    # a dataset filter and an organ filter narrow the tumors
    assert (
        main(
            [
                "evaluate",
                "radiomics",
                "--from-catalog",
                "--dataset",
                "phantoms",
                "--organ",
                "liver",
                "--organ",
                "kidney",
                "--out-dir",
                str(tmp_path / "r2"),
                "--splits",
                "2",
                "--db",
                db_url,
            ]
        )
        == 0
    )
    narrowed = pd.read_csv(tmp_path / "r2" / "features.csv")
    assert len(narrowed) == 8 and set(narrowed.arm) == {"real"}


def test_radiomics_for_organ_origin_study_has_readers(engine, db_url, tmp_path):
    from datetime import UTC, datetime

    from sqlalchemy import select

    from db.models import Answer, StudyCase, User
    from studies.accounts import OPERATOR
    from studies.admin import create_study
    from tests.studies._catalog import spec_dict
    from turingct.cli import main

    _three_organ_catalog(engine, tmp_path / "cat")
    spec = spec_dict(
        name="orig",
        design="organ_origin",
        organs=["liver", "pancreas", "kidney"],
        readers=["ann"],
        cases_per_organ={"real": 2, "synthetic": 2},
    )
    with session_scope(engine) as s:
        st = create_study(s, spec, actor=OPERATOR, export_root=tmp_path / "exp", progress=False)
        ann = s.scalar(select(User).where(User.username == "ann"))
        for case in s.scalars(select(StudyCase).where(StudyCase.study_id == st.id)):
            # ann always answers liver: recall 1 for liver, 0 for the others
            s.add(
                Answer(
                    study_id=st.id,
                    case_id=case.id,
                    reader_id=ann.id,
                    question="origin",
                    value="liver",
                    seconds_on_case=3.0,
                    displayed_at=datetime.now(UTC),
                    idempotency_key=f"ann-{case.code}",
                )
            )
    out = tmp_path / "rad"
    assert (
        main(
            [
                "evaluate",
                "radiomics",
                "--study",
                "orig",
                "--out-dir",
                str(out),
                "--splits",
                "3",
                "--store",
                "--db",
                db_url,
            ]
        )
        == 0
    )
    feats = pd.read_csv(out / "features.csv")
    assert len(feats) == 12 and feats.case.str.len().gt(0).all()
    comparison = pd.read_csv(out / "origin_comparison.csv").set_index("who")
    # macro recall of "always liver" = (1 + 0 + 0) / 3; precision: liver 4/12, the organs never
    # predicted 0 (the SVM's rule, zero_division=0) -> (1/3 + 0 + 0) / 3
    assert comparison.loc["reader ann", "recall"] == pytest.approx(1 / 3)
    assert comparison.loc["reader ann", "precision"] == pytest.approx(1 / 9)
    with session_scope(engine) as s:
        (row,) = latest_results(s, kind="radiomics", study="orig")
        assert "readers_origin" in result_tables(row)


def test_seg_results_of_two_methods_are_stored_apart(engine, db_url, tmp_path):
    from evaluation.store import latest_results
    from synth_backend.io import save_volume
    from turingct.cli import main

    truth = np.zeros((10, 10, 10), np.uint8)
    truth[3:7, 3:7, 3:7] = 1
    for folder, shift in (("truth", 0), ("pred", 1)):
        save_volume(
            np.roll(truth, shift, axis=0), np.eye(4), tmp_path / folder / "c1.nii.gz", "mask"
        )
    for method in ("handcrafted", "pixel2cancer"):
        assert (
            main(
                [
                    "evaluate",
                    "seg",
                    "--pred",
                    str(tmp_path / "pred"),
                    "--truth",
                    str(tmp_path / "truth"),
                    "--out",
                    str(tmp_path / f"{method}.csv"),
                    "--store",
                    "--method",
                    method,
                    "--db",
                    db_url,
                ]
            )
            == 0
        )
    with session_scope(engine) as s:
        rows = [r for r in latest_results(s) if r.kind == "seg"]
    assert sorted(r.params["method"] for r in rows) == ["handcrafted", "pixel2cancer"]
    assert all(r.result["summary"]["dsc_mean"] == pytest.approx(0.75) for r in rows)

"""`turingct report STUDY`: a small blinded study with hand-made answers -> HTML + CSV tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from db.session import session_scope
from tests.studies._catalog import build_catalog, spec_dict
from turingct.cli import main

# ann calls everything real; bob is right except one unsure on a real case
ANSWERS = {
    "ann": {"real": ["real"] * 3, "synthetic": ["real"] * 3},
    "bob": {"real": ["real", "real", "unsure"], "synthetic": ["synthetic"] * 3},
}


@pytest.fixture
def study(engine, tmp_path):
    from sqlalchemy import select

    from db.models import Answer, StudyCase, User
    from evaluation.store import store_result
    from studies.accounts import OPERATOR
    from studies.admin import create_study

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "cat")
        st = create_study(
            s, spec_dict(name="rep"), actor=OPERATOR, export_root=tmp_path / "exp", progress=False
        )
        cases = s.scalars(
            select(StudyCase).where(StudyCase.study_id == st.id).order_by(StudyCase.code)
        ).all()
        for name, by_arm in ANSWERS.items():
            user = s.scalar(select(User).where(User.username == name))
            seen = {"real": 0, "synthetic": 0}
            for case in cases:
                arm = case.arm.value
                value = by_arm[arm][seen[arm]]
                seen[arm] += 1
                s.add(
                    Answer(
                        study_id=st.id,
                        case_id=case.id,
                        reader_id=user.id,
                        question="truth",
                        value=value,
                        seconds_on_case=4.0 + seen[arm],
                        displayed_at=datetime.now(UTC),
                        idempotency_key=f"{name}-{case.code}",
                    )
                )
        store_result(
            s,
            "seg",
            "alignment handcrafted",
            tables={
                "seg": pd.DataFrame({"case": ["a", "b"], "dsc": [0.8, 0.6], "nsd": [0.9, 0.7]})
            },
            conventions={"nsd": "2 mm"},
            params={"tolerance_mm": 2.0},
            study=st.id,
        )
        return st.name, [c.code for c in cases]


def test_report_cli(study, db_url, tmp_path):
    name, codes = study
    out = tmp_path / "r" / "report.html"
    assert main(["report", name, "--out", str(out), "--db", db_url, "--n-boot", "100"]) == 0
    html = out.read_text()
    assert f"Study report: {name}" in html and "blinding audit" in html
    assert "Specificity per reader" in html and "plotly" in html.lower()
    # the spec as YAML, line by line (it was one run-together line or a Python dict)
    assert "<pre>name: rep\ndesign: turing\norgans:\n- liver\n" in html
    assert "lesion size alone" in html and "size match" in html
    pairs = pd.read_csv(out.parent / "report_tables" / "size_matched_pairs.csv")
    assert len(pairs) == 3 and {"real_mm", "synthetic_mm"} <= set(pairs.columns)
    tables = out.parent / "report_tables"
    table = pd.read_csv(tables / "reader_table.csv").set_index(["reader", "organ"])
    ann, bob = table.loc[("ann", "liver")], table.loc[("bob", "liver")]
    assert (ann.tp, ann.fn, ann.tn, ann.fp) == (3, 0, 0, 3)
    assert ann.sensitivity == 1.0 and ann.specificity == 0.0 and ann.accuracy == 0.5
    assert (bob.tp, bob.tn, bob.n_unsure_real) == (2, 3, 1) and bob.accuracy == 1.0
    assert "unsure: exclude" in (tables / "reader_table.conventions.txt").read_text()
    counts = pd.read_csv(tables / "case_counts.csv", keep_default_na=False)
    assert counts.set_index("arm").n_cases.to_dict() == {"real": 3, "synthetic": 3}
    prov = pd.read_csv(tables / "method_provenance.csv")
    assert prov.method.tolist() == ["handcrafted"] and prov.n_cases.tolist() == [3]
    key = pd.read_csv(tables / "unblinding_key.csv")
    assert sorted(key.code) == sorted(codes) and set(key.arm) == {"real", "synthetic"}
    seg = pd.read_csv(tables / "seg_alignment_handcrafted_seg.csv")
    assert seg.dsc.tolist() == [0.8, 0.6]
    agree = pd.read_csv(tables / "agreement.csv")
    assert agree[["reader_a", "reader_b"]].values.tolist() == [["ann", "bob"]]
    times = pd.read_csv(tables / "time_per_case.csv").set_index("reader")
    assert times.loc["ann", "count"] == 6 and times.loc["ann", "max"] == 7.0
    # MRMC: ann (all real) has AUC 0.5, bob (real/unsure on reals, synthetic on the rest) 1
    mrmc = pd.read_csv(tables / "mrmc.csv", keep_default_na=False)
    single = mrmc[(mrmc.analysis == "rrrc") & (mrmc.quantity == "single")].iloc[0]
    assert single.modality == "handcrafted" and float(single.estimate) == pytest.approx(0.75)
    assert "realness" in (tables / "mrmc.conventions.txt").read_text()
    assert "MRMC ROC AUC" in html
    # both unsure conventions; bob's unsure real case counted wrong in the second
    wrong = pd.read_csv(tables / "reader_table_unsure_wrong.csv").set_index(["reader", "organ"])
    assert (wrong.loc[("bob", "liver"), "fn"], wrong.loc[("bob", "liver"), "accuracy"]) == (
        1,
        pytest.approx(5 / 6),
    )
    assert (
        "sensitivity analysis" in (tables / "reader_table_unsure_wrong.conventions.txt").read_text()
    )
    # Table-3 layout: metric rows x organ columns per reader, CSV and HTML (percent)
    t3 = pd.read_csv(tables / "table3.csv")
    assert list(t3.columns) == ["reader", "method", "metric", "liver", "all"]
    assert t3[t3.reader == "ann"].metric.tolist()[:3] == ["sensitivity", "specificity", "accuracy"]
    assert t3.set_index(["reader", "metric"]).loc[("bob", "n_unsure_real"), "liver"] == 1
    t3_html = html[html.index("<h3>table3</h3>") : html.index("<h3>table3_unsure_wrong</h3>")]
    assert "<td>50.0%</td>" in t3_html  # ann's accuracy, shown in percent
    # pooled per organ x method, not mixed
    pooled = pd.read_csv(tables / "pooled_bootstrap.csv")
    assert set(zip(pooled.organ, pooled.method, strict=True)) == {
        ("liver", "handcrafted"),
        ("liver", "all"),
        ("all", "handcrafted"),
        ("all", "all"),
    }
    mcn = pd.read_csv(tables / "mcnemar_readers.csv")
    assert mcn[["reader_a", "reader_b"]].values.tolist() == [["ann", "bob"]]
    assert mcn.a_wrong_b_right[0] == 3  # ann wrong on the 3 synthetic cases bob got right
    methods = pd.read_csv(tables / "method_comparison.csv", keep_default_na=False)
    assert methods[["method_a", "method_b"]].values.tolist() == [["handcrafted", "real"]]
    assert not (tables / "reader_auc.csv").exists()  # no confidence asked in this study
    # the conventions of a table sit right above it, not in one block elsewhere
    head = html.index("<h3>mcnemar_readers</h3>")
    assert head < html.index("McNemar exact", head) < html.index("<table", head)


def test_evaluate_mrmc_from_a_study(study, db_url, tmp_path, capsys):
    import json

    name, _ = study
    out = tmp_path / "mrmc.json"
    assert (
        main(["evaluate", "mrmc", "--study", name, "--db", db_url, "--out", str(out), "--store"])
        == 0
    )
    res = json.loads(out.read_text())
    assert res["modalities"] == ["handcrafted"] and sorted(res["readers"]) == ["ann", "bob"]
    assert res["auc"]["handcrafted"] == {"ann": 0.5, "bob": 1.0}
    single = res["rrrc"]["single"]["handcrafted"]
    assert single["auc"] == pytest.approx(0.75) and single["ci95"][0] < 0.75 < single["ci95"][1]
    assert res["rrrc"]["f"] is None and res["rrrc"]["differences"] == []  # one modality
    assert "stored as evaluation result" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                "mrmc",
                "--study",
                name,
                "--db",
                db_url,
                "--out",
                str(out),
                "--organ",
                "kidney",
            ]
        )
        == 2
    )
    assert "has no answers on kidney cases" in capsys.readouterr().err


def test_report_without_key_and_unknown_study(study, db_url, tmp_path, capsys):
    name, codes = study
    out = tmp_path / "nokey" / "report.html"
    assert (
        main(["report", name, "--out", str(out), "--db", db_url, "--no-key", "--n-boot", "50"]) == 0
    )
    assert not (out.parent / "report_tables" / "unblinding_key.csv").exists()
    assert not any(code in out.read_text() for code in codes)
    assert main(["report", "nope", "--out", str(out), "--db", db_url]) == 2
    assert "study 'nope' does not exist" in capsys.readouterr().err


def test_study_results_export_reads_back_as_the_same_reader_table(study, db_url, tmp_path):
    """`study results` writes code/arm/question/seconds_on_case; `evaluate readers --votes`
    reads them as case/truth/(this question)/seconds: the same table as `--study`."""
    name, _ = study
    export = tmp_path / "results.csv"
    assert main(["study", "results", name, "--out", str(export), "--db", db_url]) == 0
    from_csv, from_db = tmp_path / "csv.csv", tmp_path / "db.csv"
    assert main(["evaluate", "readers", "--votes", str(export), "--out", str(from_csv)]) == 0
    assert (
        main(["evaluate", "readers", "--study", name, "--db", db_url, "--out", str(from_db)]) == 0
    )
    a, b = pd.read_csv(from_csv), pd.read_csv(from_db)
    assert len(a) == 4
    pd.testing.assert_frame_equal(a, b)

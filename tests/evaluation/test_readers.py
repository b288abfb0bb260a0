"""Reader statistics against hand-derived values (real tumor = positive)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.readers import (
    TABLE_COLUMNS,
    binomial_p,
    organ_origin_confusion,
    organ_origin_table,
    read_votes,
    reader_table,
    validate_votes,
    wilson_interval,
)
from evaluation.tables import EvaluationInputError


def _votes(reader, organ, counts, method=None, start=0):
    """counts: {(truth, answer): n} -> rows with unique case ids."""
    rows, i = [], start
    for (truth, answer), n in counts.items():
        for _ in range(n):
            row = {
                "reader": reader,
                "case": f"{organ}-{truth}-{i}",
                "organ": organ,
                "truth": truth,
                "answer": answer,
            }
            if method is not None:
                row["method"] = method if truth == "synthetic" else ""
            rows.append(row)
            i += 1
    return rows


# Seed document, Pixel2Cancer R1 liver: sens 100, spec 27.3, acc 60.9 (%), 25 real + 25 synthetic.
# Unsure excluded: tp=19, fn=0, tn=6, fp=16 -> sens 19/19, spec 6/22 = 0.2727, acc 25/41 = 0.6098,
# leaving 6 real and 3 synthetic cases answered unsure.
R1_LIVER = {
    ("real", "real"): 19,
    ("real", "unsure"): 6,
    ("synthetic", "synthetic"): 6,
    ("synthetic", "real"): 16,
    ("synthetic", "unsure"): 3,
}


def test_wilson_and_binomial_check_values():
    low, high = wilson_interval(59, 100)
    assert (round(low, 3), round(high, 3)) == (0.492, 0.681)
    assert round(binomial_p(59, 100), 3) == 0.089
    assert np.isnan(wilson_interval(0, 0)[0]) and np.isnan(binomial_p(0, 0))


def test_reproduces_seed_r1_liver_row_with_unsure_excluded():
    votes = validate_votes(pd.DataFrame(_votes("R1", "liver", R1_LIVER)))
    table = reader_table(votes)
    assert list(table.columns) == TABLE_COLUMNS
    row = table[(table.reader == "R1") & (table.organ == "liver")].iloc[0]
    assert (row.n_real, row.n_synthetic, row.n_unsure_real, row.n_unsure_synthetic) == (
        25,
        25,
        6,
        3,
    )
    assert (row.tp, row.fn, row.tn, row.fp) == (19, 0, 6, 16)
    assert round(100 * row.sensitivity, 1) == 100.0
    assert round(100 * row.specificity, 1) == 27.3
    # 25/41 = 60.98%: the seed's 60.9 is truncated, not rounded (no count combination rounds to
    # 60.9 with sens 100 and spec 27.3)
    assert row.accuracy == pytest.approx(25 / 41)
    assert int(1000 * row.accuracy) / 10 == 60.9
    assert row.accuracy_low < row.accuracy < row.accuracy_high
    # Wilson for 19/19: [n/(n+z^2), 1] with z = 1.959964
    assert row.sensitivity_low == pytest.approx(19 / (19 + 1.959964**2), abs=1e-6)
    assert row.sensitivity_high == pytest.approx(1.0)


def test_unsure_counted_as_wrong():
    votes = validate_votes(pd.DataFrame(_votes("R1", "liver", R1_LIVER)))
    row = reader_table(votes, unsure="wrong").iloc[0]
    assert (row.tp, row.fn, row.tn, row.fp) == (19, 6, 6, 19)
    assert row.sensitivity == pytest.approx(19 / 25)
    assert row.specificity == pytest.approx(6 / 25)
    assert row.accuracy == pytest.approx(25 / 50)
    assert row.p_vs_chance == pytest.approx(1.0)


def test_all_organ_rows_pool_counts_and_methods_share_real_controls():
    rows = _votes("R1", "liver", R1_LIVER, method="p2c")
    rows += _votes(
        "R1",
        "liver",
        {("synthetic", "real"): 4, ("synthetic", "synthetic"): 1},
        method="difftumor",
        start=100,
    )
    rows += _votes(
        "R1",
        "kidney",
        {("real", "real"): 3, ("real", "synthetic"): 1, ("synthetic", "synthetic"): 2},
        method="p2c",
        start=200,
    )
    rows += _votes(
        "R2",
        "kidney",
        {("real", "synthetic"): 2, ("synthetic", "real"): 2},
        method="p2c",
        start=300,
    )
    table = reader_table(validate_votes(pd.DataFrame(rows)))
    assert "method" in table.columns and table.columns[1] == "method"
    by = table.set_index(["reader", "method", "organ"])
    # difftumor liver: the 25 shared real controls + its own 5 synthetic cases
    d = by.loc[("R1", "difftumor", "liver")]
    assert (d.n_real, d.n_synthetic, d.tp, d.fn, d.tn, d.fp) == (25, 5, 19, 0, 1, 4)
    a = by.loc[("R1", "p2c", "all")]
    assert (a.tp, a.fn, a.tn, a.fp) == (19 + 3, 0 + 1, 6 + 2, 16)
    assert a.accuracy == pytest.approx((22 + 8) / (22 + 1 + 8 + 16))
    r2 = by.loc[("R2", "p2c", "kidney")]
    assert r2.accuracy == 0.0 and r2.p_vs_chance == pytest.approx(0.125)
    # R1 has difftumor only on liver, so its difftumor kidney row holds only the real controls
    assert np.isnan(by.loc[("R1", "difftumor", "kidney")].specificity)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.drop(columns="truth"), "missing column(s) truth"),
        (lambda d: d.assign(answer=["maybe"] + list(d.answer[1:])), "got 'maybe' on line 2"),
        (lambda d: d.assign(truth=list(d.truth[:-1]) + ["fake"]), "column truth must be one of"),
        (lambda d: d.assign(confidence=[7] + [3] * (len(d) - 1)), "column confidence"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "answered case"),
        (lambda d: d.assign(reader=[""] + list(d.reader[1:])), "column reader is empty on line 2"),
    ],
)
def test_validation_messages_name_file_column_line(tmp_path, change, message):
    bad = change(pd.DataFrame(_votes("R1", "liver", R1_LIVER)))
    path = tmp_path / "votes.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(EvaluationInputError) as err:
        read_votes(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "; " in text
    assert "\n" not in text


def test_truth_must_be_consistent_per_case():
    rows = _votes("R1", "liver", {("real", "real"): 1}) + _votes(
        "R2", "liver", {("real", "real"): 1}
    )
    rows[1]["truth"] = "synthetic"
    with pytest.raises(EvaluationInputError, match="different truth"):
        validate_votes(pd.DataFrame(rows))


def test_organ_origin_precision_recall_by_hand():
    truth = ["liver"] * 4 + ["pancreas"] * 4 + ["kidney"] * 4
    answer = (
        ["liver", "liver", "pancreas", "unsure"]
        + ["pancreas", "liver", "kidney", "kidney"]
        + ["kidney", "kidney", "kidney", "liver"]
    )
    df = pd.DataFrame(
        {"reader": "R1", "case": [f"c{i}" for i in range(12)], "organ": truth, "answer": answer}
    )
    votes = validate_votes(df, task="origin")
    cm = organ_origin_confusion(votes, "R1")
    assert cm.loc["liver"].tolist() == [2, 1, 0, 1]
    assert cm.loc["pancreas"].tolist() == [1, 1, 2, 0]
    assert cm.loc["kidney"].tolist() == [1, 0, 3, 0]
    t = organ_origin_table(votes).set_index("organ")
    # liver predicted 4x, 2 right; pancreas predicted 2x, 1 right; kidney predicted 5x, 3 right
    assert t.loc["liver", "precision"] == pytest.approx(2 / 4)
    assert t.loc["pancreas", "precision"] == pytest.approx(1 / 2)
    assert t.loc["kidney", "precision"] == pytest.approx(3 / 5)
    assert t.loc[["liver", "pancreas", "kidney"], "recall"].tolist() == [0.5, 0.25, 0.75]
    assert t.loc["liver", "n_unsure"] == 1
    assert t.loc["macro", "recall"] == pytest.approx(0.5)

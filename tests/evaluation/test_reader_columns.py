"""Reader-table columns a paper needs, one macro-precision rule, full-precision CSVs, --help."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score

from evaluation import readers
from evaluation.tables import write_table
from turingct.cli import build_parser


def test_extra_columns_experience_answered_fooling_balanced_youden():
    rows = [
        {
            "reader": "R1",
            "case": f"c{i}",
            "organ": "liver",
            "truth": "real" if i < 4 else "synthetic",
            "answer": [
                "real",
                "real",
                "real",
                "unsure",
                "real",
                "synthetic",
                "synthetic",
                "unsure",
            ][i],
            "years_experience": 7,
        }
        for i in range(8)
    ]
    table = readers.reader_table(readers.validate_votes(pd.DataFrame(rows)))
    row = table[table.organ == "all"].iloc[0]
    assert list(table.columns[:2]) == ["reader", "years_experience"] and row.years_experience == 7
    assert row.n_answered == 6
    # sensitivity 3/3, specificity 2/3
    assert row.fooling_rate == pytest.approx(1 / 3)
    assert row.balanced_accuracy == pytest.approx((1 + 2 / 3) / 2)
    assert row.youden_j == pytest.approx(2 / 3)


def test_one_macro_precision_rule_for_readers_and_the_svm():
    """A reader who never answers pancreas: pancreas precision 0 (not NaN), and the macro row
    is what the SVM's precision_score(average='macro', zero_division=0) gives."""
    truth = ["liver", "pancreas", "kidney"] * 4
    answer = ["liver", "liver", "kidney", "kidney", "liver", "kidney"] * 2
    votes = readers.validate_votes(
        pd.DataFrame(
            {"reader": "R", "case": [f"c{i}" for i in range(12)], "organ": truth, "answer": answer}
        ),
        task="origin",
    )
    table = readers.organ_origin_table(votes).set_index("organ")
    assert table.loc["pancreas", "precision"] == 0.0
    assert table.loc["macro", "precision"] == pytest.approx(
        precision_score(truth, answer, average="macro", zero_division=0)
    )
    assert "same rule" in readers.ORIGIN_CONVENTIONS["precision_no_predictions"]


def test_tables_keep_full_precision(tmp_path):
    values = np.random.default_rng(0).normal(size=50) * 1e3
    df = pd.DataFrame({"x": values, "third": 1 / 3})
    path, _ = write_table(df, tmp_path / "t.csv", {"k": "v"})
    back = pd.read_csv(path)
    assert back["x"].tolist() == values.tolist() and back["third"][0] == 1 / 3


def _subcommand_help(*names) -> str:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    sub = action.choices[names[0]]
    for name in names[1:]:
        sub = next(
            a for a in sub._actions if getattr(a, "choices", None) and name in a.choices
        ).choices[name]
    return sub.format_help()


@pytest.mark.parametrize("command", ["readers", "agreement", "mrmc", "methods", "fid", "seg"])
def test_help_prints_single_percent_signs(command):
    text = _subcommand_help("evaluate", command)
    assert "%%" not in text
    if command in ("readers", "methods"):
        assert "95%" in text


def test_pooled_results_per_organ_and_method_do_not_mix_them():
    from evaluation.table3 import pooled_by_group, table3_layout

    rows = []
    for reader in ("A", "B"):
        for organ in ("liver", "kidney"):
            for k in range(4):
                rows.append(
                    {
                        "reader": reader,
                        "case": f"{organ}-r{k}",
                        "organ": organ,
                        "truth": "real",
                        "answer": "real",
                        "method": "",
                    }
                )
                for method, answer in (("p2c", "real"), ("diff", "synthetic")):
                    rows.append(
                        {
                            "reader": reader,
                            "case": f"{organ}-{method}{k}",
                            "organ": organ,
                            "truth": "synthetic",
                            "answer": answer,
                            "method": method,
                        }
                    )
    votes = readers.validate_votes(pd.DataFrame(rows))
    pooled = pooled_by_group(votes, n_boot=50, seed=1).set_index(["organ", "method", "statistic"])
    assert pooled.loc[("liver", "p2c", "specificity"), "estimate"] == 0.0  # always fooled
    assert pooled.loc[("liver", "diff", "specificity"), "estimate"] == 1.0
    assert pooled.loc[("all", "all", "specificity"), "estimate"] == 0.5
    assert pooled.loc[("kidney", "diff", "accuracy"), "n_cases"] == 8  # 4 real + 4 diff
    wide = table3_layout(readers.reader_table(votes))
    assert list(wide.columns) == ["reader", "method", "metric", "kidney", "liver", "all"]
    assert len(wide) == 2 * 2 * 6  # readers x methods x metric rows


def test_results_export_of_an_origin_study_reads_its_origin_answers():
    export = pd.DataFrame(
        {
            "reader": ["ann"] * 4,
            "years_experience": [9] * 4,
            "code": ["k1", "k2", "k1", "k2"],
            "arm": ["real"] * 4,
            "organ": ["liver", "kidney"] * 2,
            "question": ["origin", "origin", "truth", "truth"],
            "answer": ["liver", "pancreas", "real", "real"],
            "seconds_on_case": [1.0] * 4,
        }
    )
    votes = readers.validate_votes(export, task="origin")
    assert votes["case"].tolist() == ["k1", "k2"] and votes["answer"].tolist() == [
        "liver",
        "pancreas",
    ]
    with pytest.raises(readers.EvaluationInputError, match="no answers to the 'truth'"):
        readers.validate_votes(export[export.question == "origin"], task="turing")

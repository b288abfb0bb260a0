"""Agreement, AUC, clustered bootstrap and McNemar against hand-derived values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.agreement import (
    cluster_bootstrap,
    fleiss_kappa,
    kappa_matrix,
    mcnemar_paired,
    mcnemar_readers,
    pairwise_cohen_kappa,
    reader_auc,
    realness_score,
)
from evaluation.readers import validate_votes


def _wide_votes(answers: dict[str, list[str]], truth: list[str], confidence=None):
    rows = []
    for reader, ans in answers.items():
        for i, (t, a) in enumerate(zip(truth, ans, strict=True)):
            row = {"reader": reader, "case": f"c{i}", "organ": "liver", "truth": t, "answer": a}
            if confidence is not None:
                row["confidence"] = confidence[reader][i]
            rows.append(row)
    return validate_votes(pd.DataFrame(rows))


def test_cohen_kappa_by_hand():
    # 8 of 10 agree; both readers say real 5 times -> p_o = 0.8, p_e = 0.5, kappa = 0.6
    truth = ["real"] * 5 + ["synthetic"] * 5
    a = ["real"] * 5 + ["synthetic"] * 5
    b = ["real"] * 4 + ["synthetic"] * 5 + ["real"]
    votes = _wide_votes({"A": a, "B": b}, truth)
    pairs = pairwise_cohen_kappa(votes)
    row = pairs.iloc[0].to_dict()
    assert {k: row[k] for k in ("reader_a", "reader_b", "n_cases", "kappa")} == {
        "reader_a": "A",
        "reader_b": "B",
        "n_cases": 10,
        "kappa": pytest.approx(0.6),
    }
    assert row["kappa_low"] < 0.6 < row["kappa_high"] <= 1.0
    mat = kappa_matrix(pairs)
    assert mat.loc["B", "A"] == pytest.approx(0.6) and mat.loc["A", "A"] == 1.0


def test_cohen_kappa_excluding_unsure_drops_pairs():
    truth = ["real", "real", "synthetic", "synthetic"]
    votes = _wide_votes(
        {
            "A": ["real", "unsure", "synthetic", "real"],
            "B": ["real", "real", "synthetic", "synthetic"],
        },
        truth,
    )
    pairs = pairwise_cohen_kappa(votes, unsure="exclude")
    # remaining 3 cases: A = r,s,r ; B = r,s,s -> p_o = 2/3, p_e = 2/3*1/3 + 1/3*2/3 = 4/9
    assert pairs.n_cases[0] == 3
    assert pairs.kappa[0] == pytest.approx((2 / 3 - 4 / 9) / (1 - 4 / 9))


def test_fleiss_kappa_by_hand():
    # counts per case (real, synthetic) = (3,0), (0,3), (2,1), (1,2):
    # P_i = 1, 1, 1/3, 1/3 -> P_bar = 2/3; p_real = p_syn = 0.5 -> P_e = 0.5; kappa = 1/3
    truth = ["real", "synthetic", "real", "synthetic"]
    votes = _wide_votes(
        {
            "A": ["real", "synthetic", "real", "real"],
            "B": ["real", "synthetic", "real", "synthetic"],
            "C": ["real", "synthetic", "synthetic", "synthetic"],
        },
        truth,
    )
    kappa, n = fleiss_kappa(votes)
    assert n == 4 and kappa == pytest.approx(1 / 3)


def test_auc_from_confidence_by_hand():
    # real scores +5, +3, -1; synthetic -4, +2, 0 -> 7 of 9 pairs ordered correctly
    truth = ["real"] * 3 + ["synthetic"] * 3
    answers = ["real", "real", "synthetic", "synthetic", "real", "unsure"]
    conf = {"A": [5, 3, 1, 4, 2, None]}
    votes = _wide_votes({"A": answers}, truth, conf)
    np.testing.assert_array_equal(
        realness_score(votes.answer, votes.confidence), [5, 3, -1, -4, 2, 0]
    )
    auc = reader_auc(votes).set_index("organ")
    assert auc.loc["all", "auc"] == pytest.approx(7 / 9)
    assert bool(auc.loc["all", "uses_confidence"])


def test_cluster_bootstrap_is_seeded_and_wider_than_binomial_for_reader_effects():
    truth = ["real"] * 20 + ["synthetic"] * 20
    good = truth
    bad = ["synthetic"] * 20 + ["real"] * 20
    votes = _wide_votes({"A": good, "B": bad, "C": good, "D": bad}, truth)
    res = cluster_bootstrap(votes, "accuracy", n_boot=400, seed=3)
    assert res["estimate"] == pytest.approx(0.5)
    # readers are all-or-nothing: resampling 4 readers gives accuracy k/4, so the 95% interval
    # spans (at least) [0.25, 0.75], far wider than Wilson on 160 pooled reads (about +-0.08)
    assert res["low"] <= 0.25 and res["high"] >= 0.75
    assert res == cluster_bootstrap(votes, "accuracy", n_boot=400, seed=3)
    spec = cluster_bootstrap(votes, "specificity", n_boot=50, seed=0)
    assert spec["estimate"] == pytest.approx(0.5)


def test_cluster_bootstrap_perfect_reader_is_degenerate():
    truth = ["real"] * 5 + ["synthetic"] * 5
    res = cluster_bootstrap(_wide_votes({"A": truth}, truth), n_boot=50, seed=1)
    assert (res["estimate"], res["low"], res["high"]) == (1.0, 1.0, 1.0)


def test_mcnemar_exact_by_hand():
    # discordant: a right / b wrong = 6, a wrong / b right = 1 -> p = 2 * (1 + 7) / 2^7
    a = np.array([1] * 6 + [0] + [1] * 3, dtype=bool)
    b = np.array([0] * 6 + [1] + [1] * 3, dtype=bool)
    res = mcnemar_paired(a, b)
    assert (res["a_right_b_wrong"], res["a_wrong_b_right"]) == (6, 1)
    assert res["p_value"] == pytest.approx(16 / 128)
    truth = ["real"] * 5 + ["synthetic"] * 5
    votes = _wide_votes({"A": truth, "B": ["synthetic"] * 5 + truth[5:]}, truth)
    assert mcnemar_readers(votes, "A", "B")["a_right_b_wrong"] == 5

"""Method comparison (GEE, two-way clustered), Fisher's exact test, kappa and AUC intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation import agreement, comparisons, mrmc, readers
from turingct.cli import main


def _study_votes(seed=0, n_readers=4, n_real=12, n_syn=12, fool=(0.2, 0.6)):
    """Every reader reads 12 real cases (shared) and 12 synthetic cases of each of 2 methods;
    readers differ in bias and cases in difficulty (both induce clustering)."""
    rng = np.random.default_rng(seed)
    rows = []
    bias = rng.normal(0, 0.7, n_readers)
    cases = [(f"r{k}", "real", "", 0.85) for k in range(n_real)]
    for m, p in zip(("alpha", "beta"), fool, strict=True):
        cases += [(f"{m}{k}", "synthetic", m, p) for k in range(n_syn)]
    ease = {c[0]: rng.normal(0, 0.7) for c in cases}
    for j in range(n_readers):
        for case, truth, method, p in cases:
            logit = np.log(p / (1 - p)) + bias[j] + ease[case]
            real = rng.random() < 1 / (1 + np.exp(-logit))
            rows.append(
                {
                    "reader": f"R{j}",
                    "case": case,
                    "organ": "liver",
                    "truth": truth,
                    "answer": "real" if real else "synthetic",
                    "method": method,
                }
            )
    return readers.validate_votes(pd.DataFrame(rows))


def test_method_odds_ratios_are_the_arm_odds_and_cluster_two_ways():
    votes = _study_votes()
    table = comparisons.method_comparison(votes).set_index(["method_a", "method_b"])
    assert list(table.index) == [("alpha", "real"), ("beta", "real"), ("alpha", "beta")]

    def odds(arm_rows):
        p = (arm_rows["answer"] == "real").mean()
        return p / (1 - p)

    real = votes[votes.truth == "real"]
    alpha, beta = (votes[votes.method == m] for m in ("alpha", "beta"))
    # a saturated logistic model: the fitted odds ratios are the observed ones
    assert table.loc[("alpha", "beta"), "odds_ratio"] == pytest.approx(odds(alpha) / odds(beta))
    assert table.loc[("beta", "real"), "odds_ratio"] == pytest.approx(odds(beta) / odds(real))
    row = table.loc[("alpha", "beta")]
    assert row.or_low < row.odds_ratio < row.or_high and 0 <= row.p_value <= 1
    assert row.called_real_a == pytest.approx((alpha.answer == "real").mean())
    assert row.reads_a == 48 and row.n_cases == 24 and row.df == 3  # 4 readers - 1


def test_two_way_clustering_holds_the_level_under_the_null():
    """Equal fooling rates, reader bias and case difficulty: the two-way clustered test rejects
    at about its nominal 5% (an unclustered GLM would not account for the case effects)."""
    p = [
        comparisons.method_comparison(_study_votes(seed=100 + s, n_readers=6, fool=(0.4, 0.4)))
        .iloc[2]
        .p_value
        for s in range(100)
    ]
    assert np.mean(np.asarray(p) < 0.05) <= 0.09


def test_sandwich_ingredients_match_statsmodels_gee():
    """With one grouping, the cluster-robust covariance of the GLM used here is statsmodels'
    GEE robust covariance (independence working correlation)."""
    import statsmodels.api as sm
    from statsmodels.stats.sandwich_covariance import cov_cluster

    votes = _study_votes(seed=1)
    y = (votes.answer == "real").astype(float).to_numpy()
    x = sm.add_constant(pd.get_dummies(votes.method, drop_first=True).astype(float).to_numpy())
    groups = pd.factorize(votes.reader)[0]
    glm = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    gee = sm.GEE(
        y, x, groups=groups, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Independence()
    ).fit()
    assert np.allclose(glm.params, gee.params, atol=1e-6)
    assert np.allclose(cov_cluster(glm, groups, use_correction=False), gee.cov_robust, rtol=1e-5)
    both, by_reader, by_case = comparisons.two_way_cluster_cov(
        glm, groups, pd.factorize(votes.case)[0]
    )
    assert np.allclose(by_reader, cov_cluster(glm, groups), rtol=1e-10)
    assert not np.allclose(both, by_reader)


def test_a_method_never_called_real_gets_a_note_not_a_crash():
    votes = _study_votes(seed=2)
    votes.loc[votes.method == "beta", "answer"] = "synthetic"
    table = comparisons.method_comparison(votes).set_index(["method_a", "method_b"])
    assert np.isnan(table.loc[("beta", "real"), "odds_ratio"])
    assert "beta: called real never" in table.loc[("alpha", "beta"), "note"]
    assert np.isfinite(table.loc[("alpha", "real"), "odds_ratio"])


def test_methods_cli(tmp_path, capsys):
    path = tmp_path / "votes.csv"
    _study_votes().to_csv(path, index=False)
    out = tmp_path / "methods.csv"
    assert main(["evaluate", "methods", "--votes", str(path), "--out", str(out)]) == 0
    assert pd.read_csv(out).method_b.tolist() == ["real", "real", "beta"]
    assert "two-way" in (tmp_path / "methods.conventions.txt").read_text()
    assert "alpha vs beta: OR" in capsys.readouterr().out


def test_fisher_beside_the_binomial_test_when_arms_are_unequal():
    """A reader who calls everything real, with unsure answers leaving 20 real and 5 synthetic
    answered: 80% accuracy "beats chance" (binomial) though the answer ignores the truth."""
    rows = [
        {"reader": "R", "case": f"r{k}", "organ": "liver", "truth": "real", "answer": "real"}
        for k in range(20)
    ]
    rows += [
        {
            "reader": "R",
            "case": f"s{k}",
            "organ": "liver",
            "truth": "synthetic",
            "answer": "real" if k < 5 else "unsure",
        }
        for k in range(20)
    ]
    table = readers.reader_table(readers.validate_votes(pd.DataFrame(rows)))
    row = table[table.organ == "all"].iloc[0]
    assert row.accuracy == pytest.approx(0.8) and row.p_vs_chance < 0.01
    assert row.p_fisher == pytest.approx(1.0)
    from scipy.stats import fisher_exact

    assert readers.fisher_p({"tp": 9, "fn": 1, "fp": 2, "tn": 8}) == pytest.approx(
        fisher_exact([[9, 1], [2, 8]]).pvalue
    )


def test_kappa_intervals():
    from statsmodels.stats.inter_rater import cohens_kappa

    votes = _study_votes(seed=3)
    pairs = agreement.pairwise_cohen_kappa(votes)
    a, b = pairs.loc[0, ["reader_a", "reader_b"]]
    wide = votes.pivot(index="case", columns="reader", values="answer")
    ref = cohens_kappa(pd.crosstab(wide[a], wide[b]).to_numpy())
    assert pairs.loc[0, "kappa"] == pytest.approx(ref.kappa)
    assert pairs.loc[0, "kappa_low"] == pytest.approx(ref.kappa_low)
    assert pairs.loc[0, "kappa_high"] == pytest.approx(ref.kappa_upp)
    fleiss = agreement.fleiss_kappa_ci(votes, n_boot=300, seed=1)
    assert fleiss["low"] < fleiss["kappa"] < fleiss["high"]
    assert fleiss == agreement.fleiss_kappa_ci(votes, n_boot=300, seed=1)


def test_auc_interval_is_delong(shared_data):
    path = shared_data / "mrmc_vandyke" / "ratings.csv"
    data = mrmc.ratings_data(mrmc.read_ratings(path), path)
    cov = mrmc.auc_covariance(data, "delong")
    auc, se, low, high = mrmc.auc_ci_delong(data.ratings[1, 2], data.truth)
    assert auc == pytest.approx(0.92173913, abs=5e-9)
    assert se**2 == pytest.approx(cov[7, 7], rel=1e-12)
    assert low == pytest.approx(auc - 1.959963985 * se) and high == pytest.approx(
        auc + 1.959963985 * se
    )
    assert mrmc.auc_ci_delong([1, 2, 3, 4], [0, 0, 1, 1])[1:] == (0.0, 1.0, 1.0)
    votes = _study_votes(seed=4).assign(confidence=3)
    auc_table = agreement.reader_auc(readers.validate_votes(votes))
    assert (auc_table.auc_low <= auc_table.auc).all() and (
        auc_table.auc <= auc_table.auc_high
    ).all()

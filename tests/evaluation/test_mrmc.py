"""OR MRMC analysis: the published Van Dyke figures, edge cases built on purpose, bad input."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from evaluation import mrmc
from evaluation.tables import EvaluationInputError
from turingct.cli import main


@pytest.fixture(scope="module")
def vandyke_csv(shared_data):
    return shared_data / "mrmc_vandyke" / "ratings.csv"


@pytest.fixture(scope="module")
def vandyke(vandyke_csv):
    data = mrmc.ratings_data(mrmc.read_ratings(vandyke_csv), vandyke_csv)
    return data, mrmc.or_analysis(data), mrmc.or_analysis(data, "delong")


def close(got: float, printed: str) -> None:
    """``got`` equals the published figure to its printed precision (half a unit of the last
    printed digit; every README figure has at least 1e-6 absolute precision except the
    single-modality df, printed to 1e-4)."""
    dec = Decimal(printed)
    exponent = dec.as_tuple().exponent
    tol = 0.5 * 10.0**exponent
    assert abs(got - float(dec)) <= tol * (1 + 1e-9), (got, printed)


def test_vandyke_aucs_and_covariances(vandyke):
    data, jk, dl = vandyke
    assert data.ratings.shape == (2, 5, 114) and data.truth.sum() == 45
    assert jk["modalities"] == ["0", "1"] and jk["readers"] == ["0", "1", "2", "3", "4"]
    published = {
        "0": "0.91964573 0.85877617 0.90386473 0.97310789 0.82979066",
        "1": "0.94782609 0.90531401 0.92173913 0.99935588 0.92995169",
    }
    for m, values in published.items():
        for r, v in zip(jk["readers"], values.split(), strict=True):
            close(jk["auc"][m][r], v)
    close(jk["mean_auc"]["0"], "0.89703704")
    close(jk["mean_auc"]["1"], "0.94083736")
    for result, values in (
        (jk, "8.0228827e-4 3.4661371e-4 3.4407483e-4 2.3902837e-4"),
        (dl, "7.9213245e-4 3.4200896e-4 3.3952653e-4 2.3584965e-4"),
    ):
        for key, v in zip(("var", "cov1", "cov2", "cov3"), values.split(), strict=True):
            close(result["covariance"][key], v)
    assert jk["covariance"]["method"] == "jackknife" and dl["covariance"]["method"] == "delong"
    for key, v in zip(("t", "r", "tr"), ("0.00479617", "0.00383620", "0.00055103"), strict=True):
        close(jk["mean_squares"][key], v)
    # OR variance components printed by OR-DBM MRMC 2.51 (VanDyke.txt)
    close(jk["variance_components"]["var_r"], "0.00153500")
    close(jk["variance_components"]["var_tr"], "0.00020040")


def test_vandyke_rrrc_frrc_rrfc(vandyke):
    _, jk, _ = vandyke
    rrrc = jk["rrrc"]
    close(rrrc["f"], "4.4563187")
    close(rrrc["ddf"], "15.259675")
    close(rrrc["p"], "0.0516657")
    (diff,) = rrrc["differences"]
    assert diff["modalities"] == ["0", "1"]
    close(diff["estimate"], "-0.04380032")
    close(diff["ci95"][0], "-0.0879595")
    close(diff["ci95"][1], "0.0003589")
    for m, lo, hi, df in (
        ("0", "0.8252236", "0.9688505", "12.7446"),
        ("1", "0.8941378", "0.9875369", "12.7102"),
    ):
        single = rrrc["single"][m]
        close(single["ci95"][0], lo)
        close(single["ci95"][1], hi)
        close(single["df"], df)
        assert single["auc"] == jk["mean_auc"][m] and single["p_vs_chance"] < 1e-6
    close(jk["frrc"]["chisq"], "5.4759532")
    close(jk["frrc"]["p"], "0.0192798")
    close(jk["rrfc"]["f"], "8.704")
    close(jk["rrfc"]["p"], "0.0419588")
    # the rest of the Iowa printout (VanDyke.txt), to its printed precision
    close(jk["frrc"]["differences"][0]["ci95"][0], "-0.08049")
    close(jk["frrc"]["differences"][0]["ci95"][1], "-0.00711")
    reader5 = jk["frrc"]["per_reader"][4]
    assert reader5["reader"] == "4"
    close(reader5["se"], "0.04406")
    close(reader5["ci95"][0], "-0.18651")
    close(jk["frrc"]["single"]["0"]["se"], "0.02428971")
    close(jk["rrfc"]["differences"][0]["ci95"][0], "-0.08502")
    close(jk["rrfc"]["single"]["1"]["ci95"][1], "0.98568536")


# ---------------------------------------------------------------- building blocks


def _random_data(rng, n_mod=2, n_rdr=3, n_pos=7, n_neg=9, levels=4) -> mrmc.RatingsData:
    """Integer ratings with many ties; positives shifted up."""
    truth = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    ratings = rng.integers(0, levels, (n_mod, n_rdr, truth.size)) + truth
    return mrmc.RatingsData(
        ratings.astype(float),
        truth,
        tuple(f"m{i}" for i in range(n_mod)),
        tuple(f"r{j}" for j in range(n_rdr)),
        tuple(f"c{k}" for k in range(truth.size)),
    )


def test_auc_and_jackknife_match_sklearn_refits():
    data = _random_data(np.random.default_rng(3))
    auc = mrmc.auc_matrix(data)
    jk = mrmc.jackknife_aucs(data)
    for i in range(2):
        for j in range(3):
            r = data.ratings[i, j]
            assert auc[i, j] == pytest.approx(roc_auc_score(data.truth, r), abs=1e-15)
            for k in range(r.size):
                keep = np.arange(r.size) != k
                assert jk[i, j, k] == pytest.approx(
                    roc_auc_score(data.truth[keep], r[keep]), abs=1e-12
                )


def test_delong_matches_the_textbook_formula():
    data = _random_data(np.random.default_rng(5))
    flat = data.ratings.reshape(6, -1)
    pos, neg = flat[:, data.truth], flat[:, ~data.truth]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    expected = np.cov(v10) / pos.shape[1] + np.cov(v01) / neg.shape[1]
    assert np.allclose(mrmc.auc_covariance(data, "delong"), expected, atol=1e-15)


def test_disjoint_negatives_are_uncorrelated_across_modalities():
    """A study design: real (positive) cases shared, each method its own synthetic cases."""
    rng = np.random.default_rng(8)
    truth = np.r_[np.ones(6, bool), np.zeros(10, bool)]
    ratings = (rng.integers(0, 5, (2, 2, 16)) + truth).astype(float)
    ratings[0, :, 11:] = np.nan  # modality 0: negatives 6-10
    ratings[1, :, 6:11] = np.nan  # modality 1: negatives 11-15
    data = mrmc.RatingsData(
        ratings, truth, ("a", "b"), ("r1", "r2"), tuple(str(k) for k in range(16))
    )
    cov = mrmc.auc_covariance(data, "delong").reshape(2, 2, 2, 2)
    # across modalities only the shared positives contribute: S10_ab / m
    for j in range(2):
        for jp in range(2):
            pa = ratings[0, j]
            pb = ratings[1, jp]
            v10a = [np.mean((x > pa[6:11]) + 0.5 * (x == pa[6:11])) for x in pa[:6]]
            v10b = [np.mean((x > pb[11:]) + 0.5 * (x == pb[11:])) for x in pb[:6]]
            assert cov[0, j, 1, jp] == pytest.approx(np.cov(v10a, v10b)[0, 1] / 6, abs=1e-15)
    jk = mrmc.jackknife_aucs(data)
    assert np.all(jk[0][:, 11:] == mrmc.auc_matrix(data)[0][:, None])  # not its cases
    result = mrmc.or_analysis(data)
    assert result["n_cases"] == {"a": 11, "b": 11}


# ---------------------------------------------------------------- edge cases by construction


def test_cov2_below_cov3_uses_ms_tr_alone():
    """Reader 1 in modality a rates like reader 2 in b and vice versa: Cov3 > Cov2, so
    Hillis' max(Cov2 - Cov3, 0) = 0 and the error term is MS(T*R) with (I-1)(J-1) ddf."""
    rng = np.random.default_rng(11)
    truth = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    s = [rng.normal(size=60) + 1.2 * truth for _ in range(4)]
    ratings = np.array([[s[0], s[1], s[2]], [s[1], s[0], s[3]]])
    data = mrmc.RatingsData(
        ratings, truth, ("a", "b"), ("r1", "r2", "r3"), tuple(map(str, range(60)))
    )
    res = mrmc.or_analysis(data)
    cov = res["covariance"]
    assert cov["cov2"] < cov["cov3"]
    ms = res["mean_squares"]
    assert res["rrrc"]["error_term"] == pytest.approx(ms["tr"], rel=1e-12)
    assert res["rrrc"]["f"] == pytest.approx(ms["t"] / ms["tr"], rel=1e-12)
    assert res["rrrc"]["ddf"] == pytest.approx(2.0, rel=1e-12)  # (I-1)(J-1)
    assert res["rrrc"]["p"] == pytest.approx(res["rrfc"]["p"], rel=1e-12)  # same test then
    assert res["frrc"]["error_term"] == pytest.approx(cov["var"] - cov["cov1"], rel=1e-12)


def test_negative_variance_component_and_zero_interaction():
    """Permuting ratings within each truth class keeps every AUC: AUCs additive in modality
    (MS(R) = MS(T*R) = 0) while the case variance is not, so var_tr < 0 (an ANOVA estimate,
    reported as is); the error term is J max(Cov2 - Cov3, 0) alone, with infinite ddf."""
    rng = np.random.default_rng(2)
    truth = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    base = rng.normal(size=40) + truth
    ratings = np.empty((2, 4, 40))
    for i in range(2):
        for j in range(4):
            r = base + 0.8 * i * truth  # modality b: positives higher, same for all readers
            ratings[i, j, truth] = rng.permutation(r[truth])
            ratings[i, j, ~truth] = rng.permutation(r[~truth])
    data = mrmc.RatingsData(ratings, truth, ("a", "b"), tuple("wxyz"), tuple(map(str, range(40))))
    res = mrmc.or_analysis(data)
    ms = res["mean_squares"]
    assert ms["r"] == pytest.approx(0, abs=1e-15) and ms["tr"] == pytest.approx(0, abs=1e-15)
    assert res["variance_components"]["var_tr"] < 0
    cov = res["covariance"]
    clip = max(cov["cov2"] - cov["cov3"], 0.0)
    assert res["rrrc"]["error_term"] == pytest.approx(4 * clip, abs=1e-15)
    if clip > 0:
        assert np.isinf(res["rrrc"]["ddf"]) and 0 <= res["rrrc"]["p"] <= 1
    else:
        assert np.isinf(res["rrrc"]["f"]) and res["rrrc"]["p"] == 0.0
    lo, hi = res["rrrc"]["differences"][0]["ci95"]
    assert lo <= res["mean_auc"]["a"] - res["mean_auc"]["b"] <= hi
    for single in res["rrrc"]["single"].values():  # MS(R_i) = 0: normal interval
        assert np.isinf(single["df"]) or single["se"] == 0


def test_reader_with_auc_one():
    rng = np.random.default_rng(4)
    data = _random_data(rng, n_rdr=3)
    ratings = data.ratings.copy()
    ratings[0, 1] = data.truth * 10.0  # reader r1 separates perfectly under m0
    data = mrmc.RatingsData(ratings, data.truth, data.modalities, data.readers, data.cases)
    res = mrmc.or_analysis(data)
    assert res["auc"]["m0"]["r1"] == 1.0
    jk = mrmc.jackknife_aucs(data)
    assert np.all(jk[0, 1] == 1.0)
    cov = mrmc.auc_covariance(data).reshape(2, 3, 2, 3)
    assert np.all(cov[0, 1] == 0) and np.all(cov[:, :, 0, 1] == 0)
    for part in ("rrrc", "frrc", "rrfc"):
        assert np.isfinite(res[part]["p"])
    # a modality every reader reads perfectly: no variance left, a zero-width interval
    ratings[0] = data.truth * 10.0
    perfect = mrmc.RatingsData(ratings, data.truth, data.modalities, data.readers, data.cases)
    single = mrmc.or_analysis(perfect)["rrrc"]["single"]["m0"]
    assert single["auc"] == 1.0 and single["se"] == 0 and single["ci95"] == [1.0, 1.0]
    assert single["p_vs_chance"] == 0.0


def test_one_modality_and_one_reader():
    rng = np.random.default_rng(9)
    one = _random_data(rng, n_mod=1, n_rdr=4)
    res = mrmc.or_analysis(one)
    assert np.isnan(res["rrrc"]["f"]) and res["rrrc"]["differences"] == []
    single = res["rrrc"]["single"]["m0"]
    assert single["ci95"][0] < single["auc"] < single["ci95"][1]
    assert 0 <= single["p_vs_chance"] <= 1 and np.isnan(res["covariance"]["cov1"])
    solo = mrmc.or_analysis(_random_data(rng, n_mod=2, n_rdr=1))
    assert np.isnan(solo["rrrc"]["f"]) and solo["rrrc"]["single"] == {}
    assert np.isfinite(solo["frrc"]["chisq"]) and len(solo["frrc"]["per_reader"]) == 1


# ---------------------------------------------------------------- input and CLI


def _ratings_csv(path, rows=None):
    rows = (
        rows
        if rows is not None
        else [
            {"reader": r, "modality": m, "case": c, "truth": int(c < 3), "rating": (c + j) % 4}
            for j, r in enumerate(("A", "B"))
            for m in ("x", "y")
            for c in range(6)
        ]
    )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: df.drop(index=7), "reader 'A' has no rating of case '1' under modality 'y'"),
        (
            lambda df: df.assign(truth=df.truth.where(df.index != 20, 1)),
            "case '2' has truth 1 on line 22 but 0",
        ),
        (lambda df: df.assign(truth=0), "modality 'x' has 0 positive and 6 negative cases"),
        (
            lambda df: df.assign(rating=df.rating.astype(str).where(df.index != 4, "high")),
            "rating must be a finite number, got 'high' on line 6",
        ),
        (
            lambda df: df.assign(truth=df.truth.astype(str).where(df.index != 2, "yes")),
            "truth must be 0 or 1, got 'yes' on line 4",
        ),
        (lambda df: pd.concat([df, df.iloc[[3]]]), "rated case '3' under modality 'x' twice"),
    ],
)
def test_bad_ratings_are_one_line_naming_the_row(tmp_path, capsys, edit, message):
    rows = [
        {"reader": r, "modality": m, "case": c, "truth": int(c % 2), "rating": c}
        for r in ("A", "B")
        for m in ("x", "y")
        for c in range(6)
    ]
    path = tmp_path / "bad.csv"
    edit(pd.DataFrame(rows)).to_csv(path, index=False)
    with pytest.raises(EvaluationInputError, match=message.replace("(", r"\(")):
        mrmc.ratings_data(mrmc.read_ratings(path), path)
    assert (
        main(["evaluate", "mrmc", "--ratings", str(path), "--out", str(tmp_path / "m.json")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and message in err
    assert not (tmp_path / "m.json").exists()


def test_cli_writes_the_json_interface(vandyke_csv, tmp_path, capsys):
    out = tmp_path / "o" / "mrmc.json"
    assert main(["evaluate", "mrmc", "--ratings", str(vandyke_csv), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {
        "modalities",
        "readers",
        "auc",
        "mean_auc",
        "covariance",
        "rrrc",
        "frrc",
        "rrfc",
    } <= set(res)
    assert set(res["covariance"]) >= {"method", "var", "cov1", "cov2", "cov3"}
    assert set(res["rrrc"]) >= {"f", "ddf", "p", "differences", "single"}
    assert set(res["frrc"]) >= {"chisq", "p", "differences"}
    assert set(res["rrfc"]) >= {"f", "p", "differences"}
    assert set(res["rrrc"]["differences"][0]) >= {"modalities", "estimate", "ci95"}
    assert set(res["rrrc"]["single"]["0"]) >= {"auc", "ci95", "df"}
    close(res["rrrc"]["f"], "4.4563187")
    table = pd.read_csv(out.with_suffix(".csv"))
    row = table[(table.analysis == "rrrc") & (table.quantity == "difference")].iloc[0]
    close(row.ci_low, "-0.0879595")  # the CSV keeps full precision
    assert "Hillis" in out.with_suffix(".html").read_text()
    assert "Hillis" in (out.parent / "mrmc.conventions.txt").read_text()
    assert "RRRC: F = 4.4563" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                "mrmc",
                "--ratings",
                str(vandyke_csv),
                "--out",
                str(out),
                "--covariance",
                "delong",
            ]
        )
        == 0
    )
    close(json.loads(out.read_text())["covariance"]["var"], "7.9213245e-4")


def test_ratings_from_votes_scale_and_shared_real_arm():
    votes = pd.DataFrame(
        {
            "reader": ["a"] * 4,
            "case": ["r1", "r2", "s1", "s2"],
            "truth": ["real", "real", "synthetic", "synthetic"],
            "answer": ["real", "unsure", "real", "synthetic"],
            "method": ["", "", "p2c", "diff"],
            "confidence": pd.array([5, pd.NA, 2, 4], dtype="Int64"),
        }
    )
    ratings = mrmc.ratings_from_votes(votes)
    assert list(ratings.columns) == list(mrmc.COLUMNS)
    by = ratings.set_index(["modality", "case"])
    assert set(ratings.modality) == {"diff", "p2c"}
    assert by.loc[("p2c", "r1"), "rating"] == 5 and by.loc[("diff", "r1"), "rating"] == 5
    assert by.loc[("p2c", "r2"), "rating"] == 0 and by.loc[("p2c", "s1"), "rating"] == 2
    assert by.loc[("diff", "s2"), "rating"] == -4 and ("p2c", "s2") not in by.index
    assert by.loc[("p2c", "r1"), "truth"] == 1 and by.loc[("p2c", "s1"), "truth"] == 0

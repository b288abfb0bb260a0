"""Comparing synthesis methods in one reader study: how often each is called real, vs the others.

Two methods' synthetic cases are different cases, so their fooling rates are not paired
(McNemar does not apply) and the reads are correlated twice: within a reader (a lenient reader
calls many cases real) and within a case (an obvious fake is caught by everyone). The model is a
logistic regression of "answered real" on the arm of the case (real, or synthetic of method m),
over every read of the study: the real cases enter once, as the shared reference arm, so each
method gets an odds ratio against real tumors (1 = called real as often as a real tumor) and
every pair of methods an odds ratio against each other (the ratio of their fooling odds).

Estimation: a GEE with an independence working correlation, i.e. the logistic GLM with a
sandwich covariance; the sandwich is clustered two-way by reader and by case (Cameron, Gelbach &
Miller 2011: V_reader + V_case - V_reader&case, where each reader x case cell holds one read so
the last term is the heteroskedasticity-robust one), with the usual G/(G-1) small-sample factors
(statsmodels ``cov_cluster_2groups``). statsmodels' ``GEE`` takes one grouping only; with one
grouping this covariance equals its robust covariance (tested). Reader studies have few readers,
so the Wald statistic is referred to a t distribution with ``min(G_reader, G_case) - 1`` df
(Cameron & Miller 2015); the null calibration is tested by simulation.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from core.vocabulary import Answer
from evaluation.readers import SHARED_METHODS, UNSURE_MODES

COLUMNS = [
    "method_a",
    "method_b",
    "reads_a",
    "reads_b",
    "called_real_a",
    "called_real_b",
    "odds_ratio",
    "or_low",
    "or_high",
    "p_value",
    "df",
    "n_readers",
    "n_cases",
    "note",
]

CONVENTIONS = {
    "outcome": "answered real (positive class = real tumor); fooling rate = called_real of a "
    "method's synthetic cases",
    "model": "logistic GEE, independence working correlation, sandwich covariance clustered by "
    "reader and by case (two-way, Cameron-Gelbach-Miller; statsmodels "
    "cov_cluster_2groups with small-sample correction)",
    "arms": "real cases (blank/'real' method) are one shared reference arm; method_b = 'real' "
    "rows: odds of being called real vs a real tumor (1 = indistinguishable)",
    "odds_ratio": "odds(called real | method_a) / odds(called real | method_b); 95% CI and p "
    "on the log scale from a t distribution with min(readers, cases) - 1 df (few "
    "clusters; a normal reference rejected a true null 14% of the time at 5% in "
    "simulations with 6 readers, t about 6%); a negative two-way variance falls "
    "back to the larger one-way variance (noted)",
    "separation": "an arm called real always or never has no finite odds: NaN, see note",
}


def _arm(votes: pd.DataFrame) -> pd.Series:
    method = votes["method"] if "method" in votes.columns else pd.Series("", index=votes.index)
    real = (votes["truth"] == Answer.REAL) & method.isin(SHARED_METHODS)
    named = method.where(~method.isin(SHARED_METHODS), "unspecified")
    arm = named.where(votes["truth"] == Answer.SYNTHETIC, named + " (real)")
    return arm.where(~real, "real")


def _outcome(votes: pd.DataFrame, unsure: str) -> pd.Series:
    """1 = answered real; unsure dropped (exclude) or counted wrong (real -> 0, synthetic -> 1)."""
    y = (votes["answer"] == Answer.REAL).astype(float)
    is_unsure = votes["answer"] == Answer.UNSURE
    if unsure == "exclude":
        y[is_unsure] = np.nan
    else:
        y[is_unsure & (votes["truth"] == Answer.SYNTHETIC)] = 1.0
    return y


def two_way_cluster_cov(
    result, reader_codes: np.ndarray, case_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariances of a fitted statsmodels GLM clustered by reader and by case (two-way), by
    reader only and by case only."""
    from statsmodels.stats.sandwich_covariance import cov_cluster_2groups

    both, by_reader, by_case = cov_cluster_2groups(result, reader_codes, case_codes)
    return np.asarray(both), np.asarray(by_reader), np.asarray(by_case)


def method_comparison(
    votes: pd.DataFrame, unsure: str = "exclude", alpha: float = 0.05
) -> pd.DataFrame:
    """Odds ratios of "answered real" for every method vs the real arm and every method pair.

    ``votes``: a validated Turing votes table with a ``method`` column (synthetic cases carry
    their method; real cases a blank or ``real`` one). Columns :data:`COLUMNS`; one row per
    method vs ``real`` then per pair ``a, b`` (a before b in sorted order).
    """
    import statsmodels.api as sm

    if unsure not in UNSURE_MODES:
        raise ValueError(f"unsure must be one of {UNSURE_MODES}, got {unsure!r}")
    df = votes.assign(arm=_arm(votes), y=_outcome(votes, unsure)).dropna(subset=["y"])
    methods = sorted(a for a in df["arm"].unique() if a != "real" and not a.endswith("(real)"))
    df = df[df["arm"].isin(["real", *methods])]
    arms = ["real", *methods]
    rate = df.groupby("arm")["y"].agg(["size", "mean"])
    degenerate = {a for a in arms if a in rate.index and rate.loc[a, "mean"] in (0.0, 1.0)}
    rows = []
    pairs = [(m, "real") for m in methods] + list(combinations(methods, 2))
    fit = None
    usable = [a for a in arms if a in rate.index and a not in degenerate]
    if len(usable) >= 2:  # reference arm = usable[0] (real unless real is always called real)
        sub = df[df["arm"].isin(usable)]
        design = pd.get_dummies(
            pd.Categorical(sub["arm"], categories=usable), drop_first=True
        ).astype(float)
        design.insert(0, "const", 1.0)
        model = sm.GLM(sub["y"].to_numpy(), design.to_numpy(), family=sm.families.Binomial())
        res = model.fit()
        covs = two_way_cluster_cov(
            res, pd.factorize(sub["reader"])[0], pd.factorize(sub["case"])[0]
        )
        dof = min(sub["reader"].nunique(), sub["case"].nunique()) - 1
        fit = (usable, np.asarray(res.params), covs, dof)
    for a, b in pairs:
        row = {
            "method_a": a,
            "method_b": b,
            "n_readers": int(df["reader"].nunique()),
            "n_cases": int(df.loc[df["arm"].isin([a, b]), "case"].nunique()),
            "odds_ratio": np.nan,
            "or_low": np.nan,
            "or_high": np.nan,
            "p_value": np.nan,
            "note": "",
        }
        for side, arm in (("a", a), ("b", b)):
            row[f"reads_{side}"] = int(rate.loc[arm, "size"]) if arm in rate.index else 0
            row[f"called_real_{side}"] = (
                float(rate.loc[arm, "mean"]) if arm in rate.index else np.nan
            )
        bad = [x for x in (a, b) if x in degenerate or x not in rate.index]
        if bad:
            row["note"] = "; ".join(
                f"{x}: called real {'always' if rate.loc[x, 'mean'] == 1 else 'never'}"
                if x in rate.index
                else f"{x}: no reads"
                for x in bad
            )
        elif fit is not None:
            usable, params, (cov, cov_r, cov_c), dof = fit
            contrast = np.zeros(len(params))
            for arm, sign in ((a, 1.0), (b, -1.0)):
                if arm != usable[0]:
                    contrast[usable.index(arm)] = sign  # column i = arm i (const = reference)
            est = float(contrast @ params)
            var = float(contrast @ cov @ contrast)
            if var <= 0:
                var = max(float(contrast @ cov_r @ contrast), float(contrast @ cov_c @ contrast))
                row["note"] = "two-way variance not positive: larger one-way variance used"
            if var > 0 and dof >= 1:
                se, q = np.sqrt(var), stats.t.ppf(1 - alpha / 2, dof)
                row.update(
                    odds_ratio=float(np.exp(est)),
                    or_low=float(np.exp(est - q * se)),
                    or_high=float(np.exp(est + q * se)),
                    df=dof,
                    p_value=float(2 * stats.t.sf(abs(est) / se, dof)),
                )
            else:
                row["note"] = "no clustered variance (too few readers or cases)"
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)

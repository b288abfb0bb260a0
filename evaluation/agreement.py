"""Inter-reader agreement, ROC AUC from confidence ratings, clustered bootstrap, McNemar.

All functions take a validated votes table (:func:`evaluation.readers.validate_votes`): columns
``reader, case, organ, truth, answer`` (+ ``confidence`` 1-5). Real tumor = positive.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from core.vocabulary import Answer
from evaluation.readers import realness_score

ANSWER_CODES = {"synthetic": 0, "unsure": 1, "real": 2}
STATISTICS = ("accuracy", "sensitivity", "specificity")


def _answer_matrix(votes: pd.DataFrame, unsure: str) -> pd.DataFrame:
    """case x reader matrix of answer codes (NaN = not answered, or unsure when excluded)."""
    codes = votes["answer"].map(ANSWER_CODES).astype(float)
    if unsure == "exclude":
        codes[votes["answer"] == Answer.UNSURE] = np.nan
    elif unsure != "category":
        raise ValueError(f"unsure must be 'category' or 'exclude', got {unsure!r}")
    return votes.assign(code=codes).pivot(index="case", columns="reader", values="code")


def pairwise_cohen_kappa(
    votes: pd.DataFrame, unsure: str = "category", alpha: float = 0.05
) -> pd.DataFrame:
    """Cohen's kappa for every reader pair over the cases both answered, with a 95% CI.

    ``unsure="category"`` treats unsure as a third nominal answer; ``"exclude"`` drops a case
    from a pair when either reader was unsure. Columns ``reader_a, reader_b, n_cases, kappa,
    kappa_low, kappa_high``: kappa from scikit-learn, the interval from statsmodels'
    ``cohens_kappa`` standard error (asymptotic, Fleiss, Cohen & Everitt 1969) as a Wald
    interval clipped to [-1, 1]. NaN for fewer than 2 shared cases or when both readers gave one constant answer.
    """
    from scipy.stats import norm
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import cohens_kappa

    mat = _answer_matrix(votes, unsure)
    rows = []
    for a, b in combinations(sorted(mat.columns), 2):
        both = mat[[a, b]].dropna()
        kappa = low = high = float("nan")
        if len(both) >= 2 and not (both[a].nunique() == 1 and both[b].nunique() == 1):
            kappa = float(cohen_kappa_score(both[a], both[b]))
            codes = sorted(ANSWER_CODES.values())
            table = pd.crosstab(both[a], both[b]).reindex(index=codes, columns=codes, fill_value=0)
            with np.errstate(invalid="ignore", divide="ignore"):  # degenerate table: NaN
                se = float(cohens_kappa(table.to_numpy()).std_kappa)
            q = float(norm.ppf(1 - alpha / 2))
            low, high = max(kappa - q * se, -1.0), min(kappa + q * se, 1.0)
        rows.append(
            {
                "reader_a": a,
                "reader_b": b,
                "n_cases": len(both),
                "kappa": kappa,
                "kappa_low": low,
                "kappa_high": high,
            }
        )
    return pd.DataFrame(
        rows, columns=["reader_a", "reader_b", "n_cases", "kappa", "kappa_low", "kappa_high"]
    )


def kappa_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """Symmetric reader x reader matrix from :func:`pairwise_cohen_kappa` (diagonal = 1)."""
    readers = sorted(set(pairs["reader_a"]) | set(pairs["reader_b"]))
    mat = pd.DataFrame(np.eye(len(readers)), index=readers, columns=readers)
    for row in pairs.itertuples():
        mat.loc[row.reader_a, row.reader_b] = mat.loc[row.reader_b, row.reader_a] = row.kappa
    return mat


def fleiss_kappa(votes: pd.DataFrame, unsure: str = "category") -> tuple[float, int]:
    """Fleiss' kappa (statsmodels) over the cases every reader answered; returns (kappa, n_cases).

    Needs at least two readers; NaN when fewer than two complete cases remain.
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    mat = _answer_matrix(votes, unsure).dropna()
    if mat.shape[1] < 2 or len(mat) < 2:
        return float("nan"), len(mat)
    table, _ = aggregate_raters(mat.to_numpy().astype(int), n_cat=len(ANSWER_CODES))
    return float(_fleiss(table, method="fleiss")), len(mat)


def reader_auc(votes: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per reader (x organ, plus organ='all') ROC AUC of the realness score, real = positive,
    with its DeLong standard error and Wald 95% interval clipped to [0, 1]
    (:func:`evaluation.mrmc.auc_ci_delong`).

    Uses ``confidence`` when the column exists. AUC is NaN when a group lacks either class,
    its interval too when a class has fewer than 2 cases. Columns ``reader, organ, n_real,
    n_synthetic, auc, auc_se, auc_low, auc_high, uses_confidence``.
    """
    from evaluation.mrmc import auc_ci_delong

    has_conf = "confidence" in votes.columns and votes["confidence"].notna().any()
    rows = []
    for reader, rv in votes.groupby("reader", sort=True):
        for organ in [*sorted(rv["organ"].unique()), "all"]:
            part = rv if organ == "all" else rv[rv["organ"] == organ]
            y = (part["truth"] == Answer.REAL).to_numpy()
            score = realness_score(part["answer"], part["confidence"] if has_conf else None)
            auc, se, low, high = auc_ci_delong(score, y, alpha)
            rows.append(
                {
                    "reader": reader,
                    "organ": organ,
                    "n_real": int(y.sum()),
                    "n_synthetic": int((~y).sum()),
                    "auc": auc,
                    "auc_se": se,
                    "auc_low": low,
                    "auc_high": high,
                    "uses_confidence": bool(has_conf),
                }
            )
    return pd.DataFrame(rows)


def fleiss_kappa_ci(
    votes: pd.DataFrame,
    unsure: str = "category",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Fleiss' kappa with a percentile bootstrap interval over cases (the cases every reader
    answered, resampled with replacement; ``seed`` drives a ``numpy.random.Generator``).

    statsmodels gives Fleiss' kappa without a standard error; resampling cases is the usual
    interval for a fixed panel of readers. Returns ``{"kappa", "low", "high", "n_cases",
    "n_boot"}`` (NaN interval below 2 complete cases).
    """
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    kappa, n = fleiss_kappa(votes, unsure)
    low = high = float("nan")
    if np.isfinite(kappa):
        mat = _answer_matrix(votes, unsure).dropna().to_numpy().astype(int)
        table, _ = aggregate_raters(mat, n_cat=len(ANSWER_CODES))
        rng = np.random.default_rng(seed)
        boots = np.empty(n_boot)
        with np.errstate(invalid="ignore", divide="ignore"):
            for b in range(n_boot):
                boots[b] = _fleiss(table[rng.integers(0, len(table), len(table))], method="fleiss")
        low, high = (
            float(v) for v in np.nanpercentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        )
    return {"kappa": kappa, "low": low, "high": high, "n_cases": n, "n_boot": n_boot}


def _correct_matrices(votes: pd.DataFrame, unsure: str) -> tuple[np.ndarray, np.ndarray]:
    """reader x case correctness (1/0, NaN = excluded or missing) and per-case truth (real?)."""
    correct = (votes["answer"] == votes["truth"]).astype(float)
    if unsure == "exclude":
        correct[votes["answer"] == Answer.UNSURE] = np.nan
    wide = votes.assign(correct=correct).pivot(index="reader", columns="case", values="correct")
    truth = votes.drop_duplicates("case").set_index("case")["truth"].reindex(wide.columns)
    return wide.to_numpy(dtype=float), (truth == Answer.REAL).to_numpy()


def _pooled(correct: np.ndarray, is_real: np.ndarray, statistic: str) -> float:
    if statistic == "sensitivity":
        correct = correct[:, is_real]
    elif statistic == "specificity":
        correct = correct[:, ~is_real]
    n = np.isfinite(correct).sum()
    return float(np.nansum(correct) / n) if n else float("nan")


def cluster_bootstrap(
    votes: pd.DataFrame,
    statistic: str = "accuracy",
    *,
    n_boot: int = 2000,
    seed: int = 0,
    unsure: str = "exclude",
    alpha: float = 0.05,
) -> dict[str, float]:
    """Pooled accuracy / sensitivity / specificity over all readers with a two-way bootstrap CI.

    Reads are correlated within a reader and within a case, so a plain binomial interval over
    pooled reads is too narrow. Each replicate resamples readers with replacement and,
    independently, cases with replacement within each truth class (keeping the numbers of real
    and synthetic cases fixed), then recomputes the pooled proportion over the selected
    reader x case cells. Percentile interval; ``seed`` drives a ``numpy.random.Generator``.
    Returns ``{"estimate", "low", "high", "n_readers", "n_cases", "n_boot"}``.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if unsure not in ("exclude", "wrong"):
        raise ValueError(f"unsure must be 'exclude' or 'wrong', got {unsure!r}")
    correct, is_real = _correct_matrices(votes, unsure)
    estimate = _pooled(correct, is_real, statistic)
    rng = np.random.default_rng(seed)
    n_readers = correct.shape[0]
    real_idx, syn_idx = np.flatnonzero(is_real), np.flatnonzero(~is_real)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        r = rng.integers(0, n_readers, n_readers)
        cases = np.concatenate(
            [
                rng.choice(real_idx, real_idx.size) if real_idx.size else real_idx,
                rng.choice(syn_idx, syn_idx.size) if syn_idx.size else syn_idx,
            ]
        )
        stats[b] = _pooled(correct[np.ix_(r, cases)], is_real[cases], statistic)
    low, high = np.nanpercentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {
        "estimate": estimate,
        "low": float(low),
        "high": float(high),
        "n_readers": int(n_readers),
        "n_cases": int(correct.shape[1]),
        "n_boot": int(n_boot),
    }


def mcnemar_paired(
    correct_a: np.ndarray, correct_b: np.ndarray, *, exact: bool = True
) -> dict[str, float]:
    """McNemar test of two paired boolean correctness vectors (same cases, same order).

    Returns the discordant counts ``b`` (a right, b wrong) and ``c`` (a wrong, b right), the
    statistic and p-value (statsmodels; exact binomial by default, as discordant counts are
    small in reader studies).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired vectors must have equal shapes, got {a.shape} and {b.shape}")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    res = mcnemar(table, exact=exact)
    return {
        "n": int(a.size),
        "a_right_b_wrong": int(table[0, 1]),
        "a_wrong_b_right": int(table[1, 0]),
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
    }


def mcnemar_readers(
    votes: pd.DataFrame, reader_a: str, reader_b: str, unsure: str = "wrong"
) -> dict[str, float]:
    """McNemar between two readers on the cases both answered.

    Unsure counts as wrong by default here (a paired test cannot drop one side of a pair); with
    ``unsure="exclude"`` cases where either reader was unsure are dropped.
    """
    sub = votes[votes["reader"].isin([reader_a, reader_b])]
    if unsure == "exclude":
        unsure_cases = sub.loc[sub["answer"] == Answer.UNSURE, "case"]
        sub = sub[~sub["case"].isin(unsure_cases)]
    wide = (
        sub.assign(correct=sub["answer"] == sub["truth"])
        .pivot(index="case", columns="reader", values="correct")
        .dropna()
    )
    return mcnemar_paired(wide[reader_a].astype(bool), wide[reader_b].astype(bool))

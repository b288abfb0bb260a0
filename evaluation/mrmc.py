"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski-Rockette with Hillis degrees of freedom.

What RJafroc (R) and the Iowa OR-DBM MRMC program compute, in numpy/scipy. No Python library
does the OR analysis (statsmodels and scikit-learn stop at one reader's AUC), so the formulas are
written out here and tested against the published Van Dyke results
(``tests/evaluation/test_mrmc.py``, data in ``../shared/data/mrmc_vandyke``).

Layout and notation (Hillis 2007, 2008): ``I`` modalities x ``J`` readers x ``K`` cases; a
ratings array ``(I, J, K)`` (higher = more confident positive), ``truth`` ``(K,)`` with 1 =
positive. A modality may use only some of the cases (``NaN`` ratings elsewhere): a study's
methods share the real cases but each has its own synthetic ones; every reader must rate every
case of a modality.

- AUC: empirical (Wilcoxon / trapezoidal), ties counted 1/2.
- OR covariances of the I*J AUCs, by case jackknife (default: ``(K-1)/K`` times the sum of
  cross-products of leave-one-case-out AUCs around their mean, K = all cases) or DeLong
  (structural components, ``S10/m + S01/n``). ``var`` averages the variances, ``cov1`` the
  covariances of one reader across modalities, ``cov2`` of different readers in one modality,
  ``cov3`` of different readers and modalities.
- RRRC (random readers and cases): ``F = MS(T) / [MS(T*R) + J max(Cov2 - Cov3, 0)]`` with
  Hillis' ddf ``[MS(T*R) + J max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(I-1)(J-1)]}``; each
  modality alone: ``SE = sqrt{[MS(R_i) + J max(Cov2_i, 0)] / J}`` with
  ``df = [MS(R_i) + J max(Cov2_i, 0)]^2 / [MS(R_i)^2 / (J-1)]`` (Hillis 2007, section 5.3) and
  the two-sided t test of AUC = 0.5.
- FRRC (fixed readers): ``X2 = (I-1) MS(T) / [Var - Cov1 + (J-1) max(Cov2 - Cov3, 0)]`` on
  ``I-1`` df, normal CIs; per reader ``SE = sqrt[2 (Var_j - Cov1_j)]``; each modality
  ``SE = sqrt{[Var_i + (J-1) max(Cov2_i, 0)] / J}`` (as printed by OR-DBM MRMC 2.51).
- RRFC (fixed cases): ``F = MS(T) / MS(T*R)`` on ``(I-1), (I-1)(J-1)`` df; each modality
  ``SE = sqrt[MS(R_i) / J]`` on ``J-1`` df.

The clipping ``max(Cov2 - Cov3, 0)`` (and ``max(Cov2_i, 0)``) is Hillis': a negative estimate of
the reader-case covariance difference is set to 0 so that the error term never falls below
``MS(T*R)``. The OR variance components ``var_r = [MS(R) - MS(T*R)] / I - Cov1 + Cov3`` and
``var_tr = MS(T*R) - Var + Cov1 + Cov2 - Cov3`` are ANOVA estimates and may be negative;
they are reported as computed. Degenerate cases: with ``J = 1`` the random-reader analyses are
undefined (None); an error term of 0 gives an infinite statistic (p = 0) when the effect is
nonzero and a CI of zero width; an infinite ddf (``MS(T*R) = 0``) uses the normal distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from core.vocabulary import Answer
from evaluation.tables import EvaluationInputError

COLUMNS = ("reader", "modality", "case", "truth", "rating")
COVARIANCE_METHODS = ("jackknife", "delong")


@dataclass(frozen=True)
class RatingsData:
    """Ratings ``(I, J, K)`` float64 (NaN where a case is not part of a modality), truth
    ``(K,)`` bool (True = positive), labels in order of first appearance."""

    ratings: np.ndarray
    truth: np.ndarray
    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]

    @property
    def in_modality(self) -> np.ndarray:
        """``(I, K)`` bool: which cases belong to each modality."""
        return np.isfinite(self.ratings[:, 0, :])


# ---------------------------------------------------------------- input


def _fail(path, problem: str, fix: str):
    raise EvaluationInputError(path, problem, fix)


def read_ratings(path: str | Path) -> pd.DataFrame:
    """Read a ratings CSV (columns ``reader,modality,case,truth,rating``) as strings."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "file does not exist", "check the path to the ratings CSV")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        _fail(
            path,
            f"is not a readable CSV ({exc.__class__.__name__}: {exc})",
            "save the ratings as comma-separated UTF-8 text with a header line",
        )
    raise AssertionError("unreachable")


def ratings_data(
    df: pd.DataFrame, path: str | Path | None = None, *, crossed: bool = True
) -> RatingsData:
    """Validate a long ratings table and arrange it as :class:`RatingsData`.

    ``crossed=True`` (a ratings CSV): every reader rates every case under every modality.
    ``crossed=False`` (built from a study): a modality's cases are those that appear under it,
    and every reader must rate all of them. Errors name the CSV line (header = line 1) or the
    missing reader / modality / case.
    """
    df = df.copy()
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        _fail(
            path,
            f"missing column(s) {', '.join(missing)} (found {', '.join(df.columns)})",
            f"the ratings CSV needs columns {','.join(COLUMNS)}",
        )
    if df.empty:
        _fail(path, "has no rating rows", "add one row per reader x modality x case")
    df = df.reset_index(drop=True)
    for col in ("reader", "modality", "case", "truth", "rating"):
        df[col] = df[col].astype(str).str.strip()
        blank = (df[col] == "") | (df[col].str.lower() == "nan")
        if blank.any():
            _fail(
                path,
                f"column {col} is empty on line {int(np.flatnonzero(blank)[0]) + 2}",
                f"fill in {col} on every row",
            )
    rating = pd.to_numeric(df["rating"], errors="coerce")
    bad = ~np.isfinite(rating.to_numpy(dtype=float))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(
            path,
            f"rating must be a finite number, got {df['rating'][i]!r} on line {i + 2}",
            "use numeric ratings (higher = more confident positive)",
        )
    truth = pd.to_numeric(df["truth"], errors="coerce")
    bad = ~truth.isin([0, 1]).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(
            path,
            f"truth must be 0 or 1, got {df['truth'][i]!r} on line {i + 2}",
            "use 1 for positive (diseased / real tumor) and 0 for negative",
        )
    df["rating"], df["truth"] = rating.astype(float), truth.astype(int)
    first = df.drop_duplicates("case").set_index("case")["truth"]
    conflict = df["truth"].to_numpy() != first.reindex(df["case"]).to_numpy()
    if conflict.any():
        i = int(np.flatnonzero(conflict)[0])
        _fail(
            path,
            f"case {df['case'][i]!r} has truth {df['truth'][i]} on line {i + 2} but "
            f"{first[df['case'][i]]} on an earlier line",
            "give each case one truth",
        )
    dup = df.duplicated(["reader", "modality", "case"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        _fail(
            path,
            f"reader {df['reader'][i]!r} rated case {df['case'][i]!r} under modality "
            f"{df['modality'][i]!r} twice (line {i + 2})",
            "keep one rating per reader x modality x case",
        )
    modalities = tuple(pd.unique(df["modality"]))
    readers = tuple(pd.unique(df["reader"]))
    cases = tuple(pd.unique(df["case"]))
    cube = df.pivot(index=["modality", "reader"], columns="case", values="rating")
    full = pd.MultiIndex.from_product([modalities, readers], names=["modality", "reader"])
    cube = cube.reindex(index=full, columns=list(cases))
    arr = cube.to_numpy(dtype=float).reshape(len(modalities), len(readers), len(cases))
    present = np.isfinite(arr)
    need = np.ones_like(present) if crossed else present.any(axis=1, keepdims=True)
    need = np.broadcast_to(need, present.shape)
    if (need & ~present).any():
        i, j, k = (int(v[0]) for v in np.nonzero(need & ~present))
        _fail(
            path,
            f"reader {readers[j]!r} has no rating of case {cases[k]!r} under modality "
            f"{modalities[i]!r}",
            "every reader must rate every case of every modality"
            + ("" if crossed else " (answer the remaining cases or drop the reader)"),
        )
    truth_k = first.reindex(list(cases)).to_numpy() == 1
    for i, m in enumerate(modalities):
        used = present[i, 0]
        n_pos, n_neg = int((truth_k & used).sum()), int((~truth_k & used).sum())
        if n_pos < 2 or n_neg < 2:
            _fail(
                path,
                f"modality {m!r} has {n_pos} positive and {n_neg} negative cases",
                "an AUC with a jackknife variance needs at least 2 cases of each truth",
            )
    return RatingsData(
        arr, truth_k, tuple(map(str, modalities)), tuple(map(str, readers)), tuple(map(str, cases))
    )


def ratings_from_votes(votes: pd.DataFrame) -> pd.DataFrame:
    """Long ratings table (``reader,modality,case,truth,rating``) from a validated votes table.

    Positive (truth 1) = real tumor. Rating = the answer combined with its confidence on one
    ordinal "realness" scale (:func:`evaluation.readers.realness_score`): real with confidence
    c -> +c, synthetic with confidence c -> -c, unsure -> 0 (c = 1 without confidence), so -5
    (surely synthetic) ... +5 (surely real). Modality = synthesis method; real cases whose
    method is blank or ``real`` are shared by every method; without a named method the single
    modality is ``all``.
    """
    from evaluation.readers import SHARED_METHODS, realness_score

    conf = votes["confidence"] if "confidence" in votes.columns else None
    base = pd.DataFrame(
        {
            "reader": votes["reader"].astype(str),
            "case": votes["case"].astype(str),
            "truth": (votes["truth"] == Answer.REAL).astype(int),
            "rating": realness_score(votes["answer"], conf),
        }
    )
    method = votes["method"] if "method" in votes.columns else pd.Series("", index=votes.index)
    shared = (votes["truth"] == Answer.REAL) & method.isin(SHARED_METHODS)
    named = sorted(set(method[~shared & ~method.isin(SHARED_METHODS)]))
    if not named:
        return base.assign(modality="all")[list(COLUMNS)]
    parts = [base[shared | (method == m)].assign(modality=m) for m in named]
    unnamed = ~shared & method.isin(SHARED_METHODS)
    if unnamed.any():
        parts.append(base[shared | unnamed].assign(modality="unspecified"))
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


# ---------------------------------------------------------------- AUC and covariances


def placements(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components: ``V10`` per positive (fraction of negatives rated lower,
    ties 1/2) and ``V01`` per negative (fraction of positives rated higher, ties 1/2).

    ``mean(V10) == mean(V01) ==`` the empirical AUC. O((m + n) log(m + n)).
    """
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    lo, hi = np.searchsorted(neg_sorted, pos, "left"), np.searchsorted(neg_sorted, pos, "right")
    v10 = (lo + 0.5 * (hi - lo)) / neg.size
    lo, hi = np.searchsorted(pos_sorted, neg, "left"), np.searchsorted(pos_sorted, neg, "right")
    v01 = (pos.size - hi + 0.5 * (hi - lo)) / pos.size
    return v10, v01


def empirical_auc(ratings: np.ndarray, truth: np.ndarray) -> float:
    """Empirical (Wilcoxon) AUC of ``ratings`` for binary ``truth``; ties count 1/2."""
    truth = np.asarray(truth, dtype=bool)
    r = np.asarray(ratings, dtype=float)
    v10, _ = placements(r[truth], r[~truth])
    return float(v10.mean())


def auc_ci_delong(ratings, truth, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """Empirical AUC, its DeLong standard error and the Wald ``1 - alpha`` interval clipped to
    [0, 1]: ``(auc, se, low, high)``; NaN when a class has fewer than 2 cases."""
    truth = np.asarray(truth, dtype=bool)
    r = np.asarray(ratings, dtype=float)
    if truth.sum() < 2 or (~truth).sum() < 2:
        nan = float("nan")
        return (empirical_auc(r, truth) if truth.any() and (~truth).any() else nan), nan, nan, nan
    v10, v01 = placements(r[truth], r[~truth])
    auc = float(v10.mean())
    se = float(np.sqrt(v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size))
    q = stats.norm.ppf(1 - alpha / 2)
    return auc, se, float(max(auc - q * se, 0.0)), float(min(auc + q * se, 1.0))


def _components(data: RatingsData):
    """AUCs ``(I, J)`` and per-case structural components ``(I, J, K)`` (NaN if unused)."""
    n_mod, n_rdr, n_case = data.ratings.shape
    auc = np.empty((n_mod, n_rdr))
    comp = np.full(data.ratings.shape, np.nan)
    for i in range(n_mod):
        pos = data.truth & data.in_modality[i]
        neg = ~data.truth & data.in_modality[i]
        for j in range(n_rdr):
            r = data.ratings[i, j]
            v10, v01 = placements(r[pos], r[neg])
            auc[i, j] = v10.mean()
            comp[i, j, pos], comp[i, j, neg] = v10, v01
    return auc, comp


def auc_matrix(data: RatingsData) -> np.ndarray:
    """Empirical AUC per modality x reader, ``(I, J)``."""
    return _components(data)[0]


def jackknife_aucs(data: RatingsData) -> np.ndarray:
    """Leave-one-case-out AUCs ``(I, J, K)``; a case outside a modality leaves its AUC as is.

    Exact, without refitting: removing positive p gives ``(m AUC - V10_p) / (m - 1)``,
    removing negative q gives ``(n AUC - V01_q) / (n - 1)``.
    """
    auc, comp = _components(data)
    out = np.broadcast_to(auc[..., None], comp.shape).copy()
    for i in range(auc.shape[0]):
        pos = data.truth & data.in_modality[i]
        neg = ~data.truth & data.in_modality[i]
        m, n = pos.sum(), neg.sum()
        out[i][:, pos] = (m * auc[i][:, None] - comp[i][:, pos]) / (m - 1)
        out[i][:, neg] = (n * auc[i][:, None] - comp[i][:, neg]) / (n - 1)
    return out


def auc_covariance(data: RatingsData, method: str = "jackknife") -> np.ndarray:
    """Covariance matrix ``(I*J, I*J)`` of the AUCs (row index = i * J + j).

    ``jackknife``: ``(K-1)/K * sum_k (A_k - mean)(A_k - mean)^T`` over the K cases.
    ``delong``: ``S10/m + S01/n``, written as a sum over cases of influence products
    ``(V - AUC) / sqrt(m (m - 1))`` so that modalities with disjoint cases (a study's
    synthetic arms) are uncorrelated and shared cases (its real arm) are counted once; for a
    crossed design it is exactly DeLong's estimate.
    """
    if method not in COVARIANCE_METHODS:
        raise ValueError(f"covariance must be one of {COVARIANCE_METHODS}, got {method!r}")
    n_mod, n_rdr, n_case = data.ratings.shape
    if method == "jackknife":
        jk = jackknife_aucs(data).reshape(n_mod * n_rdr, n_case)
        dev = jk - jk.mean(axis=1, keepdims=True)
        return dev @ dev.T * (n_case - 1) / n_case
    auc, comp = _components(data)
    infl = np.zeros(comp.shape)
    for i in range(n_mod):
        for cls in (data.truth, ~data.truth):
            sel = cls & data.in_modality[i]
            size = sel.sum()
            infl[i][:, sel] = (comp[i][:, sel] - auc[i][:, None]) / np.sqrt(size * (size - 1))
    flat = infl.reshape(n_mod * n_rdr, n_case)
    return flat @ flat.T


def covariance_components(cov: np.ndarray, n_mod: int, n_rdr: int) -> dict[str, float]:
    """``var, cov1, cov2, cov3`` averaged from an ``(I*J, I*J)`` AUC covariance matrix
    (NaN where a kind of pair does not exist, e.g. ``cov1`` with one modality)."""
    c = cov.reshape(n_mod, n_rdr, n_mod, n_rdr)
    same_i = np.eye(n_mod, dtype=bool)[:, None, :, None]
    same_j = np.eye(n_rdr, dtype=bool)[None, :, None, :]
    out = {}
    for name, sel in (
        ("var", same_i & same_j),
        ("cov1", ~same_i & same_j),
        ("cov2", same_i & ~same_j),
        ("cov3", ~same_i & ~same_j),
    ):
        sel = np.broadcast_to(sel, c.shape)
        out[name] = float(c[sel].mean()) if sel.any() else float("nan")
    return out


def mean_squares(auc: np.ndarray) -> dict[str, float]:
    """Treatment x reader ANOVA mean squares of the AUCs ``(I, J)``: ``t``, ``r``, ``tr``."""
    n_mod, n_rdr = auc.shape
    grand, by_mod, by_rdr = auc.mean(), auc.mean(axis=1), auc.mean(axis=0)
    ms_t = n_rdr * ((by_mod - grand) ** 2).sum() / (n_mod - 1) if n_mod > 1 else np.nan
    ms_r = n_mod * ((by_rdr - grand) ** 2).sum() / (n_rdr - 1) if n_rdr > 1 else np.nan
    inter = auc - by_mod[:, None] - by_rdr[None, :] + grand
    dof = (n_mod - 1) * (n_rdr - 1)
    ms_tr = (inter**2).sum() / dof if dof > 0 else np.nan
    return {"t": float(ms_t), "r": float(ms_r), "tr": float(ms_tr)}


# ---------------------------------------------------------------- analyses


def _t_interval(est: float, se: float, df: float, alpha: float) -> list[float]:
    q = stats.norm.ppf(1 - alpha / 2) if not np.isfinite(df) else stats.t.ppf(1 - alpha / 2, df)
    return [float(est - q * se), float(est + q * se)]


def _two_sided_p(est: float, se: float, df: float) -> float:
    if se == 0:
        return 1.0 if est == 0 else 0.0
    z = abs(est) / se
    return float(2 * (stats.norm.sf(z) if not np.isfinite(df) else stats.t.sf(z, df)))


def _f_p(f: float, df1: float, df2: float) -> float:
    if np.isnan(f):
        return float("nan")
    if np.isinf(f):
        return 0.0
    if not np.isfinite(df2):
        return float(stats.chi2.sf(f * df1, df1))
    return float(stats.f.sf(f, df1, df2))


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return float("nan") if num == 0 else float("inf")


def _difference(a: str, b: str, est: float, se: float, df: float, alpha: float) -> dict:
    return {
        "modalities": [a, b],
        "estimate": float(est),
        "se": float(se),
        "df": float(df),
        "ci95": _t_interval(est, se, df, alpha),
        "p": _two_sided_p(est, se, df),
    }


def _single(auc: float, se: float, df: float, alpha: float) -> dict:
    return {
        "auc": float(auc),
        "se": float(se),
        "df": float(df),
        "ci95": _t_interval(auc, se, df, alpha),
        "t_vs_chance": float((auc - 0.5) / se) if se > 0 else float("nan"),
        "p_vs_chance": _two_sided_p(auc - 0.5, se, df),
    }


def or_analysis(data: RatingsData, covariance: str = "jackknife", alpha: float = 0.05) -> dict:
    """The full OR analysis as the ``mrmc.json`` mapping (see the module docstring).

    Keys: ``modalities``, ``readers``, ``auc`` {modality: {reader: AUC}}, ``mean_auc``,
    ``covariance`` {``method``, ``var``, ``cov1``, ``cov2``, ``cov3``}, ``mean_squares``
    {``t``, ``r``, ``tr``}, ``variance_components`` {``var_r``, ``var_tr``}, ``rrrc`` {``f``,
    ``ddf``, ``p``, ``differences``, ``single``}, ``frrc`` {``chisq``, ``df``, ``p``,
    ``differences``, ``per_reader``, ``single``}, ``rrfc`` {``f``, ``ddf``, ``p``,
    ``differences``, ``single``}, ``n_cases``, ``n_positive``, ``n_negative``, ``alpha``.
    Differences are a - b for every pair in the order of ``modalities``; ``single`` holds each
    modality's AUC, SE, df, CI and the test of AUC = 0.5. Undefined values are NaN.
    """
    n_mod, n_rdr, _ = data.ratings.shape
    auc = auc_matrix(data)
    cov = auc_covariance(data, covariance)
    comp = covariance_components(cov, n_mod, n_rdr)
    var, cov1, cov2, cov3 = comp["var"], comp["cov1"], comp["cov2"], comp["cov3"]
    ms = mean_squares(auc)
    means = auc.mean(axis=1)
    mods = data.modalities
    pairs = list(combinations(range(n_mod), 2))
    c4 = cov.reshape(n_mod, n_rdr, n_mod, n_rdr)
    nan = float("nan")

    # per-modality quantities: reader mean square, Var_i and Cov2_i of that modality alone
    ms_r_i, var_i, cov2_i = [], [], []
    for i in range(n_mod):
        ms_r_i.append(float(((auc[i] - means[i]) ** 2).sum() / (n_rdr - 1)) if n_rdr > 1 else nan)
        block = c4[i, :, i, :]
        var_i.append(float(np.diag(block).mean()))
        off = block[~np.eye(n_rdr, dtype=bool)]
        cov2_i.append(float(off.mean()) if off.size else nan)

    clip = max(cov2 - cov3, 0.0) if n_mod > 1 and n_rdr > 1 else 0.0
    # RRRC
    rrrc: dict = {"f": nan, "ddf": nan, "p": nan, "differences": [], "single": {}}
    if n_rdr > 1:
        if n_mod > 1:
            den = ms["tr"] + n_rdr * clip
            ddf = _ratio(den**2, ms["tr"] ** 2 / ((n_mod - 1) * (n_rdr - 1)))
            f = _ratio(ms["t"], den)
            rrrc.update(f=f, ddf=ddf, p=_f_p(f, n_mod - 1, ddf), error_term=den)
            se = np.sqrt(2 * den / n_rdr)
            rrrc["differences"] = [
                _difference(mods[a], mods[b], means[a] - means[b], se, ddf, alpha) for a, b in pairs
            ]
        for i in range(n_mod):
            den_i = ms_r_i[i] + n_rdr * max(cov2_i[i], 0.0)
            df_i = _ratio(den_i**2, ms_r_i[i] ** 2 / (n_rdr - 1))
            rrrc["single"][mods[i]] = _single(means[i], np.sqrt(den_i / n_rdr), df_i, alpha)

    # FRRC
    frrc: dict = {
        "chisq": nan,
        "df": n_mod - 1,
        "p": nan,
        "differences": [],
        "per_reader": [],
        "single": {},
    }
    if n_mod > 1:
        den = var - cov1 + (n_rdr - 1) * clip
        chisq = (n_mod - 1) * _ratio(ms["t"], den)
        frrc.update(
            chisq=chisq,
            p=float(stats.chi2.sf(chisq, n_mod - 1))
            if np.isfinite(chisq)
            else (0.0 if np.isinf(chisq) else nan),
            error_term=den,
        )
        se = np.sqrt(2 * den / n_rdr)
        frrc["differences"] = [
            _difference(mods[a], mods[b], means[a] - means[b], se, np.inf, alpha) for a, b in pairs
        ]
        for j, reader in enumerate(data.readers):
            block = c4[:, j, :, j]
            var_j = float(np.diag(block).mean())
            cov1_j = float(block[~np.eye(n_mod, dtype=bool)].mean())
            se_j = np.sqrt(max(2 * (var_j - cov1_j), 0.0))
            for a, b in pairs:
                frrc["per_reader"].append(
                    {
                        "reader": reader,
                        **_difference(mods[a], mods[b], auc[a, j] - auc[b, j], se_j, np.inf, alpha),
                        "var": var_j,
                        "cov1": cov1_j,
                    }
                )
    for i in range(n_mod):
        c2 = max(cov2_i[i], 0.0) if n_rdr > 1 else 0.0
        se_i = np.sqrt((var_i[i] + (n_rdr - 1) * c2) / n_rdr)
        frrc["single"][mods[i]] = {
            **_single(means[i], se_i, np.inf, alpha),
            "var": var_i[i],
            "cov2": cov2_i[i],
        }

    # RRFC
    rrfc: dict = {"f": nan, "ddf": nan, "p": nan, "differences": [], "single": {}}
    if n_rdr > 1:
        if n_mod > 1:
            ddf = float((n_mod - 1) * (n_rdr - 1))
            f = _ratio(ms["t"], ms["tr"])
            rrfc.update(f=f, ddf=ddf, p=_f_p(f, n_mod - 1, ddf))
            se = np.sqrt(2 * ms["tr"] / n_rdr)
            rrfc["differences"] = [
                _difference(mods[a], mods[b], means[a] - means[b], se, ddf, alpha) for a, b in pairs
            ]
        for i in range(n_mod):
            rrfc["single"][mods[i]] = {
                **_single(means[i], np.sqrt(ms_r_i[i] / n_rdr), n_rdr - 1, alpha),
                "ms_r": ms_r_i[i],
            }

    # E[MS(R)] = I var_r + var_tr + Var + (I-1) Cov1 - Cov2 - (I-1) Cov3 (Hillis 2005)
    if n_rdr < 2:
        var_r = nan
    elif n_mod > 1:
        var_r = (ms["r"] - ms["tr"]) / n_mod - cov1 + cov3
    else:
        var_r = ms["r"] - var + cov2
    var_tr = (ms["tr"] - var + cov1 + cov2 - cov3) if n_mod > 1 and n_rdr > 1 else nan
    return {
        "modalities": list(mods),
        "readers": list(data.readers),
        "auc": {
            m: {r: float(auc[i, j]) for j, r in enumerate(data.readers)} for i, m in enumerate(mods)
        },
        "mean_auc": {m: float(means[i]) for i, m in enumerate(mods)},
        "covariance": {"method": covariance, **comp},
        "mean_squares": ms,
        "variance_components": {"var_r": float(var_r), "var_tr": float(var_tr)},
        "rrrc": rrrc,
        "frrc": frrc,
        "rrfc": rrfc,
        "n_cases": {m: int(data.in_modality[i].sum()) for i, m in enumerate(mods)},
        "n_positive": int(data.truth.sum()),
        "n_negative": int((~data.truth).sum()),
        "alpha": alpha,
    }


CONVENTIONS = {
    "method": "Obuchowski-Rockette analysis with Hillis (2007, 2008) denominator degrees of "
    "freedom, as in RJafroc and OR-DBM MRMC 2.51",
    "auc": "empirical (Wilcoxon/trapezoidal) AUC per reader x modality, ties counted 1/2",
    "covariance": "jackknife over cases ((K-1)/K x sum of cross-products) or DeLong "
    "(S10/m + S01/n); Var, Cov1 (same reader), Cov2 (same modality), Cov3 (neither)",
    "rrrc": "F = MS(T) / [MS(T*R) + J max(Cov2 - Cov3, 0)], Hillis ddf; single modality: "
    "SE = sqrt{[MS(R_i) + J max(Cov2_i, 0)] / J}, ddf_H_single; test of AUC = 0.5",
    "frrc": "X2 = (I-1) MS(T) / [Var - Cov1 + (J-1) max(Cov2 - Cov3, 0)], normal CIs",
    "rrfc": "F = MS(T) / MS(T*R) on (I-1), (I-1)(J-1) df",
    "differences": "a - b in the order of the modalities",
    "intervals": "95% two-sided",
}


def result_table(result: dict) -> pd.DataFrame:
    """One long table of an :func:`or_analysis` result (the CSV / HTML view).

    Columns ``analysis, quantity, modality, modality_b, reader, estimate, se, df, ci_low,
    ci_high, statistic, p``; ``quantity`` is ``auc`` (a reader's AUC), ``test`` (the global
    test), ``difference``, ``reader_difference`` (FRRC per reader) or ``single``.
    """
    rows = []
    for m, by_reader in result["auc"].items():
        for r, v in by_reader.items():
            rows.append(
                {"analysis": "auc", "quantity": "auc", "modality": m, "reader": r, "estimate": v}
            )
        rows.append(
            {
                "analysis": "auc",
                "quantity": "mean_auc",
                "modality": m,
                "estimate": result["mean_auc"][m],
            }
        )
    for name in ("rrrc", "frrc", "rrfc"):
        part = result[name]
        stat = part.get("f", part.get("chisq"))
        if len(result["modalities"]) > 1:
            rows.append(
                {
                    "analysis": name,
                    "quantity": "test",
                    "df": part.get("ddf", part.get("df")),
                    "statistic": stat,
                    "p": part["p"],
                }
            )
        for key, quantity in (("differences", "difference"), ("per_reader", "reader_difference")):
            for d in part.get(key, []):
                rows.append(
                    {
                        "analysis": name,
                        "quantity": quantity,
                        "modality": d["modalities"][0],
                        "modality_b": d["modalities"][1],
                        "reader": d.get("reader"),
                        "estimate": d["estimate"],
                        "se": d["se"],
                        "df": d["df"],
                        "ci_low": d["ci95"][0],
                        "ci_high": d["ci95"][1],
                        "p": d["p"],
                    }
                )
        for m, s in part.get("single", {}).items():
            rows.append(
                {
                    "analysis": name,
                    "quantity": "single",
                    "modality": m,
                    "estimate": s["auc"],
                    "se": s["se"],
                    "df": s["df"],
                    "ci_low": s["ci95"][0],
                    "ci_high": s["ci95"][1],
                    "statistic": s["t_vs_chance"],
                    "p": s["p_vs_chance"],
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "analysis",
            "quantity",
            "modality",
            "modality_b",
            "reader",
            "estimate",
            "se",
            "df",
            "ci_low",
            "ci_high",
            "statistic",
            "p",
        ],
    )

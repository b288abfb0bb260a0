"""Blinding audit: could anything except the tumor tell real from synthetic cases?

Features per blinded case (:func:`case_features`): every numeric NIfTI header field, the file
size, the geometry, and intensity statistics of the *context* (all voxels outside the tumor
mask dilated by :data:`CONTEXT_MARGIN_MM`): mean, spread, percentiles, padding and soft-tissue
fractions, noise (median absolute Laplacian in soft tissue) and edge strength.

:func:`run_audit` predicts the arm with a ridge classifier on standardized features,
cross-validated leave-one-out (closed form through the hat matrix, identical to
``cross_val_predict(Ridge(alpha), X, y, cv=LeaveOneOut())``), and reports the AUC with a
stratified bootstrap 95% CI and a label-permutation p-value (sklearn's
``permutation_test_score`` idea, free here because the hat matrix does not depend on the
labels). The p-value is what decides the warning: with few cases a bootstrap CI of
cross-validated scores is too narrow (about 15% false alarms at n = 20 in our null
simulations), the permutation test holds its 5% level. The warning names the single features
that separate the arms best.

Lesion size is reported on its own (``size_auc``, ``size_p_value``): it is part of the tumor,
so it stays out of the classifier, but a study whose arms differ in size can be answered from
size alone, whatever the texture looks like (``selection.match: size`` prevents that).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.stats import mannwhitneyu, rankdata

CONTEXT_MARGIN_MM = 5.0
RIDGE_ALPHA = 10.0  # penalty on standardized features; the intercept is not penalized
ALPHA_LEVEL = 0.05  # warn when the permutation p-value is below this
N_PERMUTATIONS = 2000
N_BOOTSTRAP = 1000


def header_features(nifti_gz: bytes) -> dict[str, float]:
    """Every numeric header field of a .nii.gz (arrays flattened; text fields as lengths;
    NaN -> 0) plus the compressed and raw file sizes in bytes."""
    raw = gzip.decompress(nifti_gz)
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
    out: dict[str, float] = {"file_bytes": float(len(nifti_gz)), "raw_bytes": float(len(raw))}
    for key in header:
        value = np.asarray(header[key])
        if value.dtype.kind in "SUO":
            out[f"hdr_{key}_len"] = float(len(value.tobytes().rstrip(b"\0")))
            continue
        for i, v in enumerate(np.atleast_1d(value).ravel()):
            out[f"hdr_{key}_{i}"] = float(np.nan_to_num(float(v)))
    return out


def context_features(
    ct: np.ndarray, tumor: np.ndarray, spacing: Sequence[float]
) -> dict[str, float]:
    """Intensity statistics (HU) of ``ct`` (x, y, z) outside ``tumor`` dilated by
    :data:`CONTEXT_MARGIN_MM` mm. An empty context (tumor fills the crop) gives zeros."""
    ct = np.asarray(ct, dtype=np.float32)
    radius = np.maximum(1, np.round(CONTEXT_MARGIN_MM / np.asarray(spacing))).astype(int)
    structure = np.ones(tuple(2 * r + 1 for r in radius), dtype=bool)
    context = ~ndimage.binary_dilation(np.asarray(tumor) > 0, structure=structure)
    values = ct[context]
    names = [
        "ctx_mean",
        "ctx_std",
        "ctx_p01",
        "ctx_p05",
        "ctx_p25",
        "ctx_p50",
        "ctx_p75",
        "ctx_p95",
        "ctx_p99",
        "ctx_pad_fraction",
        "ctx_soft_fraction",
        "ctx_noise",
        "ctx_gradient",
        "ctx_fraction",
    ]
    if values.size == 0:
        return dict.fromkeys(names, 0.0)
    soft = context & (ct > -100) & (ct < 200)
    lap = ndimage.laplace(ct)
    grad = ndimage.gaussian_gradient_magnitude(ct, sigma=1.0)
    pct = np.percentile(values, [1, 5, 25, 50, 75, 95, 99])
    stats = [
        values.mean(),
        values.std(),
        *pct,
        (values <= -1024).mean(),
        soft.sum() / values.size,
        np.median(np.abs(lap[soft])) if soft.any() else 0.0,
        grad[context].mean(),
        values.size / ct.size,
    ]
    return {n: float(v) for n, v in zip(names, stats, strict=True)}


def case_features(
    ct: np.ndarray, tumor: np.ndarray, spacing: Sequence[float], nifti_gz: bytes
) -> dict[str, float]:
    """All audit features of one blinded case (header + geometry + context)."""
    out = header_features(nifti_gz)
    out.update({f"shape_{i}": float(s) for i, s in enumerate(np.shape(ct))})
    out.update({f"spacing_{i}": float(s) for i, s in enumerate(spacing)})
    out.update(context_features(ct, tumor, spacing))
    return out


@dataclass(frozen=True)
class AuditResult:
    """Leave-one-out AUC of predicting the arm (synthetic = positive) without the tumor.

    ``auc`` is None when there are too few cases (fewer than 2 per arm). ``p_value`` is the
    one-sided permutation p-value of the AUC against chance. ``top_features`` are
    (name, single-feature AUC folded to >= 0.5) for the most separating features.
    """

    auc: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_real: int
    n_synthetic: int
    n_features: int
    warning: str | None
    top_features: list[tuple[str, float]] = field(default_factory=list)
    size_auc: float | None = None
    size_p_value: float | None = None
    method: str = (
        f"ridge classifier (alpha {RIDGE_ALPHA:g}, standardized features), "
        f"leave-one-out scores, stratified bootstrap 95% CI ({N_BOOTSTRAP}), "
        f"permutation p-value ({N_PERMUTATIONS} label permutations)"
    )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: Mapping) -> AuditResult:
        """From a stored ``Study.audit`` (extra keys such as ``size_match`` are ignored)."""
        return cls(**{k: v for k, v in stored.items() if k in cls.__dataclass_fields__})

    def summary(self) -> str:
        """One line for the CLI and the admin page."""
        if self.auc is None:
            return f"blinding audit: not run ({self.warning})"
        line = (
            f"blinding audit: AUC {self.auc:.2f} [95% CI {self.ci_low:.2f}-"
            f"{self.ci_high:.2f}], permutation p = {self.p_value:.3f}, on {self.n_real} "
            f"real + {self.n_synthetic} synthetic cases"
        )
        if self.size_auc is not None:
            line += f"; lesion size alone AUC {self.size_auc:.2f} (p = {self.size_p_value:.3f})"
        return line + (f"; WARNING: {self.warning}" if self.warning else " (near chance: OK)")


def auc_mann_whitney(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC via the Mann-Whitney U statistic (ties count 1/2), vectorized over rows.

    ``y`` (n,) or (B, n) of 0/1 labels with both classes in every row, ``scores`` the same
    shape; returns a scalar array or (B,). Equal to ``sklearn.metrics.roc_auc_score``.
    """
    y2, s2 = np.atleast_2d(y), np.atleast_2d(scores)
    ranks = rankdata(s2, axis=1)
    n_pos = y2.sum(axis=1)
    n_neg = y2.shape[1] - n_pos
    u = (ranks * y2).sum(axis=1) - n_pos * (n_pos + 1) / 2.0
    out = u / (n_pos * n_neg)
    return out[0] if np.ndim(y) == 1 else out


def standardize(X: np.ndarray) -> np.ndarray:
    """Z-score the columns of X (n, f), dropping constant columns (label-free, no leakage)."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0)
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(X).max(axis=0))
    return (X[:, keep] - X[:, keep].mean(axis=0)) / sd[keep]


def loo_ridge_scores(X: np.ndarray, Y: np.ndarray, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """Leave-one-out predictions of ridge regression with an unpenalized intercept.

    ``X`` (n, f) features, ``Y`` (n,) or (n, B) targets (several label vectors at once).
    Uses the exact linear-smoother identity ``loo_i = (yhat_i - h_ii y_i) / (1 - h_ii)``.
    """
    n = X.shape[0]
    Xa = np.hstack([X, np.ones((n, 1))])
    penalty = np.full(Xa.shape[1], float(alpha))
    penalty[-1] = 0.0
    H = Xa @ np.linalg.solve(Xa.T @ Xa + np.diag(penalty), Xa.T)
    h = np.diag(H)
    Y2 = Y.reshape(n, -1).astype(np.float64)
    loo = (H @ Y2 - h[:, None] * Y2) / (1.0 - h)[:, None]
    return loo.reshape(Y.shape)


def _bootstrap_auc(
    y: np.ndarray, scores: np.ndarray, rng: np.random.Generator, n: int
) -> tuple[float, float]:
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    # resample within arms so every replicate has both classes
    idx = np.concatenate([rng.choice(pos, (n, pos.size)), rng.choice(neg, (n, neg.size))], axis=1)
    aucs = auc_mann_whitney(y[idx], scores[idx])
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def run_audit(
    features: Sequence[Mapping[str, float]],
    is_synthetic: Sequence[bool],
    *,
    seed: int,
    n_bootstrap: int = N_BOOTSTRAP,
    n_permutations: int = N_PERMUTATIONS,
    lesion_diameters_mm: Sequence[float] | None = None,
) -> AuditResult:
    """Arm prediction from per-case feature dicts (same keys in every dict); AUC 0.5 =
    chance. Deterministic for a given ``seed``. Warns when the permutation p-value is below
    :data:`ALPHA_LEVEL`, and when ``lesion_diameters_mm`` (one per case, mm) separate the arms
    at that level."""
    y = np.asarray(is_synthetic, dtype=int)
    n_syn, n_real = int(y.sum()), int((1 - y).sum())
    names = sorted(features[0]) if features else []
    if min(n_syn, n_real) < 2:
        return AuditResult(
            None,
            None,
            None,
            None,
            n_real,
            n_syn,
            len(names),
            "fewer than 2 cases in an arm; the audit needs both arms",
        )
    size_auc, size_p = _size_separation(y, lesion_diameters_mm)
    X = np.array([[f[k] for k in names] for f in features], dtype=np.float64)
    Xs = standardize(X)
    rng = np.random.default_rng(seed)
    if Xs.shape[1] == 0:  # every feature identical in every case: nothing to learn from
        auc, lo, hi, p = 0.5, 0.5, 0.5, 1.0
    else:
        auc = float(auc_mann_whitney(y, loo_ridge_scores(Xs, y)))
        lo, hi = _bootstrap_auc(y, loo_ridge_scores(Xs, y), rng, n_bootstrap)
        perms = rng.permuted(np.tile(y, (n_permutations, 1)), axis=1)
        null = auc_mann_whitney(perms, loo_ridge_scores(Xs, perms.T).T)
        p = float((1 + np.sum(null >= auc - 1e-12)) / (n_permutations + 1))
    single = []
    for j, name in enumerate(names):
        if np.ptp(X[:, j]) > 0:
            a = float(auc_mann_whitney(y, X[:, j]))
            single.append((name, round(max(a, 1 - a), 3)))
    single.sort(key=lambda t: -t[1])
    warnings = []
    if p < ALPHA_LEVEL:
        leaks = ", ".join(f"{n} (AUC {a:.2f})" for n, a in single[:3])
        warnings.append(
            f"the arms are distinguishable without the tumor (AUC {auc:.2f}, p = "
            f"{p:.3f}); most separating: {leaks or 'none single'}; match "
            "scanners/datasets, spacing and noise between the arms"
        )
    if size_p is not None and size_p < ALPHA_LEVEL:
        warnings.append(
            f"lesion size alone separates the arms (AUC {size_auc:.2f}, p = "
            f"{size_p:.3f}); use selection.match: size or narrow "
            "selection.tumor_diameter_mm"
        )
    return AuditResult(
        round(auc, 4),
        round(lo, 4),
        round(hi, 4),
        round(p, 4),
        n_real,
        n_syn,
        len(names),
        "; ".join(warnings) or None,
        single[:5],
        size_auc,
        size_p,
    )


def _size_separation(
    y: np.ndarray, diameters: Sequence[float] | None
) -> tuple[float | None, float | None]:
    """(AUC of size alone folded to >= 0.5, two-sided Mann-Whitney p) or (None, None)."""
    if diameters is None:
        return None, None
    d = np.asarray(diameters, dtype=float)
    if d.shape != y.shape:
        raise ValueError(
            f"lesion_diameters_mm must have one value per case ({y.size}), got {d.size}"
        )
    if np.ptp(d) == 0:
        return 0.5, 1.0
    a = float(auc_mann_whitney(y, d))
    p = float(mannwhitneyu(d[y == 1], d[y == 0], alternative="two-sided").pvalue)
    return round(max(a, 1 - a), 4), round(p, 4)

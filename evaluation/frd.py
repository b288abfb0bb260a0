"""Frechet Radiomics Distance (FRD) between real and synthetic tumor regions.

FRD replaces CNN features by radiomics features, so it needs no network weights. Here:

1. pyradiomics features of each tumor (:mod:`evaluation.radiomics`, recorded settings; by default
   the original image only, ~107 features; LoG / wavelet image types can be enabled);
2. features that are constant or non-finite in the reference (real) set are dropped;
3. both sets are z-scored with the **reference** mean and standard deviation;
4. the Frechet distance d^2 of the two Gaussians (:func:`evaluation.fid.frechet_distance`);
5. reported as ``frd = log(d^2)``.

Differences from the ``frd-score`` package (v1): it extracts ~464 features from the original,
LoG and wavelet images with its own settings; the numbers are therefore **not interchangeable**
with it. Compare FRDs only when made with the same settings (the conventions file lists them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.tables import EvaluationInputError

MIN_D2 = 1e-12


def frechet_radiomics_distance(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, float]:
    """FRD between two feature tables (rows = tumors, same feature columns).

    Returns ``{"frd": log(d^2), "d2": d^2, "n_features", "n_real", "n_synthetic"}``. Needs at
    least 2 tumors per set; d^2 below 1e-12 is clamped before the log.
    """
    from evaluation.fid import frechet_distance

    cols = [c for c in real.columns if c in synthetic.columns]
    r = real[cols].astype(float)
    s = synthetic[cols].astype(float)
    if len(r) < 2 or len(s) < 2:
        raise EvaluationInputError(
            "real" if len(r) < 2 else "synthetic",
            f"FRD needs >= 2 tumors per set, got real {len(r)}, synthetic {len(s)}",
            "pass 2 or more tumors in each set",
        )
    mean, std = r.mean(), r.std(ddof=1)
    keep = np.isfinite(r).all() & np.isfinite(s).all() & np.isfinite(std) & (std > 0)
    kept = [c for c in cols if keep[c]]
    if not kept:
        raise EvaluationInputError(
            "real",
            "no feature varies in the reference set",
            "pass real tumors that differ (not copies of one tumor)",
        )
    zr = ((r[kept] - mean[kept]) / std[kept]).to_numpy()
    zs = ((s[kept] - mean[kept]) / std[kept]).to_numpy()
    d2 = frechet_distance(
        zr.mean(0),
        np.atleast_2d(np.cov(zr, rowvar=False)),
        zs.mean(0),
        np.atleast_2d(np.cov(zs, rowvar=False)),
    )
    return {
        "frd": float(np.log(max(d2, MIN_D2))),
        "d2": float(d2),
        "n_features": len(kept),
        "n_real": len(r),
        "n_synthetic": len(s),
    }


def conventions(spec) -> dict[str, str]:
    return {
        "metric": "FRD = log(d^2), d^2 = Frechet distance of radiomics features z-scored with "
        "the real (reference) set's mean and sd; constant features dropped",
        "features": f"pyradiomics {dict(spec['settings'])}, classes {', '.join(spec['classes'])}"
        f", image types {', '.join(spec['image_types'])}",
        "comparability": "not interchangeable with the frd-score package (v1 uses ~464 "
        "original+LoG+wavelet features with its own settings)",
    }

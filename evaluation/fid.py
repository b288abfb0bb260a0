"""Frechet distance and the 2.5D FID protocol on CT volumes.

FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64 with ``scipy.linalg.sqrtm``;
when the product is singular (fewer samples than features) a small multiple of the identity is
added to both covariances, as in the reference pytorch-fid implementation.

2.5D protocol (MAISI): each CT (x, y, z, HU) is windowed to [-175, 250] HU and mapped to [0, 1];
slices are taken along the three planes (axial = fixed z, coronal = fixed y, sagittal = fixed x),
slices that are mostly air are skipped, up to ``max_slices`` evenly spaced slices per volume and
plane are kept, each slice is resized to the extractor's input size, and FID is computed per plane
over all slices of all volumes of each set; the reported ``average`` is the mean of the three.
Slices are resized without resampling to a common spacing unless ``spacing_mm`` is given.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.tables import EvaluationInputError

log = logging.getLogger(__name__)

HU_WINDOW = (-175.0, 250.0)
PLANES = {"axial": 2, "coronal": 1, "sagittal": 0}  # plane -> the (x, y, z) axis held fixed
BODY_HU = -500.0
MIN_BODY_FRACTION = 0.05
CT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
IMAG_RTOL = 1e-3  # largest imaginary part of sqrtm's diagonal accepted, relative to its real part


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), float64.

    ``mu``: (F,), ``sigma``: (F, F). If ``sqrtm`` of the product is singular or not finite
    (fewer samples than features), ``eps * I`` is added to both covariances and the root recomputed; an
    imaginary part of the root's diagonal up to ``IMAG_RTOL`` times its real part is round-off and
    dropped, a larger one raises ``ValueError``. Round-off can make the value of nearly identical
    sets slightly negative: it is clipped to 0 (a distance is never negative).
    """
    from scipy import linalg

    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    singular = any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)
    if singular or not np.isfinite(covmean).all():
        log.info("singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(s1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        # relative check: round-off imaginary parts grow with the feature scale (features of
        # scale 1e3 give |imag| ~ 0.1-1 on a real diagonal ~ 1e6), so an absolute 1e-3 rejects
        # finite, meaningful values
        diag = np.diagonal(covmean)
        scale = max(float(np.abs(diag.real).max()), np.finfo(np.float64).tiny)
        if float(np.abs(diag.imag).max()) > IMAG_RTOL * scale:
            raise ValueError(
                f"sqrtm has a large imaginary part ({np.abs(diag.imag).max():.3g} "
                f"on a diagonal of scale {scale:.3g})"
            )
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    # the distance is >= 0; round-off makes nearly identical sets come out slightly negative
    return max(value, 0.0)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of ``features`` (N, F), float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, F) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid_from_features(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FID between two (N, F) feature sets."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(synthetic))


def window(ct: np.ndarray, hu_window: tuple[float, float] = HU_WINDOW) -> np.ndarray:
    """Clip HU to the window and map it linearly to [0, 1] (float32)."""
    lo, hi = hu_window
    return ((np.clip(ct, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def plane_slices(
    ct: np.ndarray, plane: str, max_slices: int = 32, hu_window: tuple[float, float] = HU_WINDOW
) -> np.ndarray:
    """Windowed 2D slices ``(N, H, W)`` of an (x, y, z) HU volume along ``plane``.

    Only slices with at least 5% of pixels above -500 HU (body, not air) are eligible; up to
    ``max_slices`` of them are taken evenly spaced (deterministic). Empty when none qualifies.
    """
    axis = PLANES[plane]
    moved = np.moveaxis(np.asarray(ct), axis, 0)
    body = (moved > BODY_HU).reshape(moved.shape[0], -1).mean(axis=1)
    eligible = np.flatnonzero(body >= MIN_BODY_FRACTION)
    if eligible.size > max_slices:
        eligible = eligible[np.linspace(0, eligible.size - 1, max_slices).round().astype(int)]
    return window(moved[eligible], hu_window)


def fid_2p5d(
    real: Iterable[np.ndarray],
    synthetic: Iterable[np.ndarray],
    extractor,
    *,
    max_slices: int = 32,
    hu_window: tuple[float, float] = HU_WINDOW,
    progress: bool = False,
) -> pd.DataFrame:
    """FID per plane and the average, for two sets of (x, y, z) HU volumes.

    ``extractor`` is a :class:`evaluation.extractors.FeatureExtractor`. The iterables may be
    generators (volumes are featurized one at a time and not kept). Columns ``plane, fid,
    n_real_slices, n_synthetic_slices, extractor``; the last row is ``plane = "average"``.
    """
    from tqdm import tqdm

    feats: dict[str, dict[str, list[np.ndarray]]] = {
        arm: {p: [] for p in PLANES} for arm in ("real", "synthetic")
    }
    for arm, volumes in (("real", real), ("synthetic", synthetic)):
        for ct in tqdm(volumes, desc=f"features {arm}", unit="vol", disable=not progress):
            for plane in PLANES:
                slices = plane_slices(ct, plane, max_slices, hu_window)
                if len(slices):
                    feats[arm][plane].append(extractor(slices))
    rows: list[dict[str, Any]] = []  # table rows: plane name, then numbers
    for plane in PLANES:
        r, s = feats["real"][plane], feats["synthetic"][plane]
        r_all = np.concatenate(r) if r else np.zeros((0, 1))
        s_all = np.concatenate(s) if s else np.zeros((0, 1))
        if len(r_all) < 2 or len(s_all) < 2:
            raise EvaluationInputError(
                "--real" if len(r_all) < 2 else "--synthetic",
                f"fewer than 2 {plane} slices with body in a set "
                f"(real {len(r_all)}, synthetic {len(s_all)})",
                "pass more volumes, or CT in HU (not normalized)",
            )
        rows.append(
            {
                "plane": plane,
                "fid": fid_from_features(r_all, s_all),
                "n_real_slices": len(r_all),
                "n_synthetic_slices": len(s_all),
            }
        )
    rows.append(
        {
            "plane": "average",
            "fid": float(np.mean([row["fid"] for row in rows])),
            "n_real_slices": sum(row["n_real_slices"] for row in rows),
            "n_synthetic_slices": sum(row["n_synthetic_slices"] for row in rows),
        }
    )
    table = pd.DataFrame(rows)
    table["extractor"] = extractor.name
    return table


def collect_ct_files(folder: str | Path) -> list[Path]:
    """CT files of a folder: NIfTI/NRRD files in it, or ``<case>/ct.nii.gz`` case folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationInputError(folder, "is not a folder", "pass a folder of CT files")
    files = [
        p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower().endswith(CT_SUFFIXES)
    ]
    files += [p / "ct.nii.gz" for p in sorted(folder.iterdir()) if (p / "ct.nii.gz").is_file()]
    if not files:
        raise EvaluationInputError(
            folder,
            "holds no CT files (*.nii.gz, *.nii, *.nrrd, or case folders with ct.nii.gz)",
            "pass the right folder",
        )
    return files


def load_volumes(paths: Sequence[Path], spacing_mm: float | None = None) -> Iterable[np.ndarray]:
    """Yield (x, y, z) HU arrays, optionally resampled to isotropic ``spacing_mm``."""
    from synth_backend.geometry import resample_to_spacing
    from synth_backend.io import load_volume

    for path in paths:
        vol = load_volume(path, kind="ct")
        arr = vol.array
        if spacing_mm is not None:
            arr, _ = resample_to_spacing(
                arr, vol.affine, vol.spacing, (spacing_mm,) * 3, is_mask=False
            )
        yield arr


def conventions(
    extractor, max_slices: int, spacing_mm: float | None, hu_window: tuple[float, float] = HU_WINDOW
) -> dict[str, str]:
    return {
        "metric": "FID = ||mu1-mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), float64, scipy sqrtm",
        "protocol": "2.5D: axial (fixed z), coronal (fixed y), sagittal (fixed x) slices; "
        "FID per plane, average = mean of the three",
        "window": f"HU clipped to [{hu_window[0]:g}, {hu_window[1]:g}] -> [0, 1]",
        "slices": f"<= {max_slices} evenly spaced slices per volume and plane with >= 5% body "
        "(> -500 HU) pixels",
        "spacing": "native (slices resized)"
        if spacing_mm is None
        else f"resampled to {spacing_mm:g} mm isotropic",
        "extractor": f"{extractor.name} ({extractor.limits})",
        "input": f"each windowed slice resized (bilinear) to {extractor.input_size} x "
        f"{extractor.input_size} px, repeated to {extractor.in_channels} channel(s), "
        + (
            "ImageNet mean/std normalized"
            if extractor.imagenet_norm
            else "no further normalization ([0, 1] values)"
        ),
        "clipping": "FID clipped at 0 (round-off can give tiny negatives); sqrtm imaginary "
        f"parts up to {IMAG_RTOL:g} x the real diagonal dropped as round-off",
        "comparability": "FID values from different extractors are not comparable",
    }

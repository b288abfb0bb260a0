"""Test a trained benchmark model on held-out volumes: DSC/NSD and patient-level detection.

Arrays are (x, y, z) on the benchmark grid (isotropic ``spacing_mm``), organ region only.
Rules (written into the conventions of every table):

- prediction: sliding-window softmax (MONAI ``sliding_window_inference``, Gaussian blending),
  argmax, restricted to the organ mask dilated by 2 voxels (tumor annotations may bulge past
  the organ outline);
- DSC / NSD (``evaluation.segmentation``, NSD at ``tolerance_mm``, sub-voxel surfaces) over the
  test volumes that have a tumor; mean with a seeded percentile bootstrap 95% interval over
  volumes;
- patient-level detection: a volume is positive when the restricted prediction has a
  26-connected component of at least ``min_lesion_mm3``; sensitivity over tumor volumes,
  specificity over healthy volumes, Wilson 95% intervals.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
from scipy import ndimage

from evaluation.segbench.config import BenchConfig
from evaluation.segbench.data import BenchCase, normalize_ct
from evaluation.segmentation import dice, normalized_surface_dice


def predict(model, case: BenchCase, config: BenchConfig, device: str = "cpu") -> np.ndarray:
    """Boolean tumor prediction on ``case``'s grid (see module docstring)."""
    import torch
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(normalize_ct(case.ct))[None, None].to(device)
    with torch.no_grad():
        out = sliding_window_inference(
            x,
            roi_size=config.patch,
            sw_batch_size=2,
            predictor=model,
            overlap=config.sw_overlap,
            mode="gaussian",
            padding_mode="constant",
            cval=0.0,
        )
    # The model returns one tensor, so the inferer does too (its type also allows a tuple or
    # dict of tensors, for models that return those).
    logits = cast("torch.Tensor", out)
    pred = (logits.argmax(1)[0] == 1).cpu().numpy()
    return pred & ndimage.binary_dilation(case.organ, iterations=2)


def largest_component_mm3(mask: np.ndarray, spacing) -> float:
    """Volume (mm^3) of the largest 26-connected component (0 for an empty mask)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max() * np.prod(spacing))


def case_metrics(pred: np.ndarray, case: BenchCase, config: BenchConfig) -> dict:
    """One row of the per-volume table; DSC/NSD are NaN for healthy volumes (not averaged)."""
    component = largest_component_mm3(pred, case.spacing)
    row = {
        "case": case.case_id,
        "tumor_kind": case.tumor_kind,
        "has_tumor": case.has_tumor,
        "truth_voxels": int(case.tumor.sum()),
        "pred_voxels": int(pred.sum()),
        "largest_component_mm3": round(component, 2),
        "detected": bool(component >= config.min_lesion_mm3),
        "dsc": float("nan"),
        "nsd": float("nan"),
    }
    if case.has_tumor:
        row["dsc"] = dice(pred, case.tumor)
        row["nsd"] = normalized_surface_dice(pred, case.tumor, case.spacing, config.tolerance_mm)
    return row


def bootstrap_mean(
    values, *, n_boot: int, seed: int, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval (resampling values); NaN for no values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng([seed, 202])
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(v.mean()), float(low), float(high)


def summarize(per_case: pd.DataFrame, config: BenchConfig, seed: int) -> dict:
    """DSC/NSD means with intervals and detection sensitivity/specificity (Table-2 columns)."""
    from evaluation.readers import wilson_interval

    tumor = per_case[per_case.has_tumor]
    healthy = per_case[~per_case.has_tumor]
    row: dict[str, float] = {"n_test_tumor": len(tumor), "n_test_healthy": len(healthy)}
    for metric in ("dsc", "nsd"):
        mean, low, high = bootstrap_mean(tumor[metric], n_boot=config.n_boot, seed=seed)
        row.update({f"{metric}_mean": mean, f"{metric}_low": low, f"{metric}_high": high})
    for name, part, hit in (("sensitivity", tumor, True), ("specificity", healthy, False)):
        k, n = int((part.detected == hit).sum()), len(part)
        low, high = wilson_interval(k, n)
        row.update({name: k / n if n else float("nan"), f"{name}_low": low, f"{name}_high": high})
    return row


def conventions(config: BenchConfig) -> dict[str, str]:
    return {
        "grid": f"isotropic {config.spacing_mm:g} mm, organ bounding box + "
        f"{config.organ_margin_mm:g} mm (CT linear, masks nearest-neighbour)",
        "prediction": "sliding-window softmax (Gaussian blending), argmax, restricted to the "
        "organ mask dilated by 2 voxels",
        "dsc_nsd": f"over test volumes with a tumor; NSD at {config.tolerance_mm:g} mm "
        "(MONAI sub-voxel surface Dice); mean with percentile bootstrap 95% CI over "
        f"volumes ({config.n_boot} replicates)",
        "detection": f"patient level: positive when the prediction has a 26-connected "
        f"component >= {config.min_lesion_mm3:g} mm^3; sensitivity over tumor "
        "volumes, specificity over healthy volumes; Wilson 95% CI",
    }

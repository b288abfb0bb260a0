"""Segmentation overlap: Dice (DSC) and normalized surface Dice (NSD) of binary masks.

Layout: masks are (x, y, z) arrays (any nonzero voxel = foreground), spacing in mm per axis.

Conventions (written next to every table):

- DSC = 2|A and B| / (|A| + |B|).
- NSD at tolerance tau (mm) = (area of the truth surface within tau of the predicted surface +
  area of the predicted surface within tau of the truth surface) / (truth area + predicted area):
  the area-weighted DeepMind ``surface-distance`` definition, computed by MONAI
  ``compute_surface_dice(..., use_subvoxels=True)`` with the file's voxel spacing.
- Empty masks (FLARE convention): both empty -> 1.0; exactly one empty -> 0.0 (for both DSC
  and NSD).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.tables import EvaluationInputError

EMPTY_CONVENTION = "both empty -> 1.0, exactly one empty -> 0.0 (FLARE convention)"
NIFTI_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def conventions(tolerance_mm: float) -> dict[str, str]:
    return {
        "dsc": "2|A and B| / (|A| + |B|), foreground = any nonzero label",
        "nsd": f"surface Dice at tolerance {tolerance_mm:g} mm, area-weighted DeepMind "
        "definition (MONAI compute_surface_dice use_subvoxels=True), each file's spacing",
        "empty_masks": EMPTY_CONVENTION,
        "matching": "prediction and truth files matched by file name",
    }


def _binary_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred) != 0, np.asarray(truth) != 0
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} must equal truth shape {t.shape}")
    return p, t


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice similarity coefficient of two binary masks (empty-mask convention above)."""
    p, t = _binary_pair(pred, truth)
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, t).sum()) / total


def normalized_surface_dice(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], tolerance_mm: float = 2.0
) -> float:
    """Area-weighted surface Dice at ``tolerance_mm`` (MONAI, sub-voxel surfaces).

    ``spacing`` is the (x, y, z) voxel size in mm. Empty-mask convention above. Computed on the
    masks' joint bounding box plus a one-voxel margin (the result is translation invariant, and
    cropping keeps the distance transforms small).
    """
    import torch
    from monai.metrics import compute_surface_dice

    p, t = _binary_pair(pred, truth)
    if tolerance_mm < 0:
        raise EvaluationInputError(
            "--tolerance-mm", f"tolerance_mm must be >= 0, got {tolerance_mm}", "pass 0 or more mm"
        )
    has_p, has_t = bool(p.any()), bool(t.any())
    if not has_p and not has_t:
        return 1.0
    if has_p != has_t:
        return 0.0
    idx = np.nonzero(p | t)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    p = np.pad(p[box], 1)
    t = np.pad(t[box], 1)

    def onehot(m: np.ndarray) -> torch.Tensor:
        fg = torch.from_numpy(m.astype(np.float32))
        return torch.stack([1.0 - fg, fg])[None]  # (B=1, C=2, x, y, z)

    with warnings.catch_warnings():
        # MONAI 1.5+ warns about its own internal use of a deprecated get_mask_edges argument
        warnings.simplefilter("ignore", FutureWarning)
        value = compute_surface_dice(
            onehot(p),
            onehot(t),
            class_thresholds=[float(tolerance_mm)],
            include_background=False,
            spacing=[float(s) for s in spacing],
            use_subvoxels=True,
        )
    return float(value.reshape(-1)[0])


def _mask_files(folder: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES):
            files[path.name] = path
    return files


def evaluate_folders(
    pred_dir: str | Path,
    truth_dir: str | Path,
    *,
    tolerance_mm: float = 2.0,
    label: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """DSC and NSD per case for masks matched by file name in two folders.

    Each pair must share its voxel grid (``check_same_grid``); NSD uses the truth file's
    spacing. ``label`` selects one label value as foreground (default: any nonzero voxel).
    Truth files without a prediction are an error (a missing prediction must not silently
    improve the mean). Columns ``case, dsc, nsd, tolerance_mm, pred_voxels, truth_voxels,
    spacing_x, spacing_y, spacing_z``.
    """
    from tqdm import tqdm

    from synth_backend.io import check_same_grid, load_volume

    pred_dir, truth_dir = Path(pred_dir), Path(truth_dir)
    for folder in (pred_dir, truth_dir):
        if not folder.is_dir():
            raise EvaluationInputError(folder, "is not a folder", "pass a folder of mask files")
    preds, truths = _mask_files(pred_dir), _mask_files(truth_dir)
    if not truths:
        raise EvaluationInputError(
            truth_dir, "holds no .nii/.nii.gz/.nrrd masks", "pass the folder of ground-truth masks"
        )
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise EvaluationInputError(
            pred_dir,
            f"has no prediction for {len(missing)} truth file(s), e.g. {missing[0]}",
            "predict every case, or remove the truth files to skip",
        )
    rows = []
    for name in tqdm(sorted(truths), desc="DSC/NSD", unit="case", disable=not progress):
        truth = load_volume(truths[name], kind="mask")
        pred = load_volume(preds[name], kind="mask")
        check_same_grid(truth, pred)
        t, p = truth.array, pred.array
        if label is not None:
            t, p = t == label, p == label
        rows.append(
            {
                "case": name,
                "dsc": dice(p, t),
                "nsd": normalized_surface_dice(p, t, truth.spacing, tolerance_mm),
                "tolerance_mm": float(tolerance_mm),
                "pred_voxels": int((p != 0).sum()),
                "truth_voxels": int((t != 0).sum()),
                "spacing_x": truth.spacing[0],
                "spacing_y": truth.spacing[1],
                "spacing_z": truth.spacing[2],
            }
        )
    return pd.DataFrame(rows)

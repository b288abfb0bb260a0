"""Provenance manifest of one synthesis (STYLE habit 10) and the tumor statistics it records.

``tumor_statistics`` is a pure function over (x, y, z) arrays; ``write_provenance`` writes the
JSON atomically. The runner writes provenance.json last: its presence marks a finished output.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from synth_backend.geometry import bounding_box, equivalent_diameter_mm
from synth_backend.io import atomic_write

PROVENANCE_NAME = "provenance.json"
SCHEMA_VERSION = 1
RING_MM = 5.0


def tumor_statistics(
    ct: np.ndarray,
    tumor_mask: np.ndarray,
    organ_mask: np.ndarray,
    spacing: Sequence[float],
    ring_mm: float = RING_MM,
) -> dict[str, Any]:
    """Statistics of a synthetic tumor mask on its CT, all (x, y, z) arrays on one grid.

    Returns ``count`` (26-connected components = lesions), ``voxels`` and ``volume_ml`` (all
    lesions), ``lesions`` (largest first: ``voxels``, ``volume_ml``, ``equivalent_diameter_mm``
    and ``centre_voxel``, the centroid as (x, y, z) voxel indices), ``largest_diameter_mm`` and
    ``component_diameters_mm`` (the lesions' diameters), ``mean_hu_tumor`` and ``mean_hu_ring``
    (organ voxels within ``ring_mm`` of the tumor, outside it) and their difference
    ``hu_contrast`` (tumor - ring; negative = hypo-attenuating). Sizes are per lesion: the
    union of several lesions has no meaningful diameter. An empty mask gives count 0 and None
    for the HU fields.
    """
    tumor = tumor_mask.astype(bool, copy=False)
    n_vox = int(tumor.sum())
    stats: dict[str, Any] = {
        "count": 0,
        "voxels": n_vox,
        "volume_ml": 0.0,
        "lesions": [],
        "largest_diameter_mm": 0.0,
        "component_diameters_mm": [],
        "mean_hu_tumor": None,
        "mean_hu_ring": None,
        "hu_contrast": None,
    }
    if n_vox == 0:
        return stats
    margin = [int(np.ceil(ring_mm / s)) + 1 for s in spacing]
    box = bounding_box(tumor, margin)
    t_box, o_box, ct_box = tumor[box], organ_mask[box].astype(bool), ct[box]
    labels, count = ndimage.label(t_box, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())[1:]
    centres = ndimage.center_of_mass(t_box, labels, range(1, count + 1))
    order = np.argsort(-sizes, kind="stable")
    lesions = [
        {
            "voxels": int(sizes[i]),
            "volume_ml": round(int(sizes[i]) * float(np.prod(spacing)) / 1000.0, 4),
            "equivalent_diameter_mm": round(equivalent_diameter_mm(int(sizes[i]), spacing), 2),
            "centre_voxel": [
                round(float(c) + b.start, 1) for c, b in zip(centres[i], box, strict=True)
            ],
        }
        for i in order
    ]
    dist = ndimage.distance_transform_edt(~t_box, sampling=spacing)
    ring = (dist > 0) & (dist <= ring_mm) & o_box & ~t_box
    mean_t = float(ct_box[t_box].mean())
    mean_r = float(ct_box[ring].mean()) if ring.any() else None
    stats.update(
        count=int(count),
        volume_ml=n_vox * float(np.prod(spacing)) / 1000.0,
        lesions=lesions,
        largest_diameter_mm=lesions[0]["equivalent_diameter_mm"],
        component_diameters_mm=[les["equivalent_diameter_mm"] for les in lesions],
        mean_hu_tumor=mean_t,
        mean_hu_ring=mean_r,
        hu_contrast=None if mean_r is None else mean_t - mean_r,
    )
    return stats


def environment() -> dict[str, str]:
    """Versions that can change a synthesized volume."""
    import scipy

    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
    }
    try:
        import torch

        env["torch"] = torch.__version__
        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
    except ImportError:  # torch-free methods still record their environment
        pass
    return env


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def write_provenance(path: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as indented JSON, atomically (temp file + rename)."""
    text = json.dumps(
        _jsonable({"schema_version": SCHEMA_VERSION, **manifest}), indent=2, sort_keys=False
    )
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text + "\n"))


def read_provenance(path: Path) -> dict[str, Any]:
    """Load a provenance.json (a folder is accepted: its provenance.json is read)."""
    path = Path(path)
    if path.is_dir():
        path = path / PROVENANCE_NAME
    return json.loads(path.read_text())

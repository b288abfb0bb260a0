"""How irregular a tumor shape is: the two numbers used to check the elastic deformation
against the reference (tests/synth_backend/test_elastic.py, docs/synthesis.md).

Both are pure functions of a boolean (x, y, z) mask and its spacing (mm); both are 0 for a
perfect (finely voxelized) sphere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def shape_irregularity(mask: np.ndarray, spacing: Sequence[float]) -> tuple[float, float]:
    """``(1 - Dice, radius spread)`` of a non-empty mask.

    ``1 - Dice``: against the sphere of the same volume centred on the mask's centroid (the
    sphere is voxelized on the same grid; the array is padded so it is never cut).
    ``radius spread``: std / mean of the distances (mm) from the centroid to the surface voxels
    (mask voxels with a 6-neighbour outside). Raises ValueError for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("mask is empty")
    sp = np.asarray(spacing, dtype=np.float64)
    volume = mask.sum() * sp.prod()
    radius = (3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0)
    pad = np.ceil(radius / sp).astype(int) + 1
    mask = np.pad(mask, [(int(p), int(p)) for p in pad])
    centroid = np.argwhere(mask).mean(axis=0) * sp
    grids = np.ogrid[tuple(slice(0, n) for n in mask.shape)]
    dist2 = sum((g * s - c) ** 2 for g, s, c in zip(grids, sp, centroid, strict=True))
    sphere = dist2 <= radius**2
    dice = 2.0 * (mask & sphere).sum() / (mask.sum() + sphere.sum())
    surface = mask & ~ndimage.binary_erosion(mask)
    r = np.sqrt((((np.argwhere(surface) * sp) - centroid) ** 2).sum(axis=1))
    return float(1.0 - dice), float(r.std() / r.mean())

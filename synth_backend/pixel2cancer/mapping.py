"""State -> HU mapping of Pixel2Cancer (the reference's ``map_to_CT_value``), on one box.

All arrays are (x, y, z) on the scan's native grid. ``state`` is the tumor population 0..10
(dead cells count as 10), ``dead`` is 1 on necrotic cells; both already resampled from the
automaton grid and zeroed outside the organ. Rules (spec): blur per axial slice (3 x 3
Gaussian); vessels inside the tumor (blurred state >= 5) x ``vessel_factor``; level-3 tissue
inside the tumor x ``level3_factor``; pancreas fat (<= 65 HU) brightened by
``texture * U(m, 2m) * state / 10``; ``HU' = HU - texture * drop * state / 10``; necrosis
``- texture * necrosis_drop * blur(dead)``; tumor voxels on bright tissue smoothed in-plane.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from synth_backend.pixel2cancer.tables import DensityLevels

# cv2.GaussianBlur with ksize 3 and sigma 0 uses sigma 0.8: weights exp(-x^2 / 1.28), normalized
_W = np.exp(-np.array([1.0, 0.0, 1.0]) / 1.28)
SLICE_KERNEL = (_W / _W.sum()).astype(np.float32)
FAT_HU = 65.0


def blur_axial(array: np.ndarray) -> np.ndarray:
    """3 x 3 Gaussian in every axial (x, y) slice, edges replicated; float32."""
    out = ndimage.correlate1d(array.astype(np.float32), SLICE_KERNEL, axis=0, mode="nearest")
    return ndimage.correlate1d(out, SLICE_KERNEL, axis=1, mode="nearest")


def map_to_ct(ct: np.ndarray, organ: np.ndarray, state: np.ndarray, dead: np.ndarray,
              texture: np.ndarray, levels: DensityLevels, organ_name: str, *, hu_drop: float,
              necrosis_drop: float, fat_factor: float) -> np.ndarray:
    """New HU for the box (float32). Voxels where the blurred state is 0 keep their value."""
    img = ct.astype(np.float32, copy=True)
    tumor = blur_axial(state) * organ
    inside = tumor > 0
    level3_lo = levels.lower + 2 * levels.interval
    vessel = (ct >= levels.vessel_hu) & organ
    level3 = (ct >= level3_lo) & (ct < levels.vessel_hu) & organ
    img[vessel & (tumor >= 5)] *= np.float32(levels.vessel_factor)
    img[level3 & inside] *= np.float32(levels.level3_factor)
    fat = (img <= FAT_HU) & inside
    if organ_name == "pancreas" and inside.any():
        mean = float(img[inside].mean())
        img += texture * np.float32(fat_factor * mean) * np.where(fat, tumor, 0) / 10.0
    img -= texture * np.float32(hu_drop) * tumor / 10.0
    if dead.any():
        img -= texture * np.float32(necrosis_drop) * blur_axial(dead) * organ
    # smooth tumor voxels that sat on bright tissue (vessel / level 3): no ghost vessels
    bright = (tumor >= 5) & (vessel | level3)
    if organ_name == "pancreas":
        bright |= (tumor >= 5) & (fat | (img < 0))
    if organ_name in ("liver", "pancreas") and bright.any():
        smooth = blur_axial(np.where(inside, img, 0))
        img[bright] = smooth[bright]
    return np.where(inside, img, ct.astype(np.float32))

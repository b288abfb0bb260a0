"""State -> HU mapping of Pixel2Cancer (the reference's ``map_to_CT_value``), on one box.

All arrays are (x, y, z) on the scan's native grid. ``state`` is the tumor population 0..10
(dead cells count as 10), ``dead`` is 1 on necrotic cells; both already resampled from the
automaton grid and zeroed outside the organ. Rules (spec): blur per axial slice (the reference's
3 x 3 Gaussian at 1 mm, here sized in mm); vessels inside the tumor (blurred state >= 5) scaled
by ``vessel_factor``; level-3 tissue inside the tumor by ``level3_factor`` (both measured from the
organ's own level shift, see :class:`DensityLevels`); pancreas fat (<= 65 HU) brightened by
``texture * U(m, 2m) * state / 10``; ``HU' = HU - texture * drop * state / 10``; necrosis
``- texture * necrosis_drop * blur(dead)``; tumor voxels on bright tissue smoothed in-plane.

Departure from the reference formula: its drops are absolute (up to 145 + 110 HU), so a necrotic
core reaches fat density (about 20% of tumor voxels below -20 HU on the IRCAD liver, minimum
-177 HU), which CT necrosis never is (water to soft tissue, about 0-30 HU). Here the total drop
is capped so that the local mean of a tumor voxel never goes below ``WATER_FLOOR_HU``; voxels keep
the scan's own noise around that mean, so the floor does not show as a flat plateau.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from synth_backend.pixel2cancer.tables import DensityLevels

# The reference blurs with cv2.GaussianBlur(ksize 3, sigma 0) on its 1 mm grid: sigma 0.8 mm,
# kernel radius 1 mm. On a native grid the same physical kernel has sigma 0.8 mm / spacing.
SLICE_SIGMA_MM = 0.8
SLICE_RADIUS_MM = 1.0
FAT_HU = 65.0
WATER_FLOOR_HU = 10.0  # lowest local mean of a tumor voxel (water range: about 0-30 HU)
FLOOR_SMOOTH_MM = 1.5  # "local mean": Gaussian of this sigma


def blur_axial(array: np.ndarray, spacing) -> np.ndarray:
    """The reference's 3 x 3 Gaussian (sigma 0.8 mm, radius 1 mm at 1 mm) in every axial
    (x, y) slice, sized in mm with ``spacing`` (x, y, z); edges replicated; float32. On voxels
    coarser than the kernel it leaves the array (almost) unchanged."""
    out = array.astype(np.float32)
    for axis in (0, 1):
        sp = float(spacing[axis])
        radius = max(1, int(np.ceil(SLICE_RADIUS_MM / sp - 1e-6)))
        out = ndimage.gaussian_filter1d(
            out, SLICE_SIGMA_MM / sp, axis=axis, mode="nearest", radius=radius
        )
    return out


def map_to_ct(
    ct: np.ndarray,
    organ: np.ndarray,
    state: np.ndarray,
    dead: np.ndarray,
    texture: np.ndarray,
    levels: DensityLevels,
    organ_name: str,
    *,
    spacing,
    hu_drop: float,
    necrosis_drop: float,
    fat_factor: float,
) -> np.ndarray:
    """New HU for the box (float32); ``spacing`` (mm) sizes the blurs. Voxels where the blurred
    state is 0 keep their value."""
    img = ct.astype(np.float32, copy=True)
    tumor = blur_axial(state, spacing) * organ
    inside = tumor > 0
    level3_lo = levels.lower + 2 * levels.interval
    vessel = (ct >= levels.vessel_hu) & organ
    level3 = (ct >= level3_lo) & (ct < levels.vessel_hu) & organ
    sel = vessel & (tumor >= 5)
    img[sel] = levels.scale(img[sel], levels.vessel_factor)
    sel = level3 & inside
    img[sel] = levels.scale(img[sel], levels.level3_factor)
    fat = (img <= FAT_HU) & inside
    if organ_name == "pancreas" and inside.any():
        mean = float(img[inside].mean())
        img += texture * np.float32(fat_factor * mean) * np.where(fat, tumor, 0) / 10.0
    drop = texture * np.float32(hu_drop) * tumor / 10.0
    if dead.any():
        drop += texture * np.float32(necrosis_drop) * blur_axial(dead, spacing) * organ
    # departure (module docstring): the local mean never drops below water
    # local mean over organ voxels only (normalized convolution): fat outside does not count
    sig = [FLOOR_SMOOTH_MM / float(s) for s in spacing]
    weight = ndimage.gaussian_filter(organ.astype(np.float32), sig, mode="nearest", truncate=2.0)
    local = ndimage.gaussian_filter(img * organ, sig, mode="nearest", truncate=2.0)
    local /= np.maximum(weight, np.float32(1e-6))
    img -= np.minimum(drop, np.maximum(local - np.float32(WATER_FLOOR_HU), 0.0))
    # smooth tumor voxels that sat on bright tissue (vessel / level 3): no ghost vessels
    bright = (tumor >= 5) & (vessel | level3)
    if organ_name == "pancreas":
        bright |= (tumor >= 5) & (fat | (img < 0))
    if organ_name in ("liver", "pancreas") and bright.any():
        smooth = blur_axial(np.where(inside, img, 0), spacing)
        img[bright] = smooth[bright]
    return np.where(inside, img, ct.astype(np.float32))

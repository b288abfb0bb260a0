"""Pseudo tumors for training when a dataset has no tumor masks (label-free recipe).

An ellipsoid mask from :mod:`synth_backend.masks` is darkened into the CT with the hand-crafted
look of Hu et al. (spec, "Hand-crafted"): a smoothed random texture scaled to mean ~0.5,
multiplied by the Gaussian-blurred mask (sigma U(1, 2) mm) and by a drop of U(65, 145) HU. This
is a training-data device only: a diffusion model trained on it learns that look, which is why
real tumor masks are preferred whenever a case has one (``tumor_source="auto"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from synth_backend.masks import draw_tumor_mask, sample_tumor_specs


def hand_crafted_texture(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Smooth random texture in [0, 1] with mean ~0.5: uniform noise blurred with sigma_a in
    {3, 6, 9, 12, 15} voxels, then min-max scaled (float32, same shape)."""
    sigma = float(rng.choice([3, 6, 9, 12, 15]))
    noise = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), sigma)
    lo, hi = float(noise.min()), float(noise.max())
    return ((noise - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def paste_pseudo_tumor(
    ct: np.ndarray,
    organ: np.ndarray,
    rng: np.random.Generator,
    *,
    stage: str = "early",
    sizes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Insert an ellipsoid pseudo tumor into a 1 mm (x, y, z) patch.

    ``ct`` is HU, ``organ`` a boolean mask of the same shape. The tumor centre is drawn from
    organ voxels in the central half of the patch (falls back to any organ voxel, then to the
    patch centre). ``stage`` is a DiffTumor training stage (early | late | medium | large) and
    ``sizes`` a list of size classes that replaces it (TumorGen's mix). Returns ``(ct_with_tumor, tumor_mask)``; the mask is inside the organ when
    the organ is present in the patch.
    """
    size = np.asarray(ct.shape)
    central = np.zeros(ct.shape, dtype=bool)
    central[tuple(slice(n // 4, n - n // 4) for n in size)] = True
    candidates = organ & central
    if not candidates.any():
        candidates = organ.copy() if organ.any() else central
    specs = sample_tumor_specs(
        rng, candidates, stage=stage, sizes=sizes, max_radius_mm=float(size.min()) / 2 - 2
    )
    tumor = draw_tumor_mask(ct.shape, specs, organ if organ.any() else None)
    if not tumor.any():
        return ct.copy(), tumor
    blurred = ndimage.gaussian_filter(tumor.astype(np.float32), float(rng.uniform(1.0, 2.0)))
    drop = float(rng.uniform(65.0, 145.0))
    texture = hand_crafted_texture(ct.shape, rng)
    out = ct - texture * blurred * drop
    return out.astype(np.float32), tumor

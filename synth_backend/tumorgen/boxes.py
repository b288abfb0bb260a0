"""Boundary-Aware Pseudo Mask Generation (BA-PMG): boxes on the latent grid.

A box is a (B, 1, l, l, l) float tensor of 0/1 on the latent grid. BA-PMG takes the tight box
B' of the (downsampled) tumor mask and moves each of its six faces outwards by
d_i ~ U(0, alpha * D_i) latent voxels, D_i the latent grid size along that axis (the paper's
offsets are proportional to the image size; on the 4x latent grid that is alpha * D_i / 4 image
voxels * 4 = the same fraction). Offsets are drawn from the caller's generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def tight_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) inclusive voxel bounds of nonzero voxels of a 3D array, or None if empty."""
    idx = np.argwhere(mask > 0)
    if idx.size == 0:
        return None
    return idx.min(0), idx.max(0)


def box_tensor(
    lo: Sequence[int] | np.ndarray,
    hi: Sequence[int] | np.ndarray,
    shape: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """0/1 float32 array of ``shape`` with ones on the inclusive box [lo, hi] (clipped)."""
    out = np.zeros(tuple(shape), dtype=np.float32)
    lo = np.clip(np.asarray(lo, dtype=int), 0, np.asarray(shape) - 1)
    hi = np.clip(np.asarray(hi, dtype=int), 0, np.asarray(shape) - 1)
    out[tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))] = 1.0
    return out


def ba_pmg_boxes(latent_masks: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """BA-PMG boxes for a batch of latent-grid masks (B, 1, l, l, l) -> (B, 1, l, l, l).

    A sample whose mask is empty gets the central box of half the grid (documented fallback:
    every training sample must have a region to synthesize).
    """
    out = np.zeros_like(latent_masks, dtype=np.float32)
    for b in range(latent_masks.shape[0]):
        shape = np.asarray(latent_masks.shape[2:])
        bounds = tight_box(latent_masks[b, 0] > 0.0)
        if bounds is None:
            lo, hi = shape // 4, shape - shape // 4 - 1
        else:
            lo, hi = bounds
        d_lo = np.floor(rng.uniform(0, alpha * shape + 1e-9)).astype(int)
        d_hi = np.floor(rng.uniform(0, alpha * shape + 1e-9)).astype(int)
        out[b, 0] = box_tensor(lo - d_lo, hi + d_hi, shape)
    return out


def upsample_box(box: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Latent-grid box -> image-grid box (nearest, each latent voxel covers factor^3 voxels)."""
    return torch.nn.functional.interpolate(box, scale_factor=factor, mode="nearest")

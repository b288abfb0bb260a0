"""Geometry on (x, y, z) arrays: resampling to a spacing, organ bounding boxes, crop and paste."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

Box = tuple[slice, slice, slice]


def resample_to_spacing(
    array: np.ndarray,
    affine: np.ndarray,
    spacing: Sequence[float],
    target: Sequence[float],
    *,
    is_mask: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample to ``target`` spacing (mm): linear for CT, nearest for masks.

    New voxel ``i`` sits at old voxel coordinate ``i * target / spacing``: the first voxel centre
    stays put and the returned affine is exact (no half-voxel drift, unlike ``ndimage.zoom``).
    Returns ``(array, affine)``; masks keep their integer dtype.
    """
    scale = np.asarray(target, dtype=np.float64) / np.asarray(spacing, dtype=np.float64)
    in_shape = np.asarray(array.shape)
    out_shape = np.maximum(1, np.floor((in_shape - 1) / scale + 1e-6).astype(int) + 1)
    order = 0 if is_mask else 1
    src = array if is_mask else array.astype(np.float32, copy=False)
    out = ndimage.affine_transform(
        src, scale, output_shape=tuple(out_shape), order=order, mode="nearest", prefilter=False
    )
    new_affine = np.asarray(affine, dtype=np.float64).copy()
    new_affine[:3, :3] = new_affine[:3, :3] * scale[None, :]
    return out.astype(array.dtype, copy=False), new_affine


def bounding_box(mask: np.ndarray, margin: int | Sequence[int] = 0) -> Box:
    """Smallest box around nonzero voxels, grown by ``margin`` voxels and clipped to the array.

    Raises ValueError for an empty mask (callers turn that into a message naming the file).
    """
    nonzero = np.nonzero(mask)
    if nonzero[0].size == 0:
        raise ValueError("mask is empty")
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (3,))
    return tuple(  # type: ignore[return-value]
        slice(max(0, int(idx.min()) - m), min(size, int(idx.max()) + 1 + m))
        for idx, m, size in zip(nonzero, margins, mask.shape, strict=True)
    )


def crop(array: np.ndarray, box: Box) -> np.ndarray:
    return array[box].copy()


def paste(full: np.ndarray, patch: np.ndarray, box: Box) -> np.ndarray:
    """Return a copy of ``full`` with ``patch`` written back into ``box`` (inverse of crop)."""
    out = full.copy()
    expected = tuple(s.stop - s.start for s in box)
    if patch.shape != expected:
        raise ValueError(f"patch shape {patch.shape} must equal box shape {expected}")
    out[box] = patch
    return out


def box_affine(affine: np.ndarray, box: Box) -> np.ndarray:
    """Affine of a cropped box: the origin moves to the box's first voxel."""
    out = np.asarray(affine, dtype=np.float64).copy()
    out[:3, 3] = affine[:3, :3] @ np.array([s.start for s in box]) + affine[:3, 3]
    return out


def equivalent_diameter_mm(n_voxels: int, spacing: Sequence[float]) -> float:
    """Diameter of the sphere with the same volume as ``n_voxels`` voxels of ``spacing`` mm."""
    volume = n_voxels * float(np.prod(spacing))
    return float((6.0 * volume / np.pi) ** (1.0 / 3.0))

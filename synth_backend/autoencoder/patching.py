"""The 1 mm working patch of the generative methods, cut from and pasted back into any CT grid.

A :class:`PatchGrid` is a cube of ``size`` voxels at 1 mm isotropic spacing placed in the input
volume: patch voxel ``j`` (x, y, z) sits at input voxel coordinate ``origin + j / spacing``.
Extraction and pasting are both ``scipy.ndimage.affine_transform`` calls with that exact map,
so any input spacing works (e.g. 0.74 x 0.74 x 1.6 mm) and nothing outside the pasted region
changes: the synthesizers paste a *difference* weighted by an alpha map that is zero far from
the tumor, so untouched voxels keep their exact input values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from scipy import ndimage

from synth_backend.geometry import Box


@dataclass(frozen=True)
class PatchGrid:
    """A ``size``^3 cube at 1 mm whose voxel ``j`` maps to input voxel ``origin + j * step``
    (``step`` = 1 / spacing: input voxels per mm)."""

    origin: tuple[float, float, float]
    step: tuple[float, float, float]
    size: int

    @classmethod
    def centred(cls, center: Sequence[float], spacing: Sequence[float], size: int) -> PatchGrid:
        """Cube whose central voxel lies on input voxel ``center``."""
        step = 1.0 / np.asarray(spacing, dtype=np.float64)
        origin = np.asarray(center, dtype=np.float64) - (size - 1) / 2.0 * step
        # center and spacing are 3-vectors
        return cls(
            cast(tuple[float, float, float], tuple(float(v) for v in origin)),
            cast(tuple[float, float, float], tuple(float(v) for v in step)),
            int(size),
        )

    def extract(self, array: np.ndarray, *, order: int, fill: float) -> np.ndarray:
        """Resample ``array`` (input grid) onto the patch; outside the volume -> ``fill``."""
        return ndimage.affine_transform(
            array.astype(np.float32, copy=False),
            np.asarray(self.step),
            offset=self.origin,
            output_shape=(self.size,) * 3,
            order=order,
            mode="constant",
            cval=fill,
            prefilter=False,
        )

    def input_box(self, shape: Sequence[int]) -> Box:
        """Input voxels covered by the patch, clipped to an array of ``shape``."""
        lo = np.floor(np.asarray(self.origin)).astype(int)
        hi = np.ceil(np.asarray(self.origin) + (self.size - 1) * np.asarray(self.step)).astype(int)
        return tuple(
            slice(max(0, int(a)), min(int(n), int(b) + 1))  # type: ignore[return-value]
            for a, b, n in zip(lo, hi, shape, strict=True)
        )

    def to_input(self, patch: np.ndarray, box: Box, *, order: int = 1) -> np.ndarray:
        """Resample a patch-grid array back onto the input voxels of ``box`` (0 outside)."""
        start = np.array([s.start for s in box], dtype=np.float64)
        inv = 1.0 / np.asarray(self.step)
        offset = (start - np.asarray(self.origin)) * inv
        shape = tuple(s.stop - s.start for s in box)
        return ndimage.affine_transform(
            patch.astype(np.float32, copy=False),
            inv,
            offset=offset,
            output_shape=shape,
            order=order,
            mode="constant",
            cval=0.0,
            prefilter=False,
        )


def choose_center(
    organ: np.ndarray,
    spacing: Sequence[float],
    rng: np.random.Generator,
    *,
    erosion_mm: float = 5.0,
    z_range: tuple[float, float] = (0.3, 0.7),
) -> np.ndarray:
    """A tumor centre (input voxel indices, x, y, z) inside the organ, as the reference picks it.

    Candidates are organ voxels after an erosion of ``erosion_mm`` whose z lies within
    ``z_range`` of the organ's z-extent; if erosion empties that set, the z-restricted organ is
    used, then the whole organ. Raises ValueError for an empty organ.
    """
    organ = organ.astype(bool)
    if not organ.any():
        raise ValueError("organ mask is empty")
    zs = np.nonzero(organ.any(axis=(0, 1)))[0]
    z0 = zs.min() + z_range[0] * (zs.max() - zs.min())
    z1 = zs.min() + z_range[1] * (zs.max() - zs.min())
    band = np.zeros_like(organ)
    band[:, :, int(np.floor(z0)) : int(np.ceil(z1)) + 1] = True
    radius = np.maximum(1, np.round(erosion_mm / np.asarray(spacing, dtype=float))).astype(int)
    structure = np.ones(tuple(2 * r + 1 for r in radius), dtype=bool)
    eroded = ndimage.binary_erosion(organ, structure=structure)
    for candidates in (eroded & band, organ & band, organ):
        coords = np.argwhere(candidates)
        if len(coords):
            return coords[int(rng.integers(len(coords)))]
    raise AssertionError("unreachable: organ is non-empty")


def check_inputs(
    ct: np.ndarray, organ_mask: np.ndarray, organ: str, spacing: Sequence[float]
) -> np.ndarray:
    """Validate synthesizer inputs; returns the organ as bool. Messages say what to fix."""
    from synth_backend.base import ORGANS

    if organ not in ORGANS:
        raise ValueError(f"organ must be one of {ORGANS}, got {organ!r}")
    if ct.ndim != 3 or ct.shape != organ_mask.shape:
        raise ValueError(
            f"ct shape {ct.shape} and organ mask shape {organ_mask.shape} must be "
            "equal 3D shapes; pass the mask that belongs to this CT"
        )
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive mm values, got {spacing}")
    organ_bool = np.asarray(organ_mask) > 0
    if not organ_bool.any():
        raise ValueError(f"{organ} mask is empty; pass a mask containing the organ")
    return organ_bool


def paste_difference(ct: np.ndarray, grid: PatchGrid, delta: np.ndarray) -> np.ndarray:
    """``ct`` plus a patch-grid difference (HU) resampled onto the input grid, rounded to
    integer HU (float32). Voxels where the resampled difference is 0 keep their input value."""
    box = grid.input_box(ct.shape)
    out = np.asarray(ct, dtype=np.float32).copy()
    diff = grid.to_input(delta, box, order=1)
    region = out[box]
    changed = diff != 0
    region[changed] = np.rint(region[changed] + diff[changed])
    out[box] = region
    return out


def patch_mask_to_input(shape: Sequence[int], grid: PatchGrid, mask: np.ndarray) -> np.ndarray:
    """A patch-grid boolean mask on the input grid (linear resampling, threshold 0.5)."""
    box = grid.input_box(shape)
    out = np.zeros(tuple(shape), dtype=bool)
    out[box] = grid.to_input(mask.astype(np.float32), box, order=1) >= 0.5
    return out

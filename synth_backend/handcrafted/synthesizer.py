"""Hand-crafted tumor synthesis (Hu et al., CVPR 2023, "label-free liver tumor segmentation").

``HU' = HU - texture * blur(mask, sigma U(1, 2) mm) * U(65, 145)`` inside the organ, where the
mask is a union of elastically deformed ellipsoids AND the organ. Works on the scan's own grid:
sizes are in mm and converted per axis with the spacing; each tumor is drawn, textured and
blurred in its own small box, so the cost follows the tumors, not the scan.

The paper's visual-Turing-test extras come with ``profile="vtt"`` (default ``train``: off), or
one by one (see docs/synthesis.md): ``vessel_avoidance`` (tumors kept off the large vessels),
``mass_effect`` (push the surrounding tissue and its vessels radially outward before inserting
the tumor) and ``capsule_hu`` (a thin enhancing rim, ``capsule_mm`` thick, on medium and large
tumors).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from core.vocabulary import ORGANS
from synth_backend.base import SynthesisResult, Synthesizer
from synth_backend.elastic import Box, deformed_ellipsoid, shape_reach_mm, tumor_box
from synth_backend.handcrafted.params import CAPSULE_SIZES, HandcraftedParams, sample_params
from synth_backend.handcrafted.texture import tumor_texture


def _grow(box: Box, mask: np.ndarray, margin_vox: Sequence[int], shape: Sequence[int]) -> Box:
    """Tight box of ``mask`` (indices within ``box``) grown by ``margin_vox``, in full indices."""
    out = []
    for axis, (sl, m, n) in enumerate(zip(box, margin_vox, shape, strict=True)):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(
            slice(max(0, sl.start + int(idx[0]) - m), min(int(n), sl.start + int(idx[-1]) + 1 + m))
        )
    return tuple(out)  # type: ignore[return-value]


def _mass_effect(
    ct: np.ndarray,
    out: np.ndarray,
    center: Sequence[int],
    radius_mm: float,
    spacing: Sequence[float],
    strength: float,
) -> None:
    """Radial push (3D version of the reference's ``expand``): inside a sphere of 1.5 x the
    tumor radius, voxel p samples the original at ``c + (p - c) (1 - k (1 - rho^2))`` so
    tissue appears pushed outward; continuous at the sphere's surface (rho = 1)."""
    reach = 1.5 * radius_mm
    box = tumor_box(center, reach, spacing, ct.shape)
    grids = np.meshgrid(*[np.arange(s.start, s.stop, dtype=np.float32) for s in box], indexing="ij")
    rel = [g - np.float32(c) for g, c in zip(grids, center, strict=True)]
    rho2 = sum((r * np.float32(s)) ** 2 for r, s in zip(rel, spacing, strict=True)) / reach**2
    factor = np.where(rho2 < 1.0, 1.0 - strength * (1.0 - rho2), 1.0).astype(np.float32)
    coords = np.stack([np.float32(c) + r * factor for c, r in zip(center, rel, strict=True)])
    out[box] = ndimage.map_coordinates(ct, coords, order=1, mode="nearest")


def _with_capsule(
    drop: np.ndarray,
    local: np.ndarray,
    organ: np.ndarray,
    spacing: Sequence[float],
    params: HandcraftedParams,
) -> np.ndarray:
    """Thin enhancing capsule: the outer ``capsule_mm`` of the tumor (depth measured in mm, the
    surface half a voxel outside the border voxels) ends ``capsule_hu`` brighter than the
    parenchyma instead of darker; edges smoothed by 0.5 mm so it is not a voxel staircase."""
    depth = ndimage.distance_transform_edt(local > 0, sampling=spacing)
    reach = params.capsule_mm + 0.5 * max(float(s) for s in spacing)
    rim = ((depth > 0) & (depth <= reach)).astype(np.float32)
    weight = np.clip(ndimage.gaussian_filter(rim, [0.5 / float(s) for s in spacing]), 0, 1)
    weight *= organ
    return drop * (1 - weight) - np.float32(params.capsule_hu) * weight


def apply(
    ct: np.ndarray, organ_mask: np.ndarray, spacing: Sequence[float], params: HandcraftedParams
) -> tuple[np.ndarray, np.ndarray]:
    """Insert the tumors of ``params`` into ``ct`` (float32 HU, (x, y, z)); deterministic.

    Returns ``(ct', tumor_mask)``: float32 HU and uint8 {0, 1}. Only voxels of the organ within
    the blurred tumor (mask + ~3 blur sigmas) change, plus the mass-effect sphere when that
    option is on. Tumors that fall entirely outside the organ are skipped.
    """
    spacing = tuple(float(s) for s in spacing)
    organ = organ_mask.astype(bool, copy=False)
    src = np.asarray(ct, dtype=np.float32)
    out = src.copy()
    if params.mass_effect > 0:
        for t in params.tumors:
            _mass_effect(
                src, out, t.center, float(np.mean(t.radii_mm)), spacing, params.mass_effect
            )
        src = out.copy()
    tumor = np.zeros(ct.shape, dtype=np.uint8)
    margin = [int(np.ceil(3 * params.blur_sigma_mm / s)) for s in spacing]
    for t in params.tumors:
        grids = t.control_displacements()
        box = tumor_box(t.center, tuple(shape_reach_mm(t.radii_mm, grids)), spacing, ct.shape)
        geo = deformed_ellipsoid(box, t.center, t.radii_mm, spacing, grids)
        geo &= organ[box]
        if not geo.any():
            continue
        tight = _grow(box, geo, margin, ct.shape)
        local = np.zeros([s.stop - s.start for s in tight], dtype=np.float32)
        inner = tuple(
            slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, tight, strict=True)
        )
        clip = tuple(
            slice(max(0, i.start), min(n, i.stop)) for i, n in zip(inner, local.shape, strict=True)
        )
        sub = tuple(
            slice(c.start - i.start, c.stop - i.start) for c, i in zip(clip, inner, strict=True)
        )
        local[clip] = geo[sub]
        tumor[tight] |= local.astype(np.uint8)
        blurred = ndimage.gaussian_filter(
            local, [params.blur_sigma_mm / s for s in spacing], truncate=3.0
        )
        texture = tumor_texture(
            local.shape,
            spacing,
            sigma_a_mm=params.sigma_a_mm,
            sigma_b_mm=params.sigma_b_mm,
            seed=t.texture_seed,
        )
        drop = texture * blurred * np.float32(params.hu_drop) * organ[tight]
        if params.capsule_hu > 0 and t.size_class in CAPSULE_SIZES:
            drop = _with_capsule(drop, local, organ[tight], spacing, params)
        # overlapping tumors: the strongest change wins (out starts as src; a capsule's
        # brightening is a negative drop and loses to another tumor's darker core)
        current = src[tight] - out[tight]
        out[tight] = src[tight] - np.where(np.abs(drop) > np.abs(current), drop, current)
    return out, tumor


class HandcraftedSynthesizer(Synthesizer):
    """Registry name ``handcrafted``. Options: ``size`` (tiny|small|medium|large|mix, default:
    random as in the reference), ``diameter_mm``, ``n_tumors``, ``profile`` (train | vtt),
    ``vessel_mask`` (boolean array of the volume: the dataset's vessels, for vtt),
    ``vessel_avoidance`` (bool), ``mass_effect`` (strength, 0 = off), ``capsule_hu`` (HU,
    0 = off). CPU only (NumPy/SciPy); ``device`` is accepted and recorded as ``cpu``."""

    name = "handcrafted"

    def sample_params(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        **options: Any,
    ) -> HandcraftedParams:
        if organ not in ORGANS:
            raise ValueError(f"organ must be one of {ORGANS}, got {organ!r}")
        unknown = set(options) - {
            "size",
            "diameter_mm",
            "n_tumors",
            "profile",
            "vessel_mask",
            "vessel_avoidance",
            "mass_effect",
            "capsule_hu",
        }
        if unknown:
            raise ValueError(f"unknown handcrafted options {sorted(unknown)}")
        return sample_params(
            np.random.default_rng(seed), organ_mask, spacing, organ=organ, ct=ct, **options
        )

    def params_from_dict(self, data: dict[str, Any]) -> HandcraftedParams:
        return HandcraftedParams.from_dict(data)

    def apply(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: HandcraftedParams,
        device: str = "auto",
    ) -> SynthesisResult:
        """``params`` on the volume (no vessels needed: their effect is in the centres)."""
        start = time.perf_counter()
        out, tumor = apply(ct, organ_mask, spacing, params)
        return SynthesisResult(
            out,
            tumor,
            params.to_dict(),
            {
                "device": "cpu",
                "seconds": time.perf_counter() - start,
                "n_tumors_drawn": len(params.tumors),
                "profile": params.profile,
            },
        )

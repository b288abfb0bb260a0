"""Parameters of the hand-crafted method and how they are drawn (``sample_params``).

Everything random about one synthesis lives in :class:`HandcraftedParams` (frozen, JSON-ready);
:func:`synth_backend.handcrafted.synthesizer.apply` turns it into a volume deterministically.
Reference facts (spec "Hand-crafted"): centre on a z slice within 0.3-0.7 of the organ's z extent,
organ eroded in-plane (5 x 5 mm), per-axis radius U(0.75 r, 1.25 r) with r = 4/8/16/32 mm,
counts tiny 3-10 / small 3-10 / medium 2-5 / large 1-3, "mix" = all four, texture sigma_a in
{3,6,9,12,15} mm and sigma_b in {4,7} mm, boundary blur U(1, 2) mm, HU drop U(65, 145).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from synth_backend.elastic import random_grids, sample_sigma
from synth_backend.handcrafted.texture import SIGMA_A_MM, SIGMA_B_MM
from synth_backend.masks import SIZE_RADIUS_MM
from synth_backend.runner import OrganTooSmallError

SIZES = ("tiny", "small", "medium", "large")
SIZE_CHOICES = (*SIZES, "mix")
COUNTS = {"tiny": (3, 10), "small": (3, 10), "medium": (2, 5), "large": (1, 3)}
# reference "mix" draws 5-10 small tumors (not 3-10)
MIX_COUNTS = {"tiny": (3, 10), "small": (5, 10), "medium": (2, 5), "large": (1, 3)}
Z_BAND = (0.3, 0.7)
ERODE_MM = 5.0
VESSEL_ABOVE_MEDIAN_HU = 60.0  # contrast CT: vessels >= parenchyma + 60 HU (160 vs 100 liver)


@dataclass(frozen=True)
class EllipsoidTumor:
    """One tumor: centre voxel (x, y, z) of the full volume, radii (mm), displacement std of
    the elastic warp (mm, the reference's sigma by size class), and the seeds of its warp and
    texture fields."""

    size_class: str
    center: tuple[int, int, int]
    radii_mm: tuple[float, float, float]
    elastic_sigma_mm: float
    deform_seed: int
    texture_seed: int

    def control_displacements(self) -> np.ndarray:
        """(3, 2, 3, 3) control displacements (mm) of the three warp passes, fixed by
        ``deform_seed`` (:func:`synth_backend.elastic.random_grids`)."""
        return random_grids(self.deform_seed, self.elastic_sigma_mm)


@dataclass(frozen=True)
class HandcraftedParams:
    """Everything :func:`apply` needs; ``to_dict``/``from_dict`` round-trip through JSON."""

    organ: str
    size: str
    tumors: tuple[EllipsoidTumor, ...]
    sigma_a_mm: float
    sigma_b_mm: float
    blur_sigma_mm: float
    hu_drop: float
    mass_effect: float = 0.0       # 0 = off; else radial push strength (0.1-0.5)
    capsule_hu: float = 0.0        # 0 = off; else brightening of a 1.5 mm rim (HU)
    vessel_avoidance: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandcraftedParams:
        data = dict(data)
        tumors = tuple(
            EllipsoidTumor(**{**t, "center": tuple(t["center"]),
                              "radii_mm": tuple(t["radii_mm"])})
            for t in data.pop("tumors")
        )
        return cls(tumors=tumors, **data)


def size_class_for_diameter(diameter_mm: float) -> str:
    """Smallest class whose radius range (0.75 r .. 1.25 r) reaches ``diameter_mm / 2``."""
    for name in SIZES:
        if diameter_mm / 2.0 <= 1.25 * SIZE_RADIUS_MM[name]:
            return name
    return "large"


def _candidate_slices(organ: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, int]:
    """Eroded organ (in-plane, ~5 x 5 mm) on the central z band; returns (mask, z offset)."""
    zs = np.flatnonzero(organ.any(axis=(0, 1)))
    z0, z1 = int(zs[0]), int(zs[-1])
    lo = z0 + int(round(Z_BAND[0] * (z1 - z0)))
    hi = z0 + int(round(Z_BAND[1] * (z1 - z0)))
    band = organ[:, :, lo:hi + 1]
    k = [max(1, int(round(ERODE_MM / s)) | 1) for s in spacing[:2]]
    # min filter = binary erosion with a box; separable, so cheap on a large organ
    eroded = ndimage.minimum_filter(band.view(np.uint8), size=(k[0], k[1], 1), mode="constant")
    return eroded.astype(bool), lo


def _pick_center(rng: np.random.Generator, eroded: np.ndarray, z_offset: int,
                 fallback: np.ndarray) -> tuple[int, int, int]:
    """Reference order: a z slice uniformly in the band, then a voxel of that eroded slice."""
    slices = np.flatnonzero(eroded.any(axis=(0, 1)))
    if slices.size:
        z = int(slices[rng.integers(slices.size)])
        xy = np.argwhere(eroded[:, :, z])
        x, y = xy[rng.integers(len(xy))]
        return int(x), int(y), int(z + z_offset)
    idx = np.argwhere(fallback)  # organ too thin to erode: any organ voxel
    return tuple(int(v) for v in idx[rng.integers(len(idx))])  # type: ignore[return-value]


def _hits_vessel(center, radii_mm, spacing, organ, vessel) -> bool:
    """True when more than 1% of the (undeformed) ellipsoid's organ voxels are vessel."""
    half = [int(np.ceil(r / s)) for r, s in zip(radii_mm, spacing, strict=True)]
    box = tuple(slice(max(0, c - h), c + h + 1) for c, h in zip(center, half, strict=True))
    grids = np.ogrid[box]
    dist = sum(((g - c) * s / r) ** 2
               for g, c, s, r in zip(grids, center, spacing, radii_mm, strict=True))
    inside = (dist <= 1.0) & organ[box]
    return bool(inside.sum()) and float(vessel[box][inside].mean()) > 0.01


def sample_params(rng: np.random.Generator, organ_mask: np.ndarray, spacing: Sequence[float], *,
                  organ: str, size: str | None = None, diameter_mm: float | None = None,
                  n_tumors: int | None = None,
                  ct: np.ndarray | None = None, vessel_avoidance: bool = False,
                  mass_effect: float = 0.0, capsule_hu: float = 0.0) -> HandcraftedParams:
    """Draw one synthesis for a boolean (x, y, z) ``organ_mask`` with voxel ``spacing`` (mm).

    ``size``: tiny | small | medium | large | mix, or None for the reference's random choice
    (each of the five with p = 0.2). ``diameter_mm``: instead, exactly one tumor whose
    ellipsoid has that equivalent diameter. ``n_tumors``: this many tumors instead of the
    reference's count for the size class (one for ``diameter_mm``; "mix" then draws each
    tumor's class uniformly). ``vessel_avoidance`` needs ``ct`` (HU) and moves a
    tumor (up to 20 tries) whose ellipsoid covers > 1% voxels brighter than the organ median
    + 60 HU. Raises :class:`OrganTooSmallError` when the organ is smaller than the tumor.
    """
    if size is not None and diameter_mm is not None:
        raise ValueError("give size or diameter_mm, not both")
    if size is not None and size not in SIZE_CHOICES:
        raise ValueError(f"size must be one of {SIZE_CHOICES}, got {size!r}")
    if n_tumors is not None and int(n_tumors) < 1:
        raise ValueError(f"n_tumors must be >= 1, got {n_tumors}")
    spacing = tuple(float(s) for s in spacing)
    organ_mask = organ_mask.astype(bool, copy=False)
    x_idx, y_idx, z_idx = (np.flatnonzero(organ_mask.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
    box = (slice(x_idx[0], x_idx[-1] + 1), slice(y_idx[0], y_idx[-1] + 1),
           slice(z_idx[0], z_idx[-1] + 1))
    offset = np.array([b.start for b in box])
    organ_box = organ_mask[box]
    extent = np.array(organ_box.shape) * np.array(spacing)

    if diameter_mm is not None:
        if diameter_mm <= 0:
            raise ValueError(f"diameter_mm must be > 0, got {diameter_mm}")
        plan = [size_class_for_diameter(diameter_mm)] * int(n_tumors or 1)
        min_diam = float(diameter_mm)
        size_label = f"{diameter_mm:g}mm"
    else:
        size_label = size if size is not None else SIZE_CHOICES[int(rng.integers(5))]
        counts = MIX_COUNTS if size_label == "mix" else COUNTS
        names = SIZES if size_label == "mix" else (size_label,)
        if n_tumors is None:
            plan = [n for n in names
                    for _ in range(int(rng.integers(counts[n][0], counts[n][1] + 1)))]
        else:
            plan = [names[int(rng.integers(len(names)))] for _ in range(int(n_tumors))]
        min_diam = min(1.5 * SIZE_RADIUS_MM[n] for n in names)
    if np.any(extent < min_diam):
        raise OrganTooSmallError(
            f"{organ} mask extent {np.round(extent, 1).tolist()} mm is smaller than the "
            f"requested tumor (diameter >= {min_diam:g} mm)",
            "use a smaller --size/--diameter-mm or a case with a larger organ")

    eroded, z_off = _candidate_slices(organ_box, spacing)
    vessel = None
    if vessel_avoidance:
        if ct is None:
            raise ValueError("vessel_avoidance needs the CT")
        ct_box = ct[box]
        vessel = (ct_box >= np.median(ct_box[organ_box]) + VESSEL_ABOVE_MEDIAN_HU) & organ_box

    tumors = []
    for name in plan:
        if diameter_mm is not None:
            aspect = rng.uniform(0.85, 1.15, size=3)
            radii = diameter_mm / 2.0 * aspect / np.prod(aspect) ** (1 / 3)
        else:
            radii = SIZE_RADIUS_MM[name] * rng.uniform(0.75, 1.25, size=3)
        center = _pick_center(rng, eroded, z_off, organ_box)
        for _ in range(20 if vessel is not None else 0):
            if not _hits_vessel(center, radii, spacing, organ_box, vessel):
                break
            center = _pick_center(rng, eroded, z_off, organ_box)
        tumors.append(EllipsoidTumor(
            size_class=name,
            center=tuple(int(c + o) for c, o in zip(center, offset, strict=True)),
            radii_mm=tuple(float(r) for r in radii),
            elastic_sigma_mm=sample_sigma(rng, name),
            deform_seed=int(rng.integers(2**31 - 1)),
            texture_seed=int(rng.integers(2**31 - 1)),
        ))
    return HandcraftedParams(
        organ=organ, size=size_label, tumors=tuple(tumors),
        sigma_a_mm=float(SIGMA_A_MM[int(rng.integers(len(SIGMA_A_MM)))]),
        sigma_b_mm=float(SIGMA_B_MM[int(rng.integers(len(SIGMA_B_MM)))]),
        blur_sigma_mm=float(rng.uniform(1.0, 2.0)), hu_drop=float(rng.uniform(65.0, 145.0)),
        mass_effect=float(mass_effect), capsule_hu=float(capsule_hu),
        vessel_avoidance=bool(vessel_avoidance),
    )

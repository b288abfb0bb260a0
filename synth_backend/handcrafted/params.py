"""Parameters of the hand-crafted method and how they are drawn (``sample_params``).

Everything random about one synthesis lives in :class:`HandcraftedParams` (frozen, JSON-ready);
:func:`synth_backend.handcrafted.synthesizer.apply` turns it into a volume deterministically.
Reference facts (spec "Hand-crafted"): centre on a z slice within 0.3-0.7 of the organ's z extent,
organ eroded in-plane (5 x 5 mm), per-axis radius U(0.75 r, 1.25 r) with r = 4/8/16/32 mm,
counts tiny 3-10 / small 3-10 / medium 2-5 / large 1-3, "mix" = all four, texture sigma_a in
{3,6,9,12,15} mm and sigma_b in {4,7} mm, boundary blur U(1, 2) mm, HU drop U(65, 145).

Profiles: ``train`` (default) is the fast recipe the paper trained with. ``vtt`` is its
visual-Turing-test version: tumors kept at least ``VESSEL_CLEARANCE_MM`` off the organ's large
vessels (:mod:`synth_backend.handcrafted.vessels`, or the dataset's vessel mask), a thin
enhancing capsule on medium and large tumors and a mild mass effect that pushes the surrounding
tissue and its vessels outward. The profile and what it drew are part of the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from core.vocabulary import SIZES
from synth_backend.base import float3, int3
from synth_backend.elastic import (
    deformed_ellipsoid,
    random_grids,
    sample_sigma,
    shape_reach_mm,
    tumor_box,
)
from synth_backend.errors import OrganTooSmallError
from synth_backend.handcrafted.texture import SIGMA_A_MM, SIGMA_B_MM
from synth_backend.handcrafted.vessels import clearance_mm, coarse_distance_mm, large_vessels
from synth_backend.masks import SIZE_RADIUS_MM

SIZE_CHOICES = (*SIZES, "mix")
COUNTS = {"tiny": (3, 10), "small": (3, 10), "medium": (2, 5), "large": (1, 3)}
# reference "mix" draws 5-10 small tumors (not 3-10)
MIX_COUNTS = {"tiny": (3, 10), "small": (5, 10), "medium": (2, 5), "large": (1, 3)}
Z_BAND = (0.3, 0.7)
ERODE_MM = 5.0
PROFILES = ("train", "vtt")
VESSEL_CLEARANCE_MM = 2.0  # vtt: no tumor voxel closer than this to a large vessel
CLEARANCE_CAP_MM = 10.0  # recorded clearance is exact up to this distance
PLACEMENT_TRIES = 30
VTT_MASS_EFFECT = (0.1, 0.25)  # mild: tissue at the tumor surface comes from ~0.9 r
VTT_CAPSULE_HU = (10.0, 25.0)  # capsule brighter than the parenchyma by this much
VTT_CAPSULE_MM = (1.0, 1.5)  # capsule thickness
CAPSULE_SIZES = ("medium", "large")


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
    mass_effect: float = 0.0  # 0 = off; else radial push strength (0.1-0.5)
    capsule_hu: float = 0.0  # 0 = off; else capsule this much brighter than parenchyma
    vessel_avoidance: bool = False
    profile: str = "train"
    capsule_mm: float = 1.5  # capsule thickness (medium and large tumors only)
    vessel_source: str = "none"  # vessels avoided: "hu" (derived), "mask" (given) or "none"
    vessel_clearance_mm: tuple[float, ...] = ()  # per tumor, capped at CLEARANCE_CAP_MM

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandcraftedParams:
        data = dict(data)
        data["vessel_clearance_mm"] = tuple(data.get("vessel_clearance_mm", ()))
        tumors = tuple(
            EllipsoidTumor(**{**t, "center": tuple(t["center"]), "radii_mm": tuple(t["radii_mm"])})
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
    band = organ[:, :, lo : hi + 1]
    k = [max(1, int(round(ERODE_MM / s)) | 1) for s in spacing[:2]]
    # min filter = binary erosion with a box; separable, so cheap on a large organ
    eroded = ndimage.minimum_filter(band.view(np.uint8), size=(k[0], k[1], 1), mode="constant")
    return eroded.astype(bool), lo


def _pick_center(
    rng: np.random.Generator, eroded: np.ndarray, z_offset: int, fallback: np.ndarray
) -> tuple[int, int, int]:
    """Reference order: a z slice uniformly in the band, then a voxel of that eroded slice."""
    slices = np.flatnonzero(eroded.any(axis=(0, 1)))
    if slices.size:
        z = int(slices[rng.integers(slices.size)])
        xy = np.argwhere(eroded[:, :, z])
        x, y = xy[rng.integers(len(xy))]
        return int(x), int(y), int(z + z_offset)
    idx = np.argwhere(fallback)  # organ too thin to erode: any organ voxel
    return tuple(int(v) for v in idx[rng.integers(len(idx))])  # type: ignore[return-value]


def _clearance_mm(center, radii_mm, grids, spacing, organ, vessels) -> float:
    """Distance (mm, capped) from the organ voxels of the deformed tumor at ``center`` (indices
    of the organ box) to the nearest vessel voxel; the cap when the tumor has no organ voxel."""
    box = tumor_box(center, tuple(shape_reach_mm(radii_mm, grids)), spacing, organ.shape)
    inside = deformed_ellipsoid(box, center, radii_mm, spacing, grids) & organ[box]
    return clearance_mm(inside, box, vessels, spacing, CLEARANCE_CAP_MM)


def volume_matched_radii(
    radii_mm: Sequence[float],
    diameter_mm: float,
    grids: np.ndarray,
    spacing: Sequence[float],
    iterations: int = 4,
) -> np.ndarray:
    """Ellipsoid radii whose *deformed* shape (``grids``) has equivalent diameter
    ``diameter_mm``. The reference's warp does not keep volume (a 24 mm ellipsoid came out
    15-21 mm), so a requested size is met by rescaling the radii, measured on the scan's own
    grid (``spacing``, mm) as the shape will be drawn; the aspect ratios and the warp stay as
    drawn. A few fixed-point steps of
    r <- r * (target / measured)^(1/3) (the warp's reach is in mm, so the map is not exact
    scaling) converge to well under 1 % here."""
    radii = np.asarray(radii_mm, dtype=np.float64)
    target_ml = np.pi / 6.0 * float(diameter_mm) ** 3 / 1000.0
    step = np.asarray(spacing, dtype=np.float64)
    for _ in range(iterations):
        n = int3(np.ceil(shape_reach_mm(tuple(radii), grids) / step))
        box = (slice(0, 2 * n[0] + 1), slice(0, 2 * n[1] + 1), slice(0, 2 * n[2] + 1))
        shape = deformed_ellipsoid(box, n, tuple(radii), tuple(step), grids)
        measured_ml = float(shape.sum()) * float(np.prod(step)) / 1000.0
        if measured_ml <= 0:
            break
        ratio = (target_ml / measured_ml) ** (1.0 / 3.0)
        radii = radii * ratio
        if abs(ratio - 1.0) < 0.003:
            break
    return radii


def sample_params(
    rng: np.random.Generator,
    organ_mask: np.ndarray,
    spacing: Sequence[float],
    *,
    organ: str,
    size: str | None = None,
    diameter_mm: float | None = None,
    n_tumors: int | None = None,
    profile: str = "train",
    ct: np.ndarray | None = None,
    vessel_mask: np.ndarray | None = None,
    vessel_avoidance: bool | None = None,
    mass_effect: float | None = None,
    capsule_hu: float | None = None,
) -> HandcraftedParams:
    """Draw one synthesis for a boolean (x, y, z) ``organ_mask`` with voxel ``spacing`` (mm).

    ``size``: tiny | small | medium | large | mix, or None for the reference's random choice
    (each of the five with p = 0.2). ``diameter_mm``: instead, exactly one tumor whose
    deformed shape has that equivalent diameter (:func:`volume_matched_radii`; the organ may
    still clip it). ``n_tumors``: this many tumors instead of the
    reference's count for the size class (one for ``diameter_mm``; "mix" then draws each
    tumor's class uniformly). ``profile``: "train" (default: none of the extras) or "vtt"
    (all three, drawn from ``VTT_*``). ``vessel_avoidance`` (default: on for vtt) needs ``ct``
    (HU) or a boolean ``vessel_mask`` of the volume: each tumor's centre is re-drawn (up to
    ``PLACEMENT_TRIES``) until its deformed shape keeps ``VESSEL_CLEARANCE_MM`` from the large
    vessels (else the clearest try is kept). ``mass_effect`` (push strength) and
    ``capsule_hu`` override the profile's draws. Raises :class:`OrganTooSmallError` when the
    organ is smaller than the tumor.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    vtt = profile == "vtt"
    vessel_avoidance = vtt if vessel_avoidance is None else bool(vessel_avoidance)
    if size is not None and diameter_mm is not None:
        raise ValueError("give size or diameter_mm, not both")
    if size is not None and size not in SIZE_CHOICES:
        raise ValueError(f"size must be one of {SIZE_CHOICES}, got {size!r}")
    if n_tumors is not None and int(n_tumors) < 1:
        raise ValueError(f"n_tumors must be >= 1, got {n_tumors}; pass a positive --n-tumors")
    spacing = tuple(float(s) for s in spacing)
    organ_mask = organ_mask.astype(bool, copy=False)
    x_idx, y_idx, z_idx = (np.flatnonzero(organ_mask.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
    box = (
        slice(x_idx[0], x_idx[-1] + 1),
        slice(y_idx[0], y_idx[-1] + 1),
        slice(z_idx[0], z_idx[-1] + 1),
    )
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
            plan = [
                n for n in names for _ in range(int(rng.integers(counts[n][0], counts[n][1] + 1)))
            ]
        else:
            plan = [names[int(rng.integers(len(names)))] for _ in range(int(n_tumors))]
        min_diam = min(1.5 * SIZE_RADIUS_MM[n] for n in names)
    if np.any(extent < min_diam):
        raise OrganTooSmallError(
            None,
            f"{organ} mask extent {np.round(extent, 1).tolist()} mm is smaller than the "
            f"requested tumor (diameter >= {min_diam:g} mm)",
            "use a smaller --size/--diameter-mm or a case with a larger organ",
        )

    eroded, z_off = _candidate_slices(organ_box, spacing)
    dist, vessels, vessel_source = None, None, "none"
    if vessel_avoidance:
        if vessel_mask is not None:
            if vessel_mask.shape != organ_mask.shape:
                raise ValueError(
                    f"vessel_mask shape {vessel_mask.shape} must equal the organ "
                    f"mask's {organ_mask.shape}"
                )
            vessels, vessel_source = vessel_mask[box].astype(bool), "mask"
        elif ct is not None:
            vessels, vessel_source = large_vessels(ct[box], organ_box, spacing), "hu"
        else:
            raise ValueError("vessel_avoidance needs the CT or a vessel mask")
        dist = coarse_distance_mm(vessels, spacing)
    band = slice(z_off, z_off + eroded.shape[2])

    tumors, clearances = [], []
    for name in plan:
        if diameter_mm is not None:
            aspect = rng.uniform(0.85, 1.15, size=3)
            radii = diameter_mm / 2.0 * aspect / np.prod(aspect) ** (1 / 3)
        else:
            radii = SIZE_RADIUS_MM[name] * rng.uniform(0.75, 1.25, size=3)
        sigma = sample_sigma(rng, name)
        deform_seed = int(rng.integers(2**31 - 1))
        texture_seed = int(rng.integers(2**31 - 1))
        if diameter_mm is not None:
            radii = volume_matched_radii(
                tuple(radii), diameter_mm, random_grids(deform_seed, sigma), spacing
            )
        pool = eroded
        if dist is not None:
            # centres deep enough off the vessels for the undeformed shape; the deformed shape
            # is then checked try by try
            far = eroded & (dist[:, :, band] >= float(min(radii)) + VESSEL_CLEARANCE_MM)
            pool = far if far.any() else eroded
        center = _pick_center(rng, pool, z_off, organ_box)
        if dist is not None:
            grids = random_grids(deform_seed, sigma)
            best = (_clearance_mm(center, radii, grids, spacing, organ_box, vessels), center)
            for _ in range(PLACEMENT_TRIES - 1):
                if best[0] >= VESSEL_CLEARANCE_MM:
                    break
                cand = _pick_center(rng, pool, z_off, organ_box)
                best = max(
                    best,
                    (_clearance_mm(cand, radii, grids, spacing, organ_box, vessels), cand),
                    key=lambda b: b[0],
                )
            center = best[1]
            clearances.append(round(best[0], 2))
        tumors.append(
            EllipsoidTumor(
                size_class=name,
                center=int3(c + o for c, o in zip(center, offset, strict=True)),
                radii_mm=float3(radii),
                elastic_sigma_mm=sigma,
                deform_seed=deform_seed,
                texture_seed=texture_seed,
            )
        )
    sigma_a = float(SIGMA_A_MM[int(rng.integers(len(SIGMA_A_MM)))])
    sigma_b = float(SIGMA_B_MM[int(rng.integers(len(SIGMA_B_MM)))])
    blur, drop = float(rng.uniform(1.0, 2.0)), float(rng.uniform(65.0, 145.0))
    vtt_mass = float(rng.uniform(*VTT_MASS_EFFECT)) if vtt else 0.0
    vtt_caps = float(rng.uniform(*VTT_CAPSULE_HU)) if vtt else 0.0
    caps_mm = float(rng.uniform(*VTT_CAPSULE_MM)) if vtt else 1.5
    return HandcraftedParams(
        organ=organ,
        size=size_label,
        tumors=tuple(tumors),
        sigma_a_mm=sigma_a,
        sigma_b_mm=sigma_b,
        blur_sigma_mm=blur,
        hu_drop=drop,
        mass_effect=float(vtt_mass if mass_effect is None else mass_effect),
        capsule_hu=float(vtt_caps if capsule_hu is None else capsule_hu),
        vessel_avoidance=vessel_avoidance,
        profile=profile,
        capsule_mm=caps_mm,
        vessel_source=vessel_source,
        vessel_clearance_mm=tuple(clearances),
    )

"""Parameters of one Pixel2Cancer synthesis and how they are drawn (``sample_params``).

Reference facts (spec "Pixel2Cancer"): 1-9 seeds on organ voxels, each starting at state 5 and,
with p = 1/3, given 3-9 satellite seeds within +-10 voxels (multi-focal); steps U{5..max-1}
(max 150 liver, 80 pancreas/kidney); necrosis with p = 0.5 when steps > 50 (liver) / 30;
HU drop U(65, 145), necrosis drop U(90, 110), pancreas fat brightening U(m, 2m).

Explicit size: ``size`` (tiny/small/medium/large: diameter U(6, 10) / U(12, 20) / U(24, 40) /
U(48, 80) mm, the hand-crafted classes) or ``diameter_mm`` is turned into steps with the
measured calibration (:mod:`synth_backend.pixel2cancer.tables`); seeds are then placed at least
half a radius inside the organ and satellites within half a radius (at most 10 mm), so the
lesion keeps the asked size, and one lesion is grown (not the reference's 1-9) unless
``n_tumors`` asks for more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from synth_backend.base import float3, int3
from synth_backend.errors import OrganTooSmallError
from synth_backend.handcrafted.texture import SIGMA_A_MM, SIGMA_B_MM
from synth_backend.pixel2cancer.tables import (
    INVASION_PROBS,
    ORGAN_TABLES,
    density_levels,
    diameter_for_steps,
    steps_for_diameter,
)

SIZE_DIAMETER_MM = {
    "tiny": (6.0, 10.0),
    "small": (12.0, 20.0),
    "medium": (24.0, 40.0),
    "large": (48.0, 80.0),
}


@dataclass(frozen=True)
class SeedCluster:
    """A primary seed and its satellites, as full-volume voxel indices (x, y, z)."""

    center: tuple[int, int, int]
    satellites: tuple[tuple[int, int, int], ...] = ()
    steps: int = 0  # growth steps of this cluster (satellites make a cluster grow wider)

    @property
    def points(self) -> list[tuple[int, int, int]]:
        return [self.center, *self.satellites]


@dataclass(frozen=True)
class Pixel2CancerParams:
    """Everything :func:`synth_backend.pixel2cancer.synthesizer.apply` needs (JSON-ready)."""

    organ: str
    size: str | None
    target_diameter_mm: float | None
    steps: int
    clusters: tuple[SeedCluster, ...]
    invasion_probs: tuple[float, float, float]
    density_mode: str
    death: bool
    death_extra: tuple[int, ...]  # extra dying cells per seed point (all clusters, in order)
    ca_seed: int
    texture_seed: int
    sigma_a_mm: float
    sigma_b_mm: float
    hu_drop: float
    necrosis_drop: float
    fat_factor: float
    ca_spacing_mm: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pixel2CancerParams:
        data = dict(data)
        data["clusters"] = tuple(
            SeedCluster(
                tuple(c["center"]), tuple(tuple(s) for s in c["satellites"]), int(c["steps"])
            )
            for c in data["clusters"]
        )
        data["invasion_probs"] = tuple(data["invasion_probs"])
        data["death_extra"] = tuple(data["death_extra"])
        return cls(**data)


def organ_box(organ: np.ndarray) -> tuple[slice, slice, slice]:
    """Bounding box of a non-empty boolean (x, y, z) mask, from its axis projections."""
    out = []
    for axis in range(3):
        idx = np.flatnonzero(organ.any(axis=tuple(a for a in range(3) if a != axis)))
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(out)  # type: ignore[return-value]


def sample_params(
    rng: np.random.Generator,
    ct: np.ndarray,
    organ_mask: np.ndarray,
    spacing: Sequence[float],
    *,
    organ: str,
    size: str | None = None,
    diameter_mm: float | None = None,
    steps: int | None = None,
    n_tumors: int | None = None,
    invasion_probs: Sequence[float] = INVASION_PROBS,
    density: str = "auto",
    necrosis: bool | None = None,
    ca_spacing_mm: float = 1.0,
) -> Pixel2CancerParams:
    """Draw one synthesis for ``ct`` (HU) and boolean ``organ_mask``, (x, y, z), spacing in mm.

    At most one of ``size``, ``diameter_mm``, ``steps``; none = the reference's random steps.
    ``n_tumors`` fixes the number of primary seeds (lesions; default 1 when a size or diameter
    is asked, else the reference's U{1..9}); ``necrosis`` forces death
    on/off (default: p = 0.5 above the organ's step threshold). Raises
    :class:`OrganTooSmallError` when no organ voxel lies deep enough for the requested size.
    """
    if sum(v is not None for v in (size, diameter_mm, steps)) > 1:
        raise ValueError("give at most one of size, diameter_mm, steps")
    if size is not None and size not in SIZE_DIAMETER_MM:
        raise ValueError(f"size must be one of {tuple(SIZE_DIAMETER_MM)}, got {size!r}")
    if n_tumors is not None and int(n_tumors) < 1:
        raise ValueError(f"n_tumors must be >= 1, got {n_tumors}; pass a positive --n-tumors")
    if len(invasion_probs) != 3 or not all(0.0 <= p <= 1.0 for p in invasion_probs):
        raise ValueError(f"invasion_probs must be 3 values in [0, 1], got {invasion_probs}")
    table = ORGAN_TABLES[organ]
    step = np.asarray(spacing, dtype=np.float64)
    organ_mask = organ_mask.astype(bool, copy=False)
    box = organ_box(organ_mask)
    organ_b, ct_b = organ_mask[box], ct[box]
    levels = density_levels(ct_b[organ_b][::7], organ, density)

    target = None
    if size is not None:
        target = float(rng.uniform(*SIZE_DIAMETER_MM[size]))
    elif diameter_mm is not None:
        if diameter_mm <= 0:
            raise ValueError(f"diameter_mm must be > 0, got {diameter_mm}")
        target = float(diameter_mm)
    if target is not None:
        steps = steps_for_diameter(target)
    elif steps is None:
        steps = int(rng.integers(5, table.max_steps))
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    radius = (target if target is not None else diameter_for_steps(steps)) / 2.0
    extent = np.array(organ_b.shape) * step
    if target is not None and np.any(extent < target):
        raise OrganTooSmallError(
            None,
            f"{organ} mask extent {np.round(extent, 1).tolist()} mm is smaller than the "
            f"requested {target:.1f} mm tumor",
            "use a smaller --size/--diameter-mm or a case with a larger organ",
        )

    candidates = organ_b & (ct_b < levels.vessel_hu)
    if target is not None:
        half = np.maximum(0, np.round(0.5 * radius / step)).astype(int)
        candidates &= ndimage.minimum_filter(
            organ_b.view(np.uint8), size=2 * half + 1, mode="constant"
        ).astype(bool)
    coords = np.argwhere(candidates)
    if coords.size == 0:
        raise OrganTooSmallError(
            None,
            f"no {organ} voxel lies {0.5 * radius:.1f} mm inside the organ mask (and below "
            f"the vessel level {levels.vessel_hu:.0f} HU)",
            "use a smaller size or a case with a larger organ",
        )
    offset = np.array([b.start for b in box])
    sat_mm = min(10.0, max(2.0, radius / 2))
    sat_reach = np.maximum(1, np.round(sat_mm / step)).astype(int)
    # measured: satellites within +-r/2 widen the lesion by about r/2, so with an explicit size
    # a multi-focal cluster grows for the steps of (target - r/2)
    sat_steps = steps if target is None else steps_for_diameter(max(2.0, target - sat_mm))
    clusters = []
    if n_tumors is None:
        n_tumors = 1 if target is not None else int(rng.integers(1, 10))
    for _ in range(int(n_tumors)):
        c = coords[rng.integers(len(coords))]
        sats: list[tuple[int, int, int]] = []
        if rng.integers(0, 3) == 0:
            for _ in range(int(rng.integers(3, 10))):
                p = c + rng.integers(-sat_reach, sat_reach)
                if np.all((p >= 0) & (p < organ_b.shape)) and candidates[tuple(p)]:
                    sats.append(int3(p + offset))
        clusters.append(
            SeedCluster(int3(c + offset), tuple(sats), int(sat_steps if sats else steps))
        )

    n_points = sum(len(c.points) for c in clusters)
    death = (
        steps > table.death_min_steps and bool(rng.integers(0, 2) == 0)
        if necrosis is None
        else bool(necrosis)
    )
    return Pixel2CancerParams(
        organ=organ,
        size=size,
        target_diameter_mm=target,
        steps=int(steps),
        clusters=tuple(clusters),
        invasion_probs=float3(invasion_probs),
        density_mode=density,
        death=death,
        death_extra=tuple(int(v) for v in rng.integers(5, 20, size=n_points)) if death else (),
        ca_seed=int(rng.integers(2**31 - 1)),
        texture_seed=int(rng.integers(2**31 - 1)),
        sigma_a_mm=float(SIGMA_A_MM[int(rng.integers(len(SIGMA_A_MM)))]),
        sigma_b_mm=float(SIGMA_B_MM[int(rng.integers(len(SIGMA_B_MM)))]),
        hu_drop=float(rng.uniform(65, 145)),
        necrosis_drop=float(rng.uniform(90, 110)),
        fat_factor=float(rng.uniform(1, 2)),
        ca_spacing_mm=float(ca_spacing_mm),
    )

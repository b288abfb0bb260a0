"""Ellipsoid tumor masks with the reference size mix (SyntheticTumors / DiffTumor).

Sampling is split from drawing (STYLE habit 4): ``sample_tumor_specs(rng, ...)`` returns frozen
:class:`TumorSpec` records (centre, radii, elastic deformation), and ``draw_tumor_mask(shape,
specs, organ)`` turns them into a mask deterministically. Everything works on (x, y, z) arrays at
1 mm isotropic spacing (the learning-based methods' working grid), so radii are in voxels = mm.

Reference size classes (spec, "Hand-crafted" and "DiffTumor"): radius r = 4 / 8 / 16 / 32 mm for
tiny / small / medium / large, each axis U(0.75 r, 1.25 r). DiffTumor's stages: *early* = 1-3
tumors, each tiny or small (p = 0.5); *medium* = 1 tumor with r ~ U(12, 20); *large* = 1 tumor
with r ~ U(24, 64); the *late* model (one checkpoint for medium and large) trains on medium or
large with p = 0.5, as it samples. A list of size classes (TumorGen) draws one tumor of a class
chosen uniformly from the list. The final mask is the deformed ellipsoid AND the organ; the
deformation is the reference's three-pass elastic warp, shared with the hand-crafted method
(:mod:`synth_backend.elastic`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import cast

import numpy as np

from synth_backend.elastic import (
    SIGMA_CHOICES_MM,
    SIGMA_TINY_MM,
    deformed_ellipsoid,
    random_grids,
    sample_sigma,
    shape_reach_mm,
    tumor_box,
)

SIZE_RADIUS_MM = {"tiny": 4.0, "small": 8.0, "medium": 16.0, "large": 32.0}
# elastic deformation sigma range (mm = voxels at 1 mm) per size class, from the hand-crafted
# reference; draw with synth_backend.elastic.sample_sigma (integers except tiny, as the reference)
ELASTIC_SIGMA = {
    "tiny": SIGMA_TINY_MM,
    **{k: (float(min(v)), float(max(v))) for k, v in SIGMA_CHOICES_MM.items()},
}
STAGES = ("early", "medium", "large")
# the size mixes a DiffTumor model trains on: "late" is the model of medium and large tumors
TRAINING_STAGES = ("early", "late", "medium", "large")


@dataclass(frozen=True)
class TumorSpec:
    """One ellipsoid tumor: centre (x, y, z) in voxels of the 1 mm grid, radii in mm,
    elastic-deformation strength ``elastic_sigma`` (voxels) and the seed of its displacement
    field. JSON-serializable through :meth:`to_dict` (kept as provenance)."""

    center: tuple[int, int, int]
    radii: tuple[float, float, float]
    elastic_sigma: float
    deform_seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def equivalent_radius_mm(self) -> float:
        return float(np.prod(self.radii) ** (1.0 / 3.0))


def stage_for_radius(radius_mm: float) -> str:
    """DiffTumor's split: early tumors have equivalent radius <= 10 mm, else medium/large."""
    if radius_mm <= 10.0:
        return "early"
    return "medium" if radius_mm <= 20.0 else "large"


def _size_classes(stage: str, rng: np.random.Generator) -> list[tuple[str, float]]:
    """(size class, base radius in mm) for each tumor of one DiffTumor stage."""
    if stage == "early":
        count = int(rng.integers(1, 4))
        out = []
        for _ in range(count):
            name = "tiny" if rng.random() < 0.5 else "small"
            out.append((name, SIZE_RADIUS_MM[name]))
        return out
    if stage == "medium":
        return [("medium", float(rng.uniform(12.0, 20.0)))]
    if stage == "large":
        return [("large", float(rng.uniform(24.0, 64.0)))]
    if stage == "late":
        return _size_classes("medium" if rng.random() < 0.5 else "large", rng)
    raise ValueError(f"stage must be one of {TRAINING_STAGES}, got {stage!r}")


def sample_tumor_specs(
    rng: np.random.Generator,
    candidates: np.ndarray,
    *,
    stage: str = "early",
    max_radius_mm: float | None = None,
    sizes: Sequence[str] | None = None,
) -> list[TumorSpec]:
    """Draw the tumors of one DiffTumor stage, centred on voxels chosen from ``candidates``.

    ``candidates`` is a boolean (x, y, z) array (typically the eroded organ on the 1 mm patch
    grid); it must contain at least one voxel. ``max_radius_mm`` caps each radius (e.g. to
    half the patch size) so a tumor fits the model's field of view. Early tumors all lie within
    the same region (the reference places 1-3 small lesions per patch). ``sizes`` (size
    classes), when given, replaces the stage: one tumor of a class drawn uniformly from it.
    """
    coords = np.argwhere(candidates)
    if coords.size == 0:
        raise ValueError("candidates mask is empty: no voxel to centre a tumor on")
    if sizes is not None:
        unknown = [s for s in sizes if s not in SIZE_RADIUS_MM]
        if unknown or not len(sizes):
            raise ValueError(
                f"sizes must be a non-empty list of {list(SIZE_RADIUS_MM)}, got {list(sizes)}"
            )
        name = str(sizes[int(rng.integers(len(sizes)))])
        classes = [(name, SIZE_RADIUS_MM[name])]
    else:
        classes = _size_classes(stage, rng)
    specs = []
    for name, base in classes:
        radii = base * rng.uniform(0.75, 1.25, size=3)
        if max_radius_mm is not None:
            radii = np.minimum(radii, max_radius_mm)
        centre = coords[int(rng.integers(len(coords)))]
        # argwhere rows and the drawn radii have one entry per axis of the 3D grid
        specs.append(
            TumorSpec(
                center=cast(tuple[int, int, int], tuple(int(c) for c in centre)),
                radii=cast(tuple[float, float, float], tuple(float(r) for r in radii)),
                elastic_sigma=sample_sigma(rng, name),
                deform_seed=int(rng.integers(2**31 - 1)),
            )
        )
    return specs


def ellipsoid(shape: Sequence[int], center: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    """Boolean (x, y, z) ellipsoid, axes aligned; radii in voxels (clipped below at 0.5)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist = cast(
        np.ndarray,
        sum(((g - c) / max(r, 0.5)) ** 2 for g, c, r in zip(grids, center, radii, strict=True)),
    )
    return dist <= 1.0


def draw_tumor_mask(
    shape: Sequence[int], specs: Sequence[TumorSpec], organ: np.ndarray | None = None
) -> np.ndarray:
    """Union of the (deformed) ellipsoids of ``specs`` on an (x, y, z) grid, AND ``organ``.

    Each ellipsoid is drawn in the box its warp can reach (:func:`synth_backend.elastic.
    shape_reach_mm`), so the cost scales with the tumor, not with the grid. Returns a bool
    array of ``shape``.
    """
    out = np.zeros(tuple(shape), dtype=bool)
    for spec in specs:
        grids = random_grids(spec.deform_seed, spec.elastic_sigma)
        box = tumor_box(spec.center, shape_reach_mm(spec.radii, grids), (1.0, 1.0, 1.0), shape)
        if any(b.stop <= b.start for b in box):
            continue
        out[box] |= deformed_ellipsoid(box, spec.center, spec.radii, (1.0, 1.0, 1.0), grids)
    if organ is not None:
        out &= organ.astype(bool)
    return out

"""Elastic deformation of ellipsoid tumor shapes, as the reference does it (one implementation
for the hand-crafted method and the learned methods' pseudo tumors).

The reference (SyntheticTumors ``get_fixed_geo``) draws an ellipsoid in a box of 4 x its radius
per axis at 1 mm and warps it three times with ``elasticdeform.deform_random_grid(geo, sigma,
points=3, order=0, axis=A)`` for ``A`` = (0, 1), then (1, 2), then (0, 2): each pass is a 2D
displacement, the same on every slice along the third axis, drawn N(0, sigma^2) voxels on a
3 x 3 control grid that spans the whole box (points at the box edges and its centre) and
interpolated with an interpolating cubic B-spline (mirror boundary). A pass resamples its input
at ``x + d(x)``, so the final shape is ``inside(x)`` iff ``e(p1) <= 1`` with
``p3 = x + d3(x)``, ``p2 = p3 + d2(p3)``, ``p1 = p2 + d1(p2)`` and ``e`` the ellipsoid.

Why not ``elasticdeform`` itself: its only wheel for this Python (0.5.1) is built against NumPy 1
and fails to import under NumPy 2 (``_ARRAY_API not found``). It also resamples a 1 mm box three
times (nearest neighbour) and draws from NumPy's global random state. Here the same mapping is
evaluated pointwise, in mm, on the scan's own (anisotropic) grid and from a seeded generator;
it was checked against elasticdeform 0.5.1 built from source (same displacements -> same
coordinates, tests/synth_backend/test_elastic.py).

Sigma in mm (= the reference's voxels at 1 mm) by size class: tiny U(0.5, 1), small {1, 2},
medium {3..6}, large {5..10} (integers, ``random.randint`` in the reference).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

Box = tuple[slice, slice, slice]

PASS_AXES = ((0, 1), (1, 2), (0, 2))  # the reference's three passes, in the order applied
CONTROL_POINTS = 3
BOX_RADII = 2.0  # the reference's box: 4 x the radius -> +-2 radii
# The reference's shape lives on a 1 mm lattice: every pass resamples it with nearest neighbour
# (order=0). Rounding the intermediate points to that lattice reproduces the irregular outline
# it gives small tumors (tiny: 1 - Dice vs a sphere 0.15 with rounding, 0.11 without).
REFERENCE_GRID_MM = 1.0
# sigma (mm) per size class: continuous range (tiny) or integer choices (reference randint)
SIGMA_TINY_MM = (0.5, 1.0)
SIGMA_CHOICES_MM = {"small": (1, 2), "medium": (3, 4, 5, 6), "large": (5, 6, 7, 8, 9, 10)}


def sample_sigma(rng: np.random.Generator, size_class: str) -> float:
    """Displacement std (mm) of the reference for ``size_class`` (tiny|small|medium|large)."""
    if size_class == "tiny":
        return float(rng.uniform(*SIGMA_TINY_MM))
    if size_class not in SIGMA_CHOICES_MM:
        raise ValueError(f"size_class must be tiny, small, medium or large, got {size_class!r}")
    choices = SIGMA_CHOICES_MM[size_class]
    return float(choices[int(rng.integers(len(choices)))])


def random_grids(seed: int, sigma_mm: float) -> np.ndarray:
    """Control displacements (mm) of the three passes, shape (3, 2, 3, 3): pass, displaced axis
    (of ``PASS_AXES[pass]``), control grid; N(0, sigma^2), fixed by ``seed``."""
    rng = np.random.default_rng(int(seed))
    return rng.normal(
        0.0, float(sigma_mm), size=(len(PASS_AXES), 2, CONTROL_POINTS, CONTROL_POINTS)
    )


def _cardinal(u: np.ndarray) -> list[np.ndarray]:
    """The three cardinal functions at control coordinates ``u`` in [0, 2]: the interpolating
    cubic B-spline (mirror boundary, as elasticdeform and scipy) through each unit vector of the
    3 control values. It is one cubic per knot interval; on t in [0, 1] (solved from the
    B-spline prefilter, checked against scipy in tests/synth_backend/test_elastic.py):
    phi0 = 1.25 t^3 - 2.25 t^2 + 1, phi1 = 3 t^2 - 2 t^3, phi2 = 0.75 (t^3 - t^2), and the
    spline is symmetric about the middle control point, so [1, 2] mirrors [0, 1]."""
    u = np.asarray(u, dtype=np.float32)
    left = u <= 1
    t = np.where(left, u, np.float32(2) - u)
    t2 = t * t
    p0 = (np.float32(1.25) * t - np.float32(2.25)) * t2 + np.float32(1)
    p1 = (np.float32(3) - np.float32(2) * t) * t2
    p2 = np.float32(0.75) * (t - np.float32(1)) * t2
    return [np.where(left, p0, p2), p1, np.where(left, p2, p0)]


def _spline2d(coef: np.ndarray, phi_a: list[np.ndarray], phi_b: list[np.ndarray]) -> np.ndarray:
    """sum_kl coef[k, l] phi_a[k] phi_b[l] (arrays broadcast). The inner sum runs over the
    smaller factor (often a 2D plane), so the full 3D arrays see only 3 multiply-adds."""
    if phi_a[0].size > phi_b[0].size:
        coef, phi_a, phi_b = coef.T, phi_b, phi_a
    out = None
    for m in range(CONTROL_POINTS):
        inner = sum(np.float32(coef[k, m]) * phi_a[k] for k in range(CONTROL_POINTS))
        term = inner * phi_b[m]
        out = term if out is None else out + term
    assert out is not None  # CONTROL_POINTS > 0
    return out


def displacement_bound_mm(grids: np.ndarray) -> np.ndarray:
    """Per axis, an upper bound (mm) of the total displacement of the three passes: a cubic
    B-spline never exceeds its largest coefficient, so the bound is exact, not a guess."""
    bound = np.zeros(3)
    for (a, b), pass_grid in zip(PASS_AXES, grids, strict=True):
        for axis, field in zip((a, b), pass_grid, strict=True):
            coef = ndimage.spline_filter(field, order=3, mode="mirror")
            bound[axis] += float(np.abs(coef).max())
    return bound


def warp(
    offsets_mm: Sequence[np.ndarray],
    half_mm: Sequence[float],
    grids: np.ndarray,
    lattice_mm: float | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Source points of the reference's three-pass warp for target points ``offsets_mm``.

    ``offsets_mm``: three arrays (mm from the shape's centre along x, y, z) that broadcast to
    one shape; ``half_mm``: half extent of the control box per axis (the reference: 2 radii);
    ``grids``: :func:`random_grids`. Returns the three source coordinate arrays (mm) and a
    boolean array that is False where a point leaves the box during a pass (the reference's
    constant border: such points are outside the shape). ``lattice_mm``: round the points to
    this lattice (relative to the centre) after each pass, as nearest-neighbour resampling does.
    """
    p = [np.asarray(o, dtype=np.float32) for o in offsets_mm]
    half = [float(h) for h in half_mm]
    valid = np.ones(np.broadcast_shapes(*(x.shape for x in p)), dtype=bool)
    for pass_index in reversed(range(len(PASS_AXES))):  # the last pass acts first
        a, b = PASS_AXES[pass_index]
        u = [
            np.float32((CONTROL_POINTS - 1) / 2) * (p[ax] / np.float32(half[ax]) + 1)
            for ax in (a, b)
        ]
        phi_a, phi_b = _cardinal(u[0]), _cardinal(u[1])
        d_a = _spline2d(grids[pass_index, 0], phi_a, phi_b)
        d_b = _spline2d(grids[pass_index, 1], phi_a, phi_b)
        for uu in u:
            valid &= (uu >= 0) & (uu <= CONTROL_POINTS - 1)
        p[a] = p[a] + d_a
        p[b] = p[b] + d_b
        if lattice_mm:
            for ax in (a, b):
                p[ax] = np.round(p[ax] / np.float32(lattice_mm)) * np.float32(lattice_mm)
    return p, valid


def tumor_box(
    center: Sequence[int],
    reach_mm: Sequence[float] | np.ndarray | float,
    spacing: Sequence[float],
    shape: Sequence[int],
) -> Box:
    """Voxels within ``reach_mm`` (per axis or one value) of ``center``, clipped to ``shape``."""
    reach = np.broadcast_to(np.asarray(reach_mm, dtype=np.float64), (3,))
    half = np.ceil(reach / np.asarray(spacing, dtype=np.float64)).astype(int)
    return tuple(  # type: ignore[return-value]
        slice(max(0, int(c) - int(h)), min(int(n), int(c) + int(h) + 1))
        for c, h, n in zip(center, half, shape, strict=True)
    )


def shape_reach_mm(radii_mm: Sequence[float], grids: np.ndarray) -> np.ndarray:
    """Per-axis distance from the centre beyond which the warped ellipsoid has no voxel."""
    radii = np.asarray(radii_mm, dtype=np.float64)
    return np.minimum(BOX_RADII * radii, radii + displacement_bound_mm(grids)) + 1e-3


def deformed_ellipsoid(
    box: Box,
    center: Sequence[float],
    radii_mm: Sequence[float],
    spacing: Sequence[float],
    grids: np.ndarray,
) -> np.ndarray:
    """Boolean mask over ``box`` (x, y, z) of the ellipsoid with radii ``radii_mm`` centred on
    voxel ``center`` (full-volume indices), warped as the reference does (:func:`warp`, control
    box of 2 radii per axis). Spacing in mm; radii > 0. Use :func:`shape_reach_mm` to size
    ``box``: the mask is then never cut by it."""
    axes = [
        (np.arange(s.start, s.stop, dtype=np.float32) - np.float32(c)) * np.float32(sp)
        for s, c, sp in zip(box, center, spacing, strict=True)
    ]
    views = [a.reshape([-1 if i == k else 1 for i in range(3)]) for k, a in enumerate(axes)]
    radii = [float(r) for r in radii_mm]
    src, valid = warp(views, [BOX_RADII * r for r in radii], grids, REFERENCE_GRID_MM)
    total = sum((s * np.float32(1.0 / r)) ** 2 for s, r in zip(src, radii, strict=True))
    return np.broadcast_to((total <= 1.0) & valid, tuple(a.size for a in axes)).copy()

"""Implicit shapes for the phantom: fields F(x, y, z) in mm, negative inside, ~signed distance.

All functions take world coordinates in mm as arrays that broadcast against each other
(typically ``X[:, None, None]``, ``Y[None, :, None]``, ``Z[None, None, :]``) and return a float32
field. Only the sign and the behaviour within a voxel or two of the surface matter: the painter
turns F into partial-volume fractions using F's own local variation (see ``canvas.coverage``),
so first-order distance approximations are enough and much cheaper than exact distances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Array = np.ndarray
# a point, radii or extent (mm): callers pass lists from the anatomy dict or computed arrays
Vec = Sequence[float] | np.ndarray


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> Array:
    """Rotation matrix from angles in degrees about x, then y, then z (R = Rz @ Ry @ Rx)."""
    ax, ay, az = np.deg2rad([rx, ry, rz])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def to_local(
    X: Array, Y: Array, Z: Array, center: Vec, rot: Array | None = None
) -> tuple[Array, Array, Array]:
    """Coordinates in a shape's own frame: q = R^T (p - c) (R's columns are the local axes)."""
    dx, dy, dz = X - center[0], Y - center[1], Z - center[2]
    if rot is None:
        return dx, dy, dz
    r = np.asarray(rot, dtype=np.float32)
    return (
        r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz,
        r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz,
        r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz,
    )


def ellipsoid(
    X: Array, Y: Array, Z: Array, center: Vec, radii: Vec, rot: Array | None = None
) -> Array:
    """Ellipsoid with semi-axes ``radii`` (mm) along its local axes.

    Uses the first-order distance k0 (k0 - 1) / k1 with k0 = |q / r|, k1 = |q / r^2| (exact on the
    surface, a good estimate within a few mm of it).
    """
    qx, qy, qz = to_local(X, Y, Z, center, rot)
    rx, ry, rz = (float(r) for r in radii)
    k0 = np.sqrt((qx / rx) ** 2 + (qy / ry) ** 2 + (qz / rz) ** 2)
    k1 = np.sqrt((qx / rx**2) ** 2 + (qy / ry**2) ** 2 + (qz / rz**2) ** 2)
    return (k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)).astype(np.float32)


def superellipse(
    X: Array, Y: Array, center: Sequence[float], a: float, b: float, power: float
) -> Array:
    """2D superellipse |x/a|^p + |y/b|^p = 1 in the (x, y) plane (a prism along z).

    ``power`` 2 is an ellipse; larger values square the outline (abdominal cross-sections are
    ~2.3-3). The field is (f - 1) * sqrt(a b) with f the superellipse radius function.
    """
    u = np.abs((X - center[0]) / a) ** power + np.abs((Y - center[1]) / b) ** power
    return ((u ** (1.0 / power) - 1.0) * np.sqrt(a * b)).astype(np.float32)


def slab_z(Z: Array, lo: float, hi: float) -> Array:
    """The slab lo <= z <= hi."""
    return np.maximum(lo - Z, Z - hi).astype(np.float32)


def periodic_slabs_z(Z: Array, period: float, thickness: float, phase: float) -> Array:
    """Slabs of ``thickness`` mm centred at phase + k * period (intervertebral discs)."""
    d = np.abs(np.mod(Z - phase + period / 2.0, period) - period / 2.0)
    return (d - thickness / 2.0).astype(np.float32)


def union(*fields: Array) -> Array:
    out = fields[0]
    for f in fields[1:]:
        out = np.minimum(out, f)
    return out


def intersect(*fields: Array) -> Array:
    out = fields[0]
    for f in fields[1:]:
        out = np.maximum(out, f)
    return out


def subtract(a: Array, b: Array) -> Array:
    """a minus b."""
    return np.maximum(a, -b)


def smooth_union(a: Array, b: Array, k: float) -> Array:
    """Polynomial smooth minimum: blends two shapes with a fillet of about ``k`` mm."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return (b + (a - b) * h - k * h * (1.0 - h)).astype(np.float32)


def catmull_rom(points: Sequence[Sequence[float]], per_segment: int = 8) -> Array:
    """Smooth curve through control points (centripetal-free uniform Catmull-Rom), (M, 3)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        return p
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * (
                (2 * p1)
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(p[-1:])
    return np.vstack(out)


def resample_radii(control_radii: Sequence[float], n: int) -> Array:
    """Radii at ``n`` curve samples, linearly interpolated between control radii."""
    r = np.asarray(control_radii, dtype=np.float64)
    return np.interp(np.linspace(0, len(r) - 1, n), np.arange(len(r)), r)


def round_cone(X: Array, Y: Array, Z: Array, a: Vec, b: Vec, ra: float, rb: float) -> Array:
    """Tube segment from a to b whose radius goes linearly from ra to rb (capsule if equal)."""
    a = np.asarray(a, dtype=np.float64)
    ab = np.asarray(b, dtype=np.float64) - a
    length2 = float(ab @ ab)
    px, py, pz = X - a[0], Y - a[1], Z - a[2]
    if length2 < 1e-9:
        return (np.sqrt(px**2 + py**2 + pz**2) - ra).astype(np.float32)
    t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / length2, 0.0, 1.0)
    d = np.sqrt((px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2)
    return (d - (ra + (rb - ra) * t)).astype(np.float32)

"""DSC / NSD on analytic shapes against values derived by hand."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from evaluation.segmentation import dice, evaluate_folders, normalized_surface_dice
from evaluation.tables import EvaluationInputError


def _cube(shape, start, n):
    m = np.zeros(shape, dtype=np.uint8)
    m[start[0] : start[0] + n, start[1] : start[1] + n, start[2] : start[2] + n] = 1
    return m


def _cube_shift_nsd(n: int, s: tuple[float, float, float]) -> float:
    """NSD at tolerance < min(spacing) of an n^3-voxel cube vs itself shifted one voxel in x.

    Sub-voxel surfaces live on 2x2x2 cells between voxel centres; a cell on one face carries the
    face's cross-section, a cell on an edge along axis k the quad s_k * |(s_i, s_j)| / 2, a corner
    the triangle |(s_y s_z, s_x s_z, s_x s_y)| / 8. With a tolerance below every spacing only
    coincident boundary cells count: those with x in 1..n and y or z on the boundary. Each
    surface has the same covered area (by symmetry), so NSD = covered / total.
    """
    sx, sy, sz = s
    ex, ey, ez = (
        sx * math.hypot(sy, sz) / 2,
        sy * math.hypot(sx, sz) / 2,
        sz * math.hypot(sx, sy) / 2,
    )
    corner = math.sqrt((sy * sz) ** 2 + (sx * sz) ** 2 + (sx * sy) ** 2) / 8
    m = n - 1
    total = 2 * m * m * (sy * sz + sx * sz + sx * sy) + 4 * m * (ex + ey + ez) + 8 * corner
    covered = m * (2 * m * (sx * sz + sx * sy) + 4 * ex) + 2 * m * (ey + ez) + 4 * corner
    return covered / total


SPACING = (1.5, 0.7, 2.5)  # anisotropic, x largest is not required: any order works


def test_cube_shifted_one_voxel_dice_and_nsd_by_hand():
    n = 6
    a = _cube((12, 12, 12), (2, 3, 3), n)
    b = _cube((12, 12, 12), (3, 3, 3), n)
    assert dice(a, b) == pytest.approx((n - 1) / n)  # overlap n-1 slabs of n*n voxels
    # every surface point of b is a surface point of a moved by s_x: within tolerance s_x
    assert normalized_surface_dice(a, b, SPACING, tolerance_mm=SPACING[0]) == pytest.approx(1.0)
    expected = _cube_shift_nsd(n, SPACING)
    assert 0.3 < expected < 0.9
    nsd = normalized_surface_dice(a, b, SPACING, tolerance_mm=0.5 * min(SPACING))
    assert nsd == pytest.approx(expected, rel=1e-5)


def test_cube_identity_and_empty_conventions():
    a = _cube((8, 8, 8), (1, 1, 1), 4)
    assert dice(a, a) == 1.0 and normalized_surface_dice(a, a, SPACING, 0.0) == 1.0
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 1.0 and normalized_surface_dice(empty, empty, SPACING) == 1.0
    assert dice(a, empty) == 0.0 and normalized_surface_dice(a, empty, SPACING) == 0.0
    assert normalized_surface_dice(empty, a, SPACING) == 0.0


def _sphere(shape, center_mm, radius_mm, spacing):
    grids = np.meshgrid(
        *[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
    )
    dist2 = sum((g - c) ** 2 for g, c in zip(grids, center_mm, strict=True))
    return (dist2 <= radius_mm**2).astype(np.uint8)


def _sphere_nsd(r: float, d: float, tau: float) -> float:
    """Continuous NSD of two radius-r spheres whose centres are d apart, at tolerance tau."""
    lo = ((r - tau) ** 2 - r**2 - d**2) / (2 * r * d)
    hi = ((r + tau) ** 2 - r**2 - d**2) / (2 * r * d)
    return (min(hi, 1.0) - max(lo, -1.0)) / 2


def test_offset_spheres_against_continuous_geometry():
    # r = 10 mm, centres d = 4 mm apart along x, spacing 0.5 x 0.5 x 0.8 mm.
    # DSC: lens volume pi (4r + d)(2r - d)^2 / 12 over the sphere volume 4/3 pi r^3.
    # NSD at tau = 2 mm: a point r*u + d*e of sphere B is within tau of sphere A iff
    # r - tau <= |r u + d e| <= r + tau, i.e. cos(theta) in [((r-tau)^2 - r^2 - d^2) / (2 r d),
    # ((r+tau)^2 - r^2 - d^2) / (2 r d)] = [-0.65, 0.35]; sphere area is uniform in cos(theta)
    # (Archimedes), so the covered fraction is 1.0 / 2 = 0.5 for both surfaces.
    r, d, tau = 10.0, 4.0, 2.0
    spacing = (0.5, 0.5, 0.8)
    shape = (64, 48, 32)
    c = (13.0, 12.0, 12.4)
    a = _sphere(shape, c, r, spacing)
    b = _sphere(shape, (c[0] + d, c[1], c[2]), r, spacing)
    expected_dsc = (math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12) / (4 / 3 * math.pi * r**3)
    assert dice(a, b) == pytest.approx(expected_dsc, abs=0.01)
    assert _sphere_nsd(r, d, tau) == pytest.approx(0.5)
    # Voxel surfaces are 2x2x2 cells between voxel centres; a cell's position can sit up to half a
    # voxel diagonal h from the true surface, so the measured NSD lies between the continuous
    # values at tau - h and tau + h (it comes out near the upper end: the cell band is thick).
    h = 0.5 * math.sqrt(sum(s * s for s in spacing))
    nsd = normalized_surface_dice(a, b, spacing, tau)
    assert _sphere_nsd(r, d, tau - h) <= nsd <= _sphere_nsd(r, d, tau + h)
    # beyond the offset every point is covered
    assert normalized_surface_dice(a, b, spacing, d + 0.5) == pytest.approx(1.0, abs=1e-6)


def _save(mask, path, spacing):
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.diag([*spacing, 1.0])), str(path))


def test_evaluate_folders_matches_by_name(tmp_path):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    a = _cube((12, 12, 12), (2, 3, 3), 6)
    b = _cube((12, 12, 12), (3, 3, 3), 6)
    _save(a, truth / "case1.nii.gz", SPACING)
    _save(b, pred / "case1.nii.gz", SPACING)
    _save(a, truth / "case2.nii.gz", SPACING)
    _save(a, pred / "case2.nii.gz", SPACING)
    table = evaluate_folders(pred, truth, tolerance_mm=0.3)
    assert table.case.tolist() == ["case1.nii.gz", "case2.nii.gz"]
    assert table.dsc.tolist() == pytest.approx([5 / 6, 1.0])
    assert table.nsd[0] == pytest.approx(_cube_shift_nsd(6, SPACING), rel=1e-5)
    assert table.spacing_z[0] == pytest.approx(2.5)
    (truth / "case3.nii.gz").write_bytes((truth / "case2.nii.gz").read_bytes())
    with pytest.raises(EvaluationInputError, match="no prediction for 1 truth file"):
        evaluate_folders(pred, truth)

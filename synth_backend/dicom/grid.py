"""Slice geometry of a CT series: ordering, spacing checks, gantry tilt, resampling.

DICOM patient coordinates are LPS (mm). A slice's pixel (r, c) lies at
``IPP + c * PixelSpacing[1] * row_dir + r * PixelSpacing[0] * col_dir`` (row_dir = the first
three ImageOrientationPatient values: the direction of increasing column index). Slices are
ordered along the normal ``n = row_dir x col_dir``.

Stacks handled here are (k, r, c): slice, row, column. The NIfTI written from a stack is its
transpose (x = c, y = r, z = k) with the RAS affine of :meth:`SliceGrid.affine_ras`, so the
file keeps the series' own grid and orientation (no reorientation, no resampling unless the
series needs it).

- **Spacing**: positions along ``n`` must be equally spaced (tolerance
  :data:`SPACING_RTOL`); a gap (missing slices) or irregular spacing is refused with its size,
  or, on request, every slice is linearly interpolated onto the median spacing.
- **Gantry tilt**: tilted acquisitions step each slice's origin sideways as well as along
  ``n``. Like dcm2niix, each slice is shifted in-plane (linear interpolation, -1024 HU fill)
  onto an orthogonal grid, and the angle is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from synth_backend.dicom.errors import DicomError
from synth_backend.io import MAX_VOXELS

SPACING_RTOL = 0.01  # 1% of the slice spacing
SPACING_ATOL_MM = 0.01
ORIENTATION_ATOL = 1e-4
TILT_MIN_DEG = 0.05  # below this, slice offsets are rounding noise
FILL_HU = -1024.0


@dataclass(frozen=True)
class SliceGrid:
    """Geometry of one series after ordering (and, when needed, tilt correction/resampling).

    ``positions`` are the sorted source slice positions along ``normal`` (mm);
    ``sop_uids`` the source SOP Instance UIDs in that order; ``shifts_rc`` the in-plane shift
    (rows, columns) that moves each source slice onto the corrected grid; ``targets`` the output
    slice positions (== positions unless resampled).
    """

    row_dir: np.ndarray
    col_dir: np.ndarray
    normal: np.ndarray
    pixel_spacing: tuple[float, float]  # (between rows, between columns) mm
    shape_rc: tuple[int, int]
    origin: np.ndarray  # LPS position of voxel (0, 0, 0) of the output grid
    positions: np.ndarray
    sop_uids: tuple[str, ...]
    shifts_rc: np.ndarray  # (K, 2)
    targets: np.ndarray
    slice_spacing: float
    tilt_deg: float
    resampled: bool

    @property
    def shape_krc(self) -> tuple[int, int, int]:
        return (len(self.targets), *self.shape_rc)

    def affine_lps(self) -> np.ndarray:
        """(x = column, y = row, z = output slice) voxel index -> LPS mm."""
        affine = np.eye(4)
        affine[:3, 0] = self.row_dir * self.pixel_spacing[1]
        affine[:3, 1] = self.col_dir * self.pixel_spacing[0]
        affine[:3, 2] = self.normal * self.slice_spacing
        affine[:3, 3] = self.origin
        return affine

    def affine_ras(self) -> np.ndarray:
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine_lps()

    def source_index(self, sop_uid: str) -> int | None:
        try:
            return self.sop_uids.index(sop_uid)
        except ValueError:
            return None

    def source_index_at(self, point_lps: Sequence[float] | np.ndarray) -> int | None:
        """Source slice whose plane contains ``point_lps`` (within a quarter spacing)."""
        d = float(np.dot(point_lps, self.normal))
        k = int(np.argmin(np.abs(self.positions - d)))
        tol = 0.25 * self.slice_spacing if len(self.positions) > 1 else 0.5
        return k if abs(self.positions[k] - d) <= tol else None

    def plane_rc(self, points_lps: np.ndarray, k: int) -> np.ndarray:
        """(N, 2) continuous (row, column) of LPS points on the *corrected* grid of source
        slice ``k`` (tilt already removed)."""
        origin_k = self.origin + (self.positions[k] - self.positions[0]) * self.normal
        rel = np.asarray(points_lps, float) - origin_k
        return np.stack(
            [
                rel @ self.col_dir / self.pixel_spacing[0],
                rel @ self.row_dir / self.pixel_spacing[1],
            ],
            axis=1,
        )

    def finish(self, stack: np.ndarray, *, order: int, raw: bool, cval: float) -> np.ndarray:
        """Map a (K_source, R, C) stack onto the output grid.

        ``raw``: the stack is in the source slices' own pixel grids (CT pixels, SEG frames), so
        the tilt shifts apply; rasterized contours are already on the corrected grid.
        ``order`` 1 (CT) interpolates linearly, 0 (masks) takes the nearest.
        """
        out = np.asarray(stack)
        if raw and self.tilt_deg > 0:
            out = np.stack(
                [
                    ndimage.shift(
                        s.astype(np.float32) if order else s,
                        tuple(sh),
                        order=order,
                        mode="constant",
                        cval=cval,
                        prefilter=False,
                    )
                    for s, sh in zip(out, self.shifts_rc, strict=True)
                ]
            ).astype(stack.dtype)
        if self.resampled:
            out = resample_slices(out, self.positions, self.targets, order=order)
        return out


def resample_slices(
    stack: np.ndarray, positions: np.ndarray, targets: np.ndarray, *, order: int
) -> np.ndarray:
    """Interpolate a (K, R, C) stack at sorted source ``positions`` onto ``targets`` (mm):
    linear between the two neighbouring slices (order 1) or the nearest slice (order 0)."""
    positions = np.asarray(positions, float)
    idx = np.clip(np.searchsorted(positions, targets, side="right") - 1, 0, len(positions) - 2)
    lo, hi = positions[idx], positions[idx + 1]
    w = np.clip((np.asarray(targets) - lo) / (hi - lo), 0.0, 1.0)
    if order == 0:
        pick = np.where(w < 0.5, idx, idx + 1)
        return stack[pick]
    a = stack[idx].astype(np.float32)
    b = stack[idx + 1].astype(np.float32)
    return a + (b - a) * w[:, None, None].astype(np.float32)


def _vec(ds, key: str, n: int, what: str) -> np.ndarray:
    value = ds.get(key)
    if value is None or len(value) != n:
        raise DicomError(
            what,
            f"{key} is missing or malformed",
            "this is not a CT volume slice (re-export the series from the scanner or PACS)",
        )
    return np.asarray([float(v) for v in value])


def build_grid(
    headers: Sequence, paths: Sequence, series: str, *, resample_nonuniform: bool = False
) -> tuple[SliceGrid, list[int]]:
    """Order a CT series and check its geometry; returns the grid and the source order
    (indices into ``headers``). Raises :class:`DicomError` naming the series and the problem.
    """
    iop0 = _vec(headers[0], "ImageOrientationPatient", 6, str(paths[0]))
    ps0 = _vec(headers[0], "PixelSpacing", 2, str(paths[0]))
    rows, cols = int(headers[0].get("Rows", 0)), int(headers[0].get("Columns", 0))
    n_voxels = rows * cols * len(headers)
    if not 0 < n_voxels <= MAX_VOXELS:
        raise DicomError(
            series,
            f"{len(headers)} images of {rows}x{cols} pixels ({n_voxels} voxels)",
            f"a volume must have 1 to {MAX_VOXELS} voxels: split the series or check its headers",
        )
    ipps = []
    for ds, path in zip(headers, paths, strict=True):
        iop = _vec(ds, "ImageOrientationPatient", 6, str(path))
        ps = _vec(ds, "PixelSpacing", 2, str(path))
        if (
            not np.allclose(iop, iop0, atol=ORIENTATION_ATOL)
            or not np.allclose(ps, ps0, atol=1e-4)
            or (int(ds.Rows), int(ds.Columns)) != (rows, cols)
        ):
            raise DicomError(
                path,
                f"orientation, pixel spacing or image size differs from the rest of {series}",
                "the series mixes images of different reconstructions: export each "
                "reconstruction as its own series",
            )
        ipps.append(_vec(ds, "ImagePositionPatient", 3, str(path)))
    row_dir, col_dir = iop0[:3] / np.linalg.norm(iop0[:3]), iop0[3:] / np.linalg.norm(iop0[3:])
    normal = np.cross(row_dir, col_dir)
    ipp = np.asarray(ipps)
    d = ipp @ normal
    order = [int(i) for i in np.argsort(d, kind="stable")]
    d, ipp = d[order], ipp[order]
    steps = np.diff(d)
    dup = np.flatnonzero(steps < SPACING_ATOL_MM)
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise DicomError(
            series,
            f"{dup.size + 1} slices share a position (e.g. {paths[a]} and {paths[b]} at "
            f"{d[dup[0]]:.2f} mm)",
            "the series holds several acquisitions or duplicates: remove the duplicates or "
            "split it",
        )
    spacing = float(np.median(steps))
    bad = np.flatnonzero(np.abs(steps - spacing) > max(SPACING_ATOL_MM, SPACING_RTOL * spacing))
    targets, resampled = d.copy(), False
    if bad.size:
        j = int(bad[np.argmax(np.abs(steps[bad] - spacing))])
        gap = float(steps[j])
        missing = gap / spacing - 1
        hint = f" ({round(missing)} slice(s) missing?)" if missing > 0.5 else ""
        if not resample_nonuniform:
            raise DicomError(
                series,
                f"slice spacing is not uniform: a gap of {gap:.2f} mm between slices at "
                f"{d[j]:.2f} and {d[j + 1]:.2f} mm where the series' spacing is "
                f"{spacing:.2f} mm{hint}",
                "re-export the complete series, or pass --resample-nonuniform to interpolate "
                "it onto a uniform spacing",
            )
        n = int(math.floor((d[-1] - d[0]) / spacing + 0.5)) + 1
        targets = d[0] + spacing * np.arange(n)
        resampled = True
    # gantry tilt: the sideways part of each slice's offset from the first slice
    offsets = ipp - ipp[0] - np.outer(d - d[0], normal)
    span = d[-1] - d[0]
    tilt = math.degrees(math.atan2(float(np.linalg.norm(offsets[-1])), span)) if span else 0.0
    if tilt < TILT_MIN_DEG:
        tilt, shifts = 0.0, np.zeros((len(d), 2))
    else:
        shifts = np.stack([offsets @ col_dir / ps0[0], offsets @ row_dir / ps0[1]], axis=1)
    grid = SliceGrid(
        row_dir,
        col_dir,
        normal,
        (float(ps0[0]), float(ps0[1])),
        (rows, cols),
        ipp[0].copy(),
        d,
        tuple(str(headers[i].SOPInstanceUID) for i in order),
        shifts,
        targets,
        spacing,
        round(tilt, 3),
        resampled,
    )
    return grid, order

"""The phantom's drawing surface: paints implicit shapes with partial-volume edges.

A :class:`Canvas` holds the (x, y, z) RAS grid (mm coordinates of voxel centres), the noiseless
HU image, a texture-amplitude image, and two integer maps: the tissue painted last over each
voxel centre and the segmentation label owning it. Shapes are painted in anatomical order with
"over" compositing, so a later structure occludes an earlier one and labels stay disjoint.

Partial volume: for a field F (negative inside, ~mm) the covered fraction of a voxel is
``clip(0.5 - F / w, 0, 1)`` with ``w = sum_i |F(p + s_i e_i) - F(p)|`` the change of F across one
voxel along each axis. This is the exact volume fraction of a planar interface cutting the voxel
to first order (a linear ramp over the voxel's extent along the surface normal, which adapts to
anisotropic spacing), without supersampling. The label map uses F <= 0 (voxel centre inside).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synth_backend.phantom import shapes
from synth_backend.phantom.intensities import TISSUES, tissue_ids

Box = tuple[slice, slice, slice]


def coverage(field: np.ndarray) -> np.ndarray:
    """Fraction of each voxel inside the shape F <= 0 (see module docstring); float32 in [0, 1].

    Axes of length 1 (prism fields broadcast along z) contribute no variation.
    """
    w = np.zeros(field.shape, dtype=np.float32)
    for axis in range(field.ndim):
        if field.shape[axis] >= 2:
            w += np.abs(np.gradient(field, axis=axis))
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(w > 0, 0.5 - field / w, (field <= 0).astype(np.float32))
    return np.clip(frac, 0.0, 1.0).astype(np.float32)


class Canvas:
    """An (x, y, z) grid in the drawing frame (mm; x to the patient's left, y anterior, z
    superior) with voxel centres ``axes[i][k]``, painted in place."""

    def __init__(
        self,
        shape: Sequence[int],
        spacing: Sequence[float],
        origin: shapes.Vec,
        labels: Sequence[str],
    ):
        self.shape = tuple(int(s) for s in shape)
        self.spacing = tuple(float(s) for s in spacing)
        self.origin = tuple(float(o) for o in origin)
        self.axes = [
            np.float32(o) + np.float32(s) * np.arange(n, dtype=np.float32)
            for o, s, n in zip(self.origin, self.spacing, self.shape, strict=True)
        ]
        self.ct = np.full(self.shape, TISSUES["air"].hu, dtype=np.float32)
        self.texture = np.zeros(self.shape, dtype=np.float32)
        self.tissue = np.full(self.shape, tissue_ids()["air"], dtype=np.uint8)
        self.owner = np.zeros(self.shape, dtype=np.uint8)
        self.label_ids = {name: i + 1 for i, name in enumerate(labels)}
        self.fields: dict[str, tuple[Box, np.ndarray]] = {}
        # beyond this |F| (mm) every voxel is fully in or out: fields are clipped to it, which
        # lets sub-box evaluation (tubes) fill untouched voxels with a constant safely
        self.cap = float(sum(self.spacing))

    @property
    def affine(self) -> np.ndarray:
        """Voxel -> RAS+ mm. The drawing frame has x toward the patient's left (LAS), so the
        first axis is negated: the files are stored LAS, and read back as RAS by every loader."""
        aff = np.diag([-self.spacing[0], *self.spacing[1:], 1.0])
        aff[:3, 3] = [-self.origin[0], *self.origin[1:]]
        return aff

    def box(self, lo: shapes.Vec, hi: shapes.Vec, margin_vox: int = 2) -> Box | None:
        """Voxel box covering the world AABB [lo, hi] (mm) plus a margin; None if outside."""
        out = []
        for ax, lo_mm, hi_mm, o, s, n in zip(
            self.axes, lo, hi, self.origin, self.spacing, self.shape, strict=True
        ):
            del ax
            i0 = int(np.floor((lo_mm - o) / s)) - margin_vox
            i1 = int(np.ceil((hi_mm - o) / s)) + 1 + margin_vox
            i0, i1 = max(i0, 0), min(i1, n)
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)  # type: ignore[return-value]

    def full_box(self) -> Box:
        return tuple(slice(0, n) for n in self.shape)  # type: ignore[return-value]

    def grid(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable world coordinates (mm) of the voxel centres in ``box``."""
        x, y, z = (ax[sl] for ax, sl in zip(self.axes, box, strict=True))
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def clip(self, field: np.ndarray) -> np.ndarray:
        return np.clip(field, -self.cap, self.cap).astype(np.float32, copy=False)

    def tube(self, box: Box, points: np.ndarray, radii: shapes.Vec) -> np.ndarray:
        """Field of a tube through ``points`` (M, 3) mm with radius ``radii`` (M,), on ``box``.

        Each segment is evaluated only on its own sub-box, so long thin vessels stay cheap.
        """
        size = tuple(sl.stop - sl.start for sl in box)
        field = np.full(size, self.cap, dtype=np.float32)
        starts = np.array([sl.start for sl in box])
        for i in range(len(points) - 1):
            a, b = points[i], points[i + 1]
            r = max(radii[i], radii[i + 1]) + self.cap
            sub = self.box(np.minimum(a, b) - r, np.maximum(a, b) + r, margin_vox=1)
            if sub is None:
                continue
            local = tuple(
                slice(max(s.start, bs.start) - st, min(s.stop, bs.stop) - st)
                for s, bs, st in zip(sub, box, starts, strict=True)
            )
            if any(sl.stop <= sl.start for sl in local):
                continue
            world = tuple(
                slice(sl.start + st, sl.stop + st) for sl, st in zip(local, starts, strict=True)
            )
            X, Y, Z = self.grid(world)  # type: ignore[arg-type]
            seg = shapes.round_cone(X, Y, Z, a, b, radii[i], radii[i + 1])
            np.minimum(field[local], seg, out=field[local])
        return self.clip(field)

    def paint(
        self,
        box: Box | None,
        field: np.ndarray,
        tissue: str,
        label: str | None,
        *,
        keep: str | None = None,
    ) -> None:
        """Composite ``tissue`` over the image where F <= 0, with partial-volume edges.

        ``label`` is the segmentation that owns the covered voxels (None: unlabeled tissue,
        which clears earlier labels there). ``keep`` remembers the field under that name so a
        child structure can be clipped to it later (``field_of``).
        """
        if box is None:
            return
        field = self.clip(field)
        frac = coverage(field)
        t = TISSUES[tissue]
        ct, tex = self.ct[box], self.texture[box]
        ct += frac * (np.float32(t.hu) - ct)
        tex += frac * (np.float32(t.texture) - tex)
        inside = field <= 0
        np.copyto(self.tissue[box], np.uint8(tissue_ids()[tissue]), where=inside)
        np.copyto(self.owner[box], np.uint8(self.label_ids[label] if label else 0), where=inside)
        if keep:
            self.fields[keep] = (box, np.broadcast_to(field, ct.shape))

    def field_of(self, name: str) -> tuple[Box, np.ndarray]:
        return self.fields[name]

    def label_mask(self, name: str) -> np.ndarray:
        return self.owner == self.label_ids[name]

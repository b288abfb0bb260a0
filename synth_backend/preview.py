"""Preview image of a synthesis output: axial / coronal / sagittal slices through the tumor
centre with the tumor contour, drawn with NumPy + Pillow (no matplotlib needed).

Slices are shown in radiological display convention from the RAS (x, y, z) arrays: axial with
anterior up and patient right on the left of the image, coronal and sagittal with head up;
each panel is resized to square millimetres using the voxel spacing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from synth_backend.io import atomic_write, load_volume

WINDOW = (-160.0, 240.0)  # abdomen window (level 40, width 400)
CONTOUR_RGB = (255, 48, 48)
PANEL_MM_TO_PX = 2.0


def tumor_center(mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel of the largest tumor component's centre of mass (array centre for empty masks)."""
    if not mask.any():
        return tuple(int(s) // 2 for s in mask.shape)  # type: ignore[return-value]
    labels, n = ndimage.label(mask)
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    com = ndimage.center_of_mass(labels == largest)
    return tuple(int(round(c)) for c in com)  # type: ignore[return-value]


def _panel(ct2d: np.ndarray, mask2d: np.ndarray, px_mm: tuple[float, float]) -> np.ndarray:
    """RGB uint8 panel from a 2D slice (rows, cols) with the mask's outline drawn on top."""
    from PIL import Image

    lo, hi = WINDOW
    gray = (np.clip((ct2d - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    edge = mask2d & ~ndimage.binary_erosion(mask2d)
    rgb[edge] = CONTOUR_RGB
    rows, cols = ct2d.shape
    size = (
        max(1, int(round(cols * px_mm[1] * PANEL_MM_TO_PX))),
        max(1, int(round(rows * px_mm[0] * PANEL_MM_TO_PX))),
    )
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.NEAREST))


def render_preview(ct: np.ndarray, mask: np.ndarray, spacing, center=None) -> np.ndarray:
    """Three panels side by side (RGB uint8): axial, coronal, sagittal through ``center``."""
    cx, cy, cz = center if center is not None else tumor_center(mask)
    m = mask.astype(bool)
    sx, sy, sz = spacing
    # transpose/flip so rows run anterior->posterior (axial) or head->feet, cols right->left
    axial = (ct[::-1, :, cz].T[::-1], m[::-1, :, cz].T[::-1], (sy, sx))
    coronal = (ct[::-1, cy, :].T[::-1], m[::-1, cy, :].T[::-1], (sz, sx))
    sagittal = (ct[cx, :, :].T[::-1], m[cx, :, :].T[::-1], (sz, sy))
    panels = [_panel(*p) for p in (axial, coronal, sagittal)]
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 4), (0, 0))) for p in panels]
    return np.concatenate(padded, axis=1)


def write_preview(out_dir: str | Path, png: str | Path) -> Path:
    """Read ``DIR/ct.nii.gz`` + ``DIR/tumor_mask.nii.gz`` and write the preview PNG."""
    from PIL import Image

    out_dir = Path(out_dir)
    ct = load_volume(out_dir / "ct.nii.gz", "ct")
    mask = load_volume(out_dir / "tumor_mask.nii.gz", "mask")
    image = render_preview(ct.array, mask.array > 0, ct.spacing)
    return atomic_write(Path(png), lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))

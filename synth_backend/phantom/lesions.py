"""Reference *phantom lesions*: irregular blobs planted inside an organ of a phantom.

They give a demo study a "real" arm to compare synthetic tumors with. They are phantom lesions,
recorded with ``"kind": "phantom_lesion"``, never presented as real tumors. Appearance
(portal-venous phase): liver and pancreas lesions are hypo-attenuating (like hypovascular
metastases and pancreatic adenocarcinoma: 30-60 HU below parenchyma, fletcher2003); kidney
lesions are heterogeneous (enhancing solid parts ~150 HU mixed with low-attenuation necrotic or
cystic parts, like clear-cell renal cell carcinoma; yuh1999). Sampling is split from applying:
``sample_lesion`` -> :class:`LesionParams` (stored in cohort.json) -> ``apply_lesion``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from synth_backend.base import float3
from synth_backend.geometry import bounding_box
from synth_backend.phantom import shapes
from synth_backend.phantom.canvas import Canvas, coverage
from synth_backend.phantom.intensities import TISSUES
from synth_backend.phantom.noise import smooth_field

DIAMETER_MM = (10.0, 30.0)


@dataclass(frozen=True)
class LesionParams:
    """One planted lesion. Lengths in mm (world RAS), angles in degrees, HU offsets in HU."""

    organ: str  # liver | pancreas | kidney
    structure: str  # segmentation that holds it (kidney_left / kidney_right for kidney)
    center_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    rot_deg: tuple[float, float, float]
    lobulation: float  # surface displacement, fraction of the mean radius
    delta_hu: float  # how far below the parenchyma (liver, pancreas); unused for kidney
    seed: int  # texture and lobulation fields

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def sample_lesion(rng: np.random.Generator, organ: str, canvas: Canvas) -> LesionParams | None:
    """Pick a size (10-30 mm diameter, capped so it fits) and a centre deep enough in the organ.

    Returns None when the organ is missing or too thin for a 10 mm-ish lesion (< 3 mm deep).
    """
    if organ == "kidney":
        structure = str(rng.choice(["kidney_left", "kidney_right"]))
    elif organ in ("liver", "pancreas"):
        structure = organ
    else:
        raise ValueError(f"organ must be liver, pancreas or kidney, got {organ!r}")
    mask = canvas.label_mask(structure)
    if not mask.any():
        return None
    box = bounding_box(mask, margin=1)  # the distance transform only needs the organ's box
    depth = np.zeros(mask.shape, dtype=np.float64)
    depth[box] = ndimage.distance_transform_edt(mask[box], sampling=canvas.spacing)
    radius = min(rng.uniform(*DIAMETER_MM) / 2.0, 0.8 * float(depth.max()))
    if radius < 3.0:
        return None
    candidates = np.argwhere(depth >= 0.9 * radius)
    idx = candidates[rng.integers(len(candidates))]
    center = float3(ax[i] for ax, i in zip(canvas.axes, idx, strict=True))
    radii = float3(radius * rng.uniform(0.8, 1.2) for _ in range(3))
    return LesionParams(
        organ=organ,
        structure=structure,
        center_mm=center,
        radii_mm=radii,
        rot_deg=float3(rng.uniform(-90, 90, size=3)),
        lobulation=float(rng.uniform(0.08, 0.2)),
        delta_hu=float(rng.uniform(35.0, 60.0)),
        seed=int(rng.integers(2**31)),
    )


def apply_lesion(canvas: Canvas, p: LesionParams) -> np.ndarray:
    """Paint the lesion into ``canvas.ct`` (noiseless HU); return its mask (x, y, z) bool.

    The blob is an ellipsoid with a lobulated surface, clipped to its organ; the organ's
    segmentation keeps the lesion voxels (organ mask includes the tumor, as in IRCAD/AbdomenAtlas).
    """
    r_max = max(p.radii_mm) * (1.0 + p.lobulation) + 2.0
    box = canvas.box(np.subtract(p.center_mm, r_max), np.add(p.center_mm, r_max))
    out = np.zeros(canvas.shape, dtype=bool)
    if box is None:
        return out
    X, Y, Z = canvas.grid(box)
    mean_r = float(np.mean(p.radii_mm))
    rng = np.random.default_rng(p.seed)
    size = tuple(s.stop - s.start for s in box)
    lob = smooth_field(rng, size, canvas.spacing, mean_r / 2.5)
    field = shapes.ellipsoid(X, Y, Z, p.center_mm, p.radii_mm, shapes.rotation(*p.rot_deg))
    field = canvas.clip(field + p.lobulation * mean_r * lob)
    organ = canvas.owner[box] == canvas.label_ids[p.structure]
    frac = coverage(field) * organ
    tex = smooth_field(rng, size, canvas.spacing, 2.0)
    if p.organ == "kidney":
        # heterogeneous: enhancing solid parts (~150 HU) mixed with necrotic/cystic parts (~35)
        mix = smooth_field(rng, size, canvas.spacing, mean_r / 3.0)
        value = 92.0 + 58.0 * np.tanh(1.5 * mix) + 8.0 * tex
    else:
        base = TISSUES[p.organ].hu - p.delta_hu
        # slightly darker centre in larger lesions (less perfused core), own fine texture
        dist = np.clip(1.0 + field / mean_r, 0.0, 1.0)
        value = base - 12.0 * dist * (mean_r > 8.0) + 7.0 * tex
    ct = canvas.ct[box]
    ct += frac * (value.astype(np.float32) - ct)
    # the lesion carries its own texture: parenchymal texture is switched off inside it
    canvas.texture[box] *= 1.0 - frac
    out[box] = (field <= 0) & organ
    return out

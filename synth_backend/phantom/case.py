"""One phantom in memory: anatomy -> (optional) phantom lesion -> texture and CT noise.

``generate_case`` is pure given its seed: case i of a cohort uses
``numpy.random.SeedSequence(cohort_seed, spawn_key=(i,))`` (see ``case_seed``), whose three
children drive anatomy, lesion and noise separately, so planting a lesion changes neither the
anatomy nor the noise of that case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from synth_backend.geometry import equivalent_diameter_mm
from synth_backend.phantom.anatomy import sample_anatomy
from synth_backend.phantom.canvas import Canvas
from synth_backend.phantom.config import LESION_ORGANS, STRUCTURES, PhantomConfig
from synth_backend.phantom.draw import draw_anatomy
from synth_backend.phantom.intensities import TISSUES, tissue_ids
from synth_backend.phantom.lesions import apply_lesion, sample_lesion
from synth_backend.phantom.noise import ct_noise, smooth_field

HU_CLIP = (-1024.0, 3071.0)  # scanner range (12-bit)
TEXTURE_SIGMA_MM = 2.5


@dataclass
class PhantomCase:
    """A generated phantom. ``ct`` float32 HU and every mask are (x, y, z) on ``affine`` (RAS).

    ``labels`` maps structure name (``config.STRUCTURES``, plus ``<organ>_tumor`` when a lesion
    was planted) to a bool mask; ``tissue`` is the uint8 tissue-class map (``tissue_ids()``)
    used to measure HU per tissue; ``lesions`` are JSON-ready dicts (``kind: phantom_lesion``).
    """

    ct: np.ndarray
    labels: dict[str, np.ndarray]
    affine: np.ndarray
    tissue: np.ndarray
    lesions: list[dict] = field(default_factory=list)
    anatomy: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]


def case_seed(cohort_seed: int, index: int) -> np.random.SeedSequence:
    """Seed of case ``index`` of a cohort: independent of how many cases the cohort has."""
    return np.random.SeedSequence(int(cohort_seed), spawn_key=(int(index),))


def _streams(rng_or_seed) -> list[np.random.Generator]:
    if isinstance(rng_or_seed, np.random.Generator):
        return list(rng_or_seed.spawn(3))
    seq = (
        rng_or_seed
        if isinstance(rng_or_seed, np.random.SeedSequence)
        else np.random.SeedSequence(int(rng_or_seed))
    )
    return [np.random.default_rng(s) for s in seq.spawn(3)]


def make_canvas(config: PhantomConfig) -> Canvas:
    """Empty canvas whose grid is centred on the patient (voxel centres, RAS mm)."""
    fov = np.asarray(config.fov_mm())
    spacing = np.asarray(config.spacing)
    return Canvas(config.shape, config.spacing, -fov / 2 + spacing / 2, STRUCTURES)


def generate_case(
    rng_or_seed: int | np.random.SeedSequence | np.random.Generator,
    config: PhantomConfig | None = None,
    *,
    lesion: str | None = None,
) -> PhantomCase:
    """Generate one phantom in memory.

    ``lesion`` plants one phantom lesion in that organ (liver | pancreas | kidney) or none.
    Returns CT in float32 HU clipped to [-1024, 3071] (the int16 file is its rounding).
    """
    config = config or PhantomConfig()
    if lesion is not None and lesion not in LESION_ORGANS:
        raise ValueError(f"lesion must be one of {LESION_ORGANS} or None, got {lesion!r}")
    rng_anatomy, rng_lesion, rng_noise = _streams(rng_or_seed)
    anatomy = sample_anatomy(rng_anatomy)
    canvas = make_canvas(config)
    body = draw_anatomy(canvas, anatomy)
    labels = {name: canvas.label_mask(name) for name in STRUCTURES if name != "body"}
    labels["body"] = body
    lesions: list[dict] = []
    if lesion is not None:
        params = sample_lesion(rng_lesion, lesion, canvas)
        if params is not None:
            mask = apply_lesion(canvas, params)
            if mask.any():
                labels[f"{lesion}_tumor"] = mask
                lesions.append({"kind": "phantom_lesion", **params.to_dict()})
    # noise stream order is fixed (texture, level, noise) whatever happened above
    texture = smooth_field(rng_noise, config.shape, config.spacing, TEXTURE_SIGMA_MM)
    noise_std = float(rng_noise.uniform(*config.noise_std_hu))
    noise = ct_noise(
        rng_noise,
        config.shape,
        config.spacing,
        std_hu=noise_std,
        peak_mm=config.noise_peak_mm,
        z_mm=config.noise_z_mm,
    )
    ct = canvas.ct + canvas.texture * texture + noise
    np.clip(ct, *HU_CLIP, out=ct)
    for les in lesions:
        mask = labels[f"{les['organ']}_tumor"]
        les["voxels"] = int(mask.sum())
        les["center_voxel"] = [int(round(float(v))) for v in np.argwhere(mask).mean(axis=0)]
        les["equivalent_diameter_mm"] = round(
            equivalent_diameter_mm(int(mask.sum()), config.spacing), 2
        )
        les["mean_hu"] = round(float(ct[mask].mean()), 1)
    info = {"noise_std_hu": round(noise_std, 2)}
    return PhantomCase(
        ct=ct,
        labels=labels,
        affine=canvas.affine,
        tissue=canvas.tissue,
        lesions=lesions,
        anatomy=anatomy,
        info=info,
    )


def _pure(label_map: np.ndarray) -> np.ndarray:
    """Voxels whose 3x3x3 neighbourhood has one label: free of partial volume."""
    return ndimage.minimum_filter(label_map, 3) == ndimage.maximum_filter(label_map, 3)


def measure_hu(case: PhantomCase) -> dict:
    """Mean/std HU per tissue class and per structure, on partial-volume-free voxels.

    Returns ``{"tissues": {name: {mean, std, n, table_hu}}, "structures": {...}}``; classes
    with fewer than 20 such voxels are left out. Structures include their vessels/medulla.
    """
    out: dict[str, dict] = {"tissues": {}, "structures": {}}
    pure = _pure(case.tissue)
    for name, mask in case.labels.items():
        if name.endswith("_tumor"):  # lesions repaint HU without changing the tissue map
            pure &= ~ndimage.binary_dilation(mask)
    for name, tid in tissue_ids().items():
        values = case.ct[pure & (case.tissue == tid)]
        if values.size >= 20:
            out["tissues"][name] = {
                "mean": round(float(values.mean()), 1),
                "std": round(float(values.std()), 1),
                "n": int(values.size),
                "table_hu": TISSUES[name].hu,
            }
    for name, mask in case.labels.items():
        inner = ndimage.binary_erosion(mask)
        values = case.ct[inner]
        if values.size >= 20:
            out["structures"][name] = {
                "mean": round(float(values.mean()), 1),
                "std": round(float(values.std()), 1),
                "n": int(values.size),
            }
    return out

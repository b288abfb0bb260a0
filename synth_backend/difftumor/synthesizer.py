"""DiffTumor as a :class:`Synthesizer`: ellipsoid mask -> latent diffusion -> blended paste.

Pipeline on a full volume (any spacing): pick a centre in the organ (seeded, reference rule),
resample a ``P``^3 neighbourhood to 1 mm, draw the stage's ellipsoid masks inside the organ,
denoise the tumor latent conditioned on the masked patch, decode, blend per organ and paste the
difference back onto the input grid. Blending (reference): liver / kidney alpha-blend with the
mask blurred by sigma ~ U(0, 4) mm; pancreas replaces the patch — restricted here to the
organ's 5 mm neighbourhood, because outside the HU window the decoder cannot reproduce the
input (air, bone) and a whole-patch replacement would erase them from an HU volume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from synth_backend.autoencoder.model import hu_to_unit, unit_to_hu
from synth_backend.autoencoder.patching import (
    PatchGrid,
    check_inputs,
    choose_center,
    paste_difference,
    patch_mask_to_input,
)
from synth_backend.base import SynthesisResult, float3, int3, resolve_device
from synth_backend.difftumor.sample import DiffTumorModel, sample_patch
from synth_backend.elastic import sample_sigma
from synth_backend.errors import SynthesisInputError
from synth_backend.masks import (
    SIZE_RADIUS_MM,
    STAGES,
    TumorSpec,
    draw_tumor_mask,
    sample_tumor_specs,
    stage_for_radius,
)
from synth_backend.training.learned import CheckpointSynthesizer

AIR_HU = -1024.0


def blend_alpha(tumor: np.ndarray, organ: np.ndarray, organ_name: str, sigma: float) -> np.ndarray:
    """Per-organ blending weight on the 1 mm patch (float32 in [0, 1])."""
    if organ_name == "pancreas":
        near = ndimage.binary_dilation(organ, iterations=5)
        return ndimage.gaussian_filter(near.astype(np.float32), 1.0)
    alpha = tumor.astype(np.float32)
    return ndimage.gaussian_filter(alpha, sigma) if sigma > 0 else alpha


def requested_tumor(
    rng: np.random.Generator, *, size: str | None, diameter_mm: float | None
) -> tuple[str, np.ndarray, str] | None:
    """(stage, base radii in mm (3,), size class) of one tumor asked for by ``size`` or
    ``diameter_mm``; None when neither is given (the stage's own random mix is used).

    ``size``: radii ``SIZE_RADIUS_MM[size] * U(0.75, 1.25)`` per axis (the reference classes);
    ``diameter_mm``: radii ``diameter / 2 * U(0.9, 1.1)``. The stage follows DiffTumor's split on
    the equivalent radius (<= 10 mm early, <= 20 mm medium, else large).
    """
    if size is None and diameter_mm is None:
        return None
    if size is not None:
        if size not in SIZE_RADIUS_MM:
            raise SynthesisInputError(
                None,
                f"size must be one of {list(SIZE_RADIUS_MM)}, got {size!r}",
                "pass --size tiny|small|medium|large",
            )
        radii = SIZE_RADIUS_MM[size] * rng.uniform(0.75, 1.25, size=3)
    else:
        if not diameter_mm or diameter_mm <= 0:
            raise SynthesisInputError(
                None, f"diameter_mm must be > 0, got {diameter_mm}", "pass a positive --diameter-mm"
            )
        radii = diameter_mm / 2.0 * rng.uniform(0.9, 1.1, size=3)
    radius = float(np.prod(radii) ** (1.0 / 3.0))
    size_class = size or min(SIZE_RADIUS_MM, key=lambda k: abs(SIZE_RADIUS_MM[k] - radius))
    return stage_for_radius(radius), radii, size_class


def _check_stage(requested: str, model_stage: str, checkpoint) -> None:
    """DiffTumor trains one model per stage; asking one for the other's sizes is refused."""
    fits = (requested == "early") == (model_stage == "early")
    if not fits:
        hint = (
            "pass --size tiny|small or --diameter-mm <= 20"
            if model_stage == "early"
            else "pass --size medium|large or --diameter-mm > 20"
        )
        raise SynthesisInputError(
            None,
            f"a {requested} tumor needs a DiffTumor "
            f"{'early' if requested == 'early' else 'late'}-stage checkpoint, but {checkpoint} "
            f"is the {model_stage}-stage model",
            f"{hint}, or train the other stage (`turingct train difftumor --set stage="
            f"{'early' if requested == 'early' else 'late'} ...`, see "
            "docs/synthesis-generative.md)",
        )


@dataclass(frozen=True)
class DiffTumorParams:
    """One DiffTumor lesion patch, every draw made: the patch centre (input voxel), the
    ellipsoids on the 1 mm patch, the blend sigma and the seed of the torch generator that
    drives the sampler's noise. ``to_dict`` is the provenance ``params``."""

    seed: int
    stage: str
    center_voxel: tuple[int, int, int]
    patch_size: int
    tumors: tuple[TumorSpec, ...]
    blend_sigma_mm: float
    torch_seed: int
    organ: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": int(self.seed),
            "stage": self.stage,
            "center_voxel": [int(c) for c in self.center_voxel],
            "patch_size": int(self.patch_size),
            "tumors": [s.to_dict() for s in self.tumors],
            "blend_sigma_mm": float(self.blend_sigma_mm),
            "torch_seed": int(self.torch_seed),
            "organ": self.organ,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffTumorParams:
        if "organ" not in data:
            raise SynthesisInputError(
                None,
                "DiffTumor params without 'organ' cannot be "
                "replayed (recorded before the organ was stored)",
                "add the provenance's top-level organ to its params",
            )
        tumors = tuple(
            TumorSpec(
                center=int3(t["center"]),
                radii=float3(t["radii"]),
                elastic_sigma=float(t["elastic_sigma"]),
                deform_seed=int(t["deform_seed"]),
            )
            for t in data["tumors"]
        )
        return cls(
            seed=int(data["seed"]),
            stage=str(data["stage"]),
            center_voxel=int3(data["center_voxel"]),
            patch_size=int(data["patch_size"]),
            tumors=tumors,
            blend_sigma_mm=float(data["blend_sigma_mm"]),
            torch_seed=int(data["torch_seed"]),
            organ=str(data["organ"]),
        )


def _patch(
    ct: np.ndarray,
    organ_bool: np.ndarray,
    spacing: tuple[float, float, float],
    center: tuple[int, int, int],
    p: int,
) -> tuple[PatchGrid, np.ndarray, np.ndarray]:
    """The 1 mm patch around ``center``: (grid, CT patch in HU, organ patch as bool)."""
    grid = PatchGrid.centred(center, spacing, p)
    ct_p = grid.extract(ct, order=1, fill=AIR_HU)
    organ_p = grid.extract(organ_bool.astype(np.float32), order=1, fill=0.0) >= 0.5
    return grid, ct_p, organ_p


class DiffTumorSynthesizer(CheckpointSynthesizer):
    """Latent-diffusion tumors (early model: 4 DDPM steps; late model: DDIM).

    ``options``: ``stage`` (early | medium | large, default from the checkpoint: early ->
    early, late -> medium or large with p = 0.5), or one tumor of a ``size`` class (tiny |
    small | medium | large) or ``diameter_mm``; a size outside the checkpoint's stage (early:
    radius <= 10 mm) raises :class:`SynthesisInputError`. ``n_tumors``: exactly this many
    lesions (each its own patch; default: one with a size or diameter, else the stage's own
    count). With the shipped weights a medium/large request uses the shipped late model.
    """

    name = "difftumor"
    model_class = DiffTumorModel
    params_class = DiffTumorParams

    def _use_shipped_stage(self, stage: str) -> None:
        """With the shipped weights, medium/large tumors come from the shipped late model (one
        checkpoint per stage, as the reference); the provenance hash follows the switch."""
        if self.default_organ is None:
            return
        from synth_backend.weights import stage_checkpoint

        path = stage_checkpoint("difftumor", "early" if stage == "early" else "late")
        if path is not None and path != self.checkpoint:
            self.checkpoint, self._hash = path, None

    def sample_lesion(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        single: bool,
        **options: Any,
    ) -> DiffTumorParams:
        """Every draw of one call: stage, patch centre, ellipsoids, blend sigma, torch seed
        (in the order the reference code drew them, so a seed keeps its volume)."""
        organ_bool = check_inputs(ct, organ_mask, organ, spacing)
        self.check_organ(organ)
        rng = np.random.default_rng(seed)
        stage = options.pop("stage", None)
        request = requested_tumor(
            rng, size=options.pop("size", None), diameter_mm=options.pop("diameter_mm", None)
        )
        if options:
            raise SynthesisInputError(
                None,
                f"unknown difftumor options {sorted(options)}",
                "valid: stage, size, diameter_mm, n_tumors",
            )
        if request is not None:
            stage = request[0]
        if stage is not None and stage not in STAGES:
            raise SynthesisInputError(
                None,
                f"stage must be one of {list(STAGES)}, got {stage!r}",
                "pass stage early|medium|large",
            )
        if stage is not None:
            self._use_shipped_stage(stage)
        cfg, ae_cfg = self.config()
        if stage is not None:
            _check_stage(stage, cfg["stage"], self.checkpoint)
        stage = stage or (
            "early" if cfg["stage"] == "early" else ("medium" if rng.random() < 0.5 else "large")
        )
        p = int(ae_cfg["patch_size"])
        center = int3(choose_center(organ_bool, spacing, rng))
        _, _, organ_p = _patch(ct, organ_bool, spacing, center, p)
        central = np.zeros_like(organ_p)
        central[(slice(p // 4, p - p // 4),) * 3] = True
        candidates = organ_p & central if (organ_p & central).any() else organ_p
        if not candidates.any():  # an organ thinner than one resampled voxel
            candidates = central
        if request is None:
            specs = sample_tumor_specs(rng, candidates, stage=stage, max_radius_mm=p / 2 - 2)
            specs = specs[:1] if single else specs
        else:
            specs = [_one_spec(rng, candidates, request[1], request[2], p / 2 - 2)]
        sigma = float(rng.uniform(0.0, 4.0))
        torch_seed = int(rng.integers(2**62))
        return DiffTumorParams(
            seed=int(seed),
            stage=stage,
            center_voxel=center,
            patch_size=p,
            tumors=tuple(specs),
            blend_sigma_mm=sigma,
            torch_seed=torch_seed,
            organ=organ,
        )

    def apply_lesion(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: DiffTumorParams,
        device: str,
    ) -> SynthesisResult:
        """Denoise and paste the lesion of ``params``; the sampler's noise comes only from
        ``params.torch_seed``, so the same params give the same volume on one device."""
        t0 = time.perf_counter()
        organ_bool = check_inputs(ct, organ_mask, params.organ, spacing)
        device = resolve_device(device)
        self._use_shipped_stage(params.stage)
        model = self.model(device)
        _check_stage(params.stage, model.cfg["stage"], self.checkpoint)
        p = params.patch_size
        grid, ct_p, organ_p = _patch(ct, organ_bool, spacing, params.center_voxel, p)
        specs = list(params.tumors)
        tumor_p = draw_tumor_mask(organ_p.shape, specs, organ_p)
        if not tumor_p.any():
            tumor_p = draw_tumor_mask(organ_p.shape, specs, None) & ndimage.binary_dilation(
                organ_p, iterations=2
            )
        gen = torch.Generator(device=device)
        gen.manual_seed(params.torch_seed)
        x = torch.from_numpy(hu_to_unit(ct_p, model.window)[None, None]).to(device)
        m = torch.from_numpy(tumor_p.astype(np.float32)[None, None]).to(device)
        t1 = time.perf_counter()
        out, steps = sample_patch(model, x, m, gen)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t_model = time.perf_counter() - t1
        gen_hu = unit_to_hu(out[0, 0].float().cpu().numpy(), model.window)
        alpha = blend_alpha(tumor_p, organ_p, params.organ, params.blend_sigma_mm)
        new_ct = paste_difference(ct, grid, alpha * (gen_hu - ct_p))
        tumor = patch_mask_to_input(ct.shape, grid, tumor_p) & organ_bool
        info = {
            "device": device,
            "sampling_steps": steps,
            "sampler": "DDPM" if model.cfg["stage"] == "early" else "DDIM",
            "num_train_timesteps": int(model.cfg["num_train_timesteps"]),
            "checkpoint_step": model.step,
            "model_seconds": t_model,
            "seconds": time.perf_counter() - t0,
            "tumor_voxels": int(tumor.sum()),
        }
        return SynthesisResult(new_ct, tumor.astype(np.uint8), params.to_dict(), info)


def _one_spec(
    rng: np.random.Generator,
    candidates: np.ndarray,
    radii: np.ndarray,
    size_class: str,
    max_radius_mm: float,
) -> TumorSpec:
    """One ellipsoid (radii in mm, capped to the patch) centred on a ``candidates`` voxel."""
    coords = np.argwhere(candidates)
    centre = coords[int(rng.integers(len(coords)))]
    return TumorSpec(
        center=int3(centre),
        radii=float3(np.minimum(radii, max_radius_mm)),
        elastic_sigma=sample_sigma(rng, size_class),
        deform_seed=int(rng.integers(2**31 - 1)),
    )

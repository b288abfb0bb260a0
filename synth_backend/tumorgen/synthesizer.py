"""TumorGen as a :class:`Synthesizer`: a rough box in the organ -> tumor image and mask.

Per call: pick a centre in the organ (seeded, reference rule) or take the caller's box, cut
the 1 mm ``P``^3 patch, put a box of the sampled size class on the latent grid, integrate the
flow (10 Euler steps by default), decode, refine the mask (VMR) and paste. Only the tumor and
a 3 mm rim around it are pasted (alpha = blurred dilated refined mask, inside the box), so
healthy tissue keeps its input voxels; the rim carries the synthesized boundary transition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from core.vocabulary import SIZES
from synth_backend.autoencoder.model import hu_to_unit, unit_to_hu
from synth_backend.autoencoder.patching import (
    PatchGrid,
    check_inputs,
    choose_center,
    paste_difference,
    patch_mask_to_input,
)
from synth_backend.base import SynthesisResult, float3, int3, resolve_device
from synth_backend.errors import SynthesisInputError
from synth_backend.masks import SIZE_RADIUS_MM
from synth_backend.training.learned import CheckpointSynthesizer
from synth_backend.tumorgen.boxes import box_tensor, upsample_box
from synth_backend.tumorgen.sample import TumorGenModel, sample_patch
from synth_backend.tumorgen.train import trained_sizes

AIR_HU = -1024.0


def latent_box(center_mm: np.ndarray, half_mm: np.ndarray, patch: int) -> np.ndarray:
    """Inclusive latent-grid bounds (2, 3) of a box on the 1 mm patch (4 mm per latent voxel)."""
    lo = np.floor((center_mm - half_mm) / 4.0).astype(int)
    hi = np.floor((center_mm + half_mm) / 4.0).astype(int)
    n = patch // 4
    return np.stack([np.clip(lo, 0, n - 1), np.clip(hi, 0, n - 1)])


@dataclass(frozen=True)
class TumorGenParams:
    """One TumorGen lesion patch, every draw made: the patch centre (input voxel, fractional
    for a caller's box), the box on the latent grid and the seed of the torch generator that
    draws the flow's starting noise. ``to_dict`` is the provenance ``params``."""

    seed: int
    size: str | None
    diameter_mm: float | None
    center_voxel: tuple[float, float, float]
    box_half_mm: tuple[float, float, float]
    latent_box: tuple[tuple[int, int, int], tuple[int, int, int]]
    patch_size: int
    torch_seed: int
    box: list[list[Any]] | None  # the caller's box, as given
    steps: int
    organ: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": int(self.seed),
            "size": self.size,
            "diameter_mm": self.diameter_mm,
            "center_voxel": [float(c) for c in self.center_voxel],
            "box_half_mm": [float(h) for h in self.box_half_mm],
            "latent_box": [[int(v) for v in row] for row in self.latent_box],
            "patch_size": int(self.patch_size),
            "torch_seed": int(self.torch_seed),
            "box": self.box,
            "steps": int(self.steps),
            "organ": self.organ,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TumorGenParams:
        missing = {"steps", "organ"} - set(data)
        if missing:
            raise SynthesisInputError(
                None,
                f"TumorGen params without {sorted(missing)} cannot "
                "be replayed (recorded before they were stored)",
                "add the provenance's organ and sampling_steps to them",
            )
        lo, hi = data["latent_box"]
        return cls(
            seed=int(data["seed"]),
            size=data["size"],
            diameter_mm=data["diameter_mm"],
            center_voxel=float3(data["center_voxel"]),
            box_half_mm=float3(data["box_half_mm"]),
            latent_box=(int3(lo), int3(hi)),
            patch_size=int(data["patch_size"]),
            torch_seed=int(data["torch_seed"]),
            box=data["box"],
            steps=int(data["steps"]),
            organ=str(data["organ"]),
        )


class TumorGenSynthesizer(CheckpointSynthesizer):
    """Rectified-flow tumors with jointly generated masks (TumorGen, Liu et al.).

    Options: ``size`` (one of the classes the checkpoint was trained on, recorded as ``sizes``
    in its config; default: uniform over them), ``diameter_mm`` (a box of half-size
    ``diameter / 2 * (1 + box_alpha)`` per axis: the BA-PMG training boxes exceed the tumor by
    U(0, alpha) of its extent on each side), ``steps`` (Euler steps, default from the
    checkpoint: 10), ``box`` (input-voxel bounds ``[[x0, x1], [y0, y1], [z0, z1]]``,
    inclusive; default: sampled in the organ), ``n_tumors`` (lesions, each its own patch;
    default 1).
    """

    name = "tumorgen"
    model_class = TumorGenModel
    params_class = TumorGenParams

    def synthesize(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        device: str = "auto",
        **options: Any,
    ) -> SynthesisResult:
        n_tumors = options.get("n_tumors")
        if n_tumors is not None and int(n_tumors) != 1 and options.get("box") is not None:
            raise SynthesisInputError(
                None,
                f"box places one tumor; it cannot be combined with n_tumors={n_tumors}",
                "drop --n-tumors or the box",
            )
        return super().synthesize(
            ct, organ_mask, organ=organ, spacing=spacing, seed=seed, device=device, **options
        )

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
    ) -> TumorGenParams:
        """Every draw of one call: size class, patch centre, box size, torch seed."""
        organ_bool = check_inputs(ct, organ_mask, organ, spacing)
        self.check_organ(organ)
        cfg, ae_cfg = self.config()
        rng = np.random.default_rng(seed)
        diameter = options.pop("diameter_mm", None)
        size = options.pop("size", None)
        if size is not None and size not in SIZES:
            raise SynthesisInputError(
                None,
                f"size must be one of {list(SIZES)}, got {size!r}",
                "pass --size tiny|small|medium|large",
            )
        if diameter is not None and not diameter > 0:
            raise SynthesisInputError(
                None, f"diameter_mm must be > 0, got {diameter}", "pass a positive --diameter-mm"
            )
        trained = trained_sizes(cfg)
        if size is not None and size not in trained:
            raise SynthesisInputError(
                None,
                f"{self.checkpoint} was trained on {list(trained)} tumors only, not {size!r}",
                f"pass --size {'|'.join(trained)}, or train TumorGen with "
                f"`--set sizes=[{', '.join(SIZES)}]` (see docs/synthesis-generative.md)",
            )
        if size is None and diameter is None:
            size = trained[int(rng.integers(len(trained)))]
        steps = int(options.pop("steps", None) or cfg["sample_steps"])
        user_box = options.pop("box", None)
        if options:
            raise SynthesisInputError(
                None,
                f"unknown tumorgen options {sorted(options)}",
                "valid: size, diameter_mm, steps, box, n_tumors",
            )
        p = int(ae_cfg["patch_size"])
        sp = np.asarray(spacing, dtype=float)
        if user_box is not None:
            bounds = np.asarray(user_box, dtype=float).reshape(3, 2)
            center = bounds.mean(axis=1)
            half_mm = (bounds[:, 1] - bounds[:, 0] + 1) * sp / 2.0
        elif diameter is not None:
            center = choose_center(organ_bool, spacing, rng).astype(float)
            half_mm = np.full(3, float(diameter) / 2.0 * (1.0 + float(cfg["box_alpha"])))
        else:
            center = choose_center(organ_bool, spacing, rng).astype(float)
            half_mm = SIZE_RADIUS_MM[size] * rng.uniform(0.75, 1.25, size=3)
        half_mm = np.minimum(half_mm, p / 2 - 2)
        lat = latent_box(np.full(3, (p - 1) / 2.0), half_mm, p)
        torch_seed = int(rng.integers(2**62))
        return TumorGenParams(
            seed=int(seed),
            size=size,
            diameter_mm=diameter,
            center_voxel=float3(center),
            box_half_mm=float3(half_mm),
            latent_box=(int3(lat[0]), int3(lat[1])),
            patch_size=p,
            torch_seed=torch_seed,
            box=None if user_box is None else np.asarray(user_box).tolist(),
            steps=steps,
            organ=organ,
        )

    def apply_lesion(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: TumorGenParams,
        device: str,
    ) -> SynthesisResult:
        """Integrate the flow in ``params``' box and paste; the starting noise comes only from
        ``params.torch_seed``, so the same params give the same volume on one device."""
        t0 = time.perf_counter()
        organ_bool = check_inputs(ct, organ_mask, params.organ, spacing)
        device = resolve_device(device)
        model = self.model(device)
        p = params.patch_size
        grid = PatchGrid.centred(params.center_voxel, spacing, p)
        ct_p = grid.extract(ct, order=1, fill=AIR_HU)
        organ_p = grid.extract(organ_bool.astype(np.float32), order=1, fill=0.0) >= 0.5
        lo, hi = params.latent_box
        box = torch.from_numpy(box_tensor(lo, hi, (p // 4,) * 3)[None, None]).to(device)
        gen = torch.Generator(device=device)
        gen.manual_seed(params.torch_seed)
        x = torch.from_numpy(hu_to_unit(ct_p, model.window)[None, None]).to(device)
        t1 = time.perf_counter()
        image, refined, _ = sample_patch(model, x, box, gen, params.steps)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t_model = time.perf_counter() - t1
        box_full = upsample_box(box)[0, 0].cpu().numpy() > 0.5
        # sample_patch already zeroes the refined mask outside the box; the organ is ours
        tumor_p = (refined[0, 0].cpu().numpy() >= 0.5) & organ_p
        gen_hu = unit_to_hu(image[0, 0].float().cpu().numpy(), model.window)
        rim = ndimage.binary_dilation(tumor_p, iterations=3) & box_full
        alpha = ndimage.gaussian_filter(rim.astype(np.float32), 1.0) * rim
        new_ct = paste_difference(ct, grid, alpha * (gen_hu - ct_p))
        tumor = patch_mask_to_input(ct.shape, grid, tumor_p) & organ_bool
        info = {
            "device": device,
            "sampling_steps": params.steps,
            "sampler": "RFM-Euler",
            "checkpoint_step": model.step,
            "model_seconds": t_model,
            "seconds": time.perf_counter() - t0,
            "tumor_voxels": int(tumor.sum()),
        }
        return SynthesisResult(new_ct, tumor.astype(np.uint8), params.to_dict(), info)

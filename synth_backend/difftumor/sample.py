"""Sampling a DiffTumor patch: denoise the tumor latent given the masked context, then decode."""

from __future__ import annotations

from pathlib import Path

import torch

from synth_backend.difftumor.model import build_unet, condition, make_scheduler
from synth_backend.training.learned import LoadedModel


class DiffTumorModel(LoadedModel):
    """A loaded DiffTumor checkpoint: autoencoder + denoising U-Net (``net``), eval mode."""

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> DiffTumorModel:
        return cls.from_checkpoint(
            path,
            "difftumor",
            device,
            lambda p: build_unet(
                p["config"]["model"], int(p["autoencoder"]["config"]["model"]["latent_channels"])
            ),
        )


@torch.no_grad()
def sample_patch(
    model: DiffTumorModel, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Generate a tumor patch.

    ``x`` is the healthy patch in [-1, 1] and ``mask`` the tumor mask, both (B, 1, P, P, P) on
    the model's device; ``generator`` (same device) drives every random draw. Returns the
    decoded patch in [-1, 1] (same shape) and the number of denoising steps run.
    """
    cond = condition(model.ae, x, mask, model.scale)
    c = int(model.ae_cfg["model"]["latent_channels"])
    z, steps = denoise(model, cond, c, generator)
    return model.ae.decode(z / model.scale).clamp(-1.0, 1.0), steps


@torch.no_grad()
def denoise(
    model, cond: torch.Tensor, latent_channels: int, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Run the stage's sampler from N(0, I) on the latent grid of ``cond``; returns the clean
    latent (scaled units) and the step count. ``model`` needs ``net``, ``cfg`` and
    ``latent_range`` (x0 is clamped to it at every step, see :func:`make_scheduler`)."""
    scheduler = make_scheduler(model.cfg, sampling=True, latent_range=model.latent_range)
    b = cond.shape[0]
    z = torch.randn((b, latent_channels, *cond.shape[2:]), generator=generator, device=cond.device)
    steps = 0
    for t in scheduler.timesteps:
        tt = torch.full((b,), int(t), device=cond.device, dtype=torch.long)
        eps = model.net(torch.cat([z, cond], dim=1), timesteps=tt)
        if model.cfg["stage"] == "early":
            z, _ = scheduler.step(eps, int(t), z, generator=generator)
        else:
            z, _ = scheduler.step(eps, int(t), z, eta=0.0, generator=generator)
        steps += 1
    return z, steps

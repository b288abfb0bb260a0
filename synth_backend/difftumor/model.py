"""DiffTumor's denoiser and noise schedules on the autoencoder's latent grid.

Conditioning by concatenation (spec): input = noisy latent (C) + latent of the masked image
``x * (1 - mask)`` (C) + tumor mask on the latent grid (1), output = predicted noise (C).
The early-tumor model uses T = 4 and is sampled with all 4 DDPM steps; the mid/late model
uses a longer cosine schedule (T = 200) sampled with DDIM.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler


def build_unet(model_cfg: dict[str, Any], latent_channels: int) -> DiffusionModelUNet:
    """The 3D denoiser: in = 2 * latent_channels + 1, out = latent_channels."""
    channels = tuple(int(c) for c in model_cfg["channels"])
    attention = bool(model_cfg.get("attention", False))
    return DiffusionModelUNet(
        spatial_dims=3,
        in_channels=2 * latent_channels + 1,
        out_channels=latent_channels,
        channels=channels,
        num_res_blocks=int(model_cfg["num_res_blocks"]),
        attention_levels=(False,) * (len(channels) - 1) + (attention,),
        norm_num_groups=int(model_cfg["norm_num_groups"]),
        num_head_channels=int(model_cfg.get("num_head_channels", 8)),
    )


def cosine_betas(
    num_train_timesteps: int, max_beta: float = 0.9999, s: float = 8e-3
) -> torch.Tensor:
    """Nichol & Dhariwal cosine betas clipped at ``max_beta`` (the reference uses 0.9999;
    MONAI's built-in "cosine" clips at 0.999). For T = 4: 0.153, 0.417, 0.708, 0.9999."""
    f = [
        math.cos((i / num_train_timesteps + s) / (1 + s) * math.pi / 2) ** 2
        for i in range(num_train_timesteps + 1)
    ]
    betas = [min(1.0 - f[i + 1] / f[i], max_beta) for i in range(num_train_timesteps)]
    return torch.tensor(betas, dtype=torch.float32)


def _set_betas(scheduler, betas: torch.Tensor):
    scheduler.betas = betas
    scheduler.alphas = 1.0 - betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, dim=0)
    return scheduler


# Fallback x0 clamp for checkpoints written before the latent range was recorded: latents are
# scaled to unit variance, so +-4 std holds practically all of them.
DEFAULT_LATENT_RANGE = (-4.0, 4.0)


def make_scheduler(
    cfg: dict[str, Any], *, sampling: bool = False, latent_range: tuple[float, float] | None = None
):
    """The noise scheduler of a DiffTumor config (``stage``, ``num_train_timesteps``, ...).

    Training always uses DDPM's forward process. For sampling, the early model (``stage ==
    "early"``) keeps DDPM with all T steps: MONAI's ``DDPMScheduler.step`` always moves to
    t - 1, so it must be *built* with ``num_train_timesteps = T`` rather than skipping steps.
    The late model samples with DDIM ``ddim_steps`` steps.

    Sampling clamps the predicted clean latent x0 to ``latent_range`` at every step (the
    reference's ``clip_denoised=True``). Without it a noise-prediction error is amplified by
    sqrt(1 / alpha_bar_t) - about 100x at the first T=4 step and about 400x for T=200 - and
    the decoded tumor drifts to -180 HU holes.
    """
    T = int(cfg["num_train_timesteps"])
    betas = cosine_betas(T, float(cfg["max_beta"]))
    lo, hi = (float(v) for v in (latent_range or DEFAULT_LATENT_RANGE))
    clip: dict[str, Any] = {"clip_sample": sampling, "clip_sample_min": lo, "clip_sample_max": hi}
    if sampling and cfg["stage"] != "early":
        sched = _set_betas(DDIMScheduler(num_train_timesteps=T, **clip), betas)
        sched.set_timesteps(min(int(cfg["ddim_steps"]), T))
        return sched
    sched = _set_betas(DDPMScheduler(num_train_timesteps=T, **clip), betas)
    sched.set_timesteps(T)
    return sched


def latent_mask(mask: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Tumor mask (B, 1, P, P, P) -> fraction of tumor voxels per latent voxel (B, 1, P/4, ...)."""
    return torch.nn.functional.avg_pool3d(mask.float(), kernel_size=factor, stride=factor)


def condition(ae, x: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """[latent of x * (1 - mask), mask on the latent grid]: (B, C + 1, P/4, P/4, P/4)."""
    z_masked = ae.encode(x * (1.0 - mask))[0] * scale
    return torch.cat([z_masked, latent_mask(mask)], dim=1)

"""Train the AutoencoderKL: L1 reconstruction + KL (perceptual / adversarial optional, off in tiny).

Why a KL autoencoder rather than the reference VQ-GAN is argued in docs/synthesis-generative.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from synth_backend.autoencoder.model import build_autoencoder, hu_to_unit
from synth_backend.training.config import ConfigError
from synth_backend.training.data import CACHE_DIR, Case, PatchSampler, data_hashes
from synth_backend.training.loop import Trainer, seeded_init


def kl_loss(z_mu: torch.Tensor, z_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, 1)) summed over latent voxels, averaged over the batch."""
    kl = 0.5 * (z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2) + 1e-12) - 1.0)
    return kl.flatten(1).sum(1).mean()


def autoencoder_step(
    ae, x: torch.Tensor, generator: torch.Generator, kl_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """One loss evaluation on a batch ``x`` in [-1, 1], shape (B, 1, P, P, P)."""
    z_mu, z_sigma = ae.encode(x)
    eps = torch.randn(z_mu.shape, generator=generator, device=z_mu.device, dtype=z_mu.dtype)
    recon = ae.decode(z_mu + eps * z_sigma)
    l1 = torch.nn.functional.l1_loss(recon.float(), x)
    kl = kl_loss(z_mu.float(), z_sigma.float())
    return l1 + kl_weight * kl, {"l1": float(l1.detach()), "kl": float(kl.detach())}


def train_autoencoder(
    cases: list[Case],
    cfg: dict[str, Any],
    out_dir: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Train (or resume) an autoencoder on ``cases``; returns ``out_dir/final.pt``."""
    if cfg["patch_size"] % 4:
        raise ConfigError(
            "patch_size",
            f"must be divisible by 4, got {cfg['patch_size']}",
            "pass e.g. --set patch_size=32",
        )
    if float(cfg["train"].get("perceptual_weight", 0.0)) > 0:
        raise ConfigError(
            "train.perceptual_weight",
            "> 0 needs pretrained perceptual networks, which cannot be downloaded here",
            "set it to 0",
        )
    sampler = PatchSampler(
        cases,
        cfg["patch_size"],
        mode="any",
        organ_fraction=float(cfg["data"]["organ_fraction"]),
        max_cached_cases=int(cfg["data"]["max_cached_cases"]),
        cache_dir=Path(out_dir) / CACHE_DIR,
    )
    ae = seeded_init(lambda: build_autoencoder(cfg["model"]), cfg["seed"])
    window = cfg["hu_window"]
    kl_weight = float(cfg["train"]["kl_weight"])
    batch = int(cfg["train"]["batch_size"])

    def step_fn(rng: np.random.Generator, gen: torch.Generator):
        ct = sampler.sample(rng, batch)["ct"]
        x = torch.from_numpy(hu_to_unit(ct, window)).to(device)
        return autoencoder_step(ae, x, gen, kl_weight)

    meta = {"data_hashes": data_hashes(cases), "cases": [c.name for c in cases]}
    trainer = Trainer(ae, cfg, out_dir, device, meta)
    trainer.resume()
    return trainer.run(step_fn, progress=progress)

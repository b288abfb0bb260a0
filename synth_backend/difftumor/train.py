"""Train DiffTumor's latent denoiser on (healthy context, tumor) patches.

Recipe (spec): the frozen autoencoder encodes the tumor patch x and the masked patch
x * (1 - mask); the U-Net predicts the noise added to the tumor latent from [noisy latent,
masked latent, latent mask]; L1 loss on the noise; EMA of the weights. Latents are multiplied
by ``scale_factor`` = 1 / std of training latents (measured once at start, as in latent
diffusion), so the diffusion prior N(0, 1) matches their spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from synth_backend.autoencoder.model import embedded_autoencoder, hu_to_unit, load_autoencoder
from synth_backend.difftumor.model import build_unet, condition, latent_mask, make_scheduler
from synth_backend.training.data import CACHE_DIR, Case, PatchSampler, data_hashes
from synth_backend.training.loop import Trainer, seeded_init

# x0 clamp quantiles: the latent range of the organ tissue tumors are synthesized in; min/max
# would reach air and bone latents (measured: [-9.6, 21] vs [-4.3, 4.1] for the shipped model),
# and a clamp that loose let the first T=4 step decode -180 HU holes
RANGE_QUANTILES = (0.001, 0.999)


def latent_stats(
    ae, sampler: PatchSampler, window, device: str, seed: int, n_batches: int = 4, batch: int = 2
) -> tuple[float, tuple[float, float]]:
    """(1 / std, latent range) of tumor patches over a few seeded batches.

    The range is the (0.1 %, 99.9 %) quantiles of the scaled latents on the organ (latent
    voxels at least half inside it): the samplers clamp their x0 estimate to it (DiffTumor's
    ``clip_denoised``)."""
    zs, organ_zs = [], []
    with torch.no_grad():
        for i in range(n_batches):
            rng = np.random.default_rng([int(seed), 2**32 - 1, i])  # disjoint from step seeds
            data = sampler.sample(rng, batch)
            z = ae.encode(torch.from_numpy(hu_to_unit(data["ct"], window)).to(device))[0].float()
            inside = latent_mask(torch.from_numpy(data["organ"]).to(device))[:, 0] >= 0.5
            zs.append(z)
            organ_zs.append(z.permute(1, 0, 2, 3, 4)[:, inside].reshape(-1))
    z = torch.cat(zs)
    scale = 1.0 / max(float(z.std()), 1e-3)
    tissue = torch.cat(organ_zs)
    tissue = tissue if tissue.numel() else z.reshape(-1)
    lo, hi = (float(torch.quantile(tissue.cpu(), q)) * scale for q in RANGE_QUANTILES)
    return scale, (lo, hi)


def latent_scale(
    ae, sampler: PatchSampler, window, device: str, seed: int, n_batches: int = 4, batch: int = 2
) -> float:
    """1 / std of tumor-patch latents over a few seeded batches."""
    return latent_stats(ae, sampler, window, device, seed, n_batches, batch)[0]


def tumor_batch(
    sampler: PatchSampler, rng: np.random.Generator, batch: int, window, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x in [-1, 1], tumor mask, organ mask) tensors of shape (B, 1, P, P, P)."""
    data = sampler.sample(rng, batch)
    x = torch.from_numpy(hu_to_unit(data["ct"], window)).to(device)
    return x, torch.from_numpy(data["tumor"]).to(device), torch.from_numpy(data["organ"]).to(device)


def train_difftumor(
    cases: list[Case],
    cfg: dict[str, Any],
    autoencoder: str | Path,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Train (or resume) one DiffTumor stage model; returns ``out_dir/final.pt``."""
    ae, ae_payload = load_autoencoder(autoencoder, device)
    ae_payload["sha256"] = _sha(ae_payload["path"])
    window = ae_payload["config"]["hu_window"]
    sampler = PatchSampler(
        cases,
        ae_payload["config"]["patch_size"],
        mode="tumor",
        tumor_source=cfg["tumor_source"],
        stage=cfg["stage"],
        cache_dir=Path(out_dir) / CACHE_DIR,
        max_cached_cases=int(cfg["data"]["max_cached_cases"]),
    )
    scale, latent_range = latent_stats(ae, sampler, window, device, int(cfg["seed"]))
    latent_channels = int(ae_payload["config"]["model"]["latent_channels"])
    unet = seeded_init(lambda: build_unet(cfg["model"], latent_channels), cfg["seed"])
    scheduler = make_scheduler(cfg)
    T = int(cfg["num_train_timesteps"])
    batch = int(cfg["train"]["batch_size"])

    def step_fn(rng: np.random.Generator, gen: torch.Generator):
        x, mask, _ = tumor_batch(sampler, rng, batch, window, device)
        with torch.no_grad():
            z0 = ae.encode(x)[0] * scale
            cond = condition(ae, x, mask, scale)
        noise = torch.randn(z0.shape, generator=gen, device=device)
        t = torch.randint(0, T, (batch,), generator=gen, device=device)
        noisy = scheduler.add_noise(z0, noise, t)
        pred = unet(torch.cat([noisy, cond], dim=1), timesteps=t)
        loss = torch.nn.functional.l1_loss(pred.float(), noise)
        return loss, {}

    meta = {
        "data_hashes": data_hashes(cases),
        "cases": [c.name for c in cases],
        "scale_factor": scale,
        "latent_range": list(latent_range),
        "autoencoder": embedded_autoencoder(ae_payload),
    }
    trainer = Trainer(unet, cfg, out_dir, device, meta)
    trainer.resume()
    return trainer.run(step_fn, progress=progress)


def _sha(path: str) -> str:
    from synth_backend.io import sha256_file

    return sha256_file(path)

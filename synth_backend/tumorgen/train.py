"""TumorGen training: L = L_rfm + l1 L_coarse + l2 L_fine + l3 L_rec (paper, eq. 7).

Time convention. The paper writes x_t = (1 - t) eps + t x1 (t = 1 is data); MONAI's
``RFlowScheduler`` uses timesteps s in [0, T] with x_s = (1 - s/T) x1 + (s/T) eps (s = T is
noise). They coincide with t = 1 - s/T; the velocity target x1 - eps is the same, and the
paper's estimate x1_hat = x_t + (1 - t) v becomes x_s + (s/T) v.

The mask channel of x is 2 m1 - 1 (the latent-grid tumor fraction mapped to [-1, 1], so it
spans the same range as the unit-variance noise); estimates are mapped back to [0, 1].
The refiner sees detached z1_hat / m1_hat: L_rec trains the VMR only (the flow is trained by
its own three terms), which keeps the decoder out of the flow's backward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import SSIMLoss
from monai.networks.schedulers import RFlowScheduler

from synth_backend.autoencoder.model import embedded_autoencoder, load_autoencoder
from synth_backend.difftumor.model import latent_mask
from synth_backend.difftumor.train import latent_stats, tumor_batch
from synth_backend.io import sha256_file
from synth_backend.masks import SIZE_RADIUS_MM
from synth_backend.training.config import ConfigError
from synth_backend.training.data import CACHE_DIR, Case, PatchSampler, data_hashes
from synth_backend.training.loop import Trainer, seeded_init
from synth_backend.tumorgen.boxes import ba_pmg_boxes
from synth_backend.tumorgen.model import TumorGenNet, decode_with_features


def trained_sizes(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The tumor size classes a TumorGen config trains on (and its checkpoint samples from).

    Checkpoints written before ``sizes`` existed were trained on early-stage pseudo tumors
    only, i.e. tiny and small."""
    sizes = tuple(cfg.get("sizes") or ("tiny", "small"))
    unknown = [s for s in sizes if s not in SIZE_RADIUS_MM]
    if unknown or not sizes:
        raise ConfigError(
            "sizes",
            f"must be a non-empty list of {list(SIZE_RADIUS_MM)}, got {list(sizes)}",
            "fix --set sizes=[...]",
        )
    return sizes


def make_rflow(cfg: dict[str, Any]) -> RFlowScheduler:
    return RFlowScheduler(
        num_train_timesteps=int(cfg["num_train_timesteps"]),
        use_discrete_timesteps=False,
        sample_method="uniform",
    )


def tumorgen_losses(
    net: TumorGenNet,
    ae,
    scheduler: RFlowScheduler,
    ssim: SSIMLoss,
    x: torch.Tensor,
    mask: torch.Tensor,
    box: torch.Tensor,
    scale: float,
    weights: dict[str, float],
    gen: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """All four loss terms for one batch.

    ``x`` (B, 1, P, P, P) in [-1, 1], ``mask`` the full-resolution tumor mask, ``box`` the BA-PMG
    box on the latent grid (B, 1, l, l, l). Returns (total loss, float terms).
    """
    T = scheduler.num_train_timesteps
    with torch.no_grad():
        z1 = ae.encode(x)[0] * scale
    m1 = latent_mask(mask)
    x1 = torch.cat([z1, 2.0 * m1 - 1.0], dim=1)
    eps = torch.randn(x1.shape, generator=gen, device=x1.device)
    s = torch.rand((x1.shape[0],), generator=gen, device=x1.device) * T
    x_s = scheduler.add_noise(x1, eps, s)
    v = net.velocity(x_s, (1.0 - box) * z1, box, s).float()
    l_rfm = torch.nn.functional.mse_loss(v, x1 - eps)
    x1_hat = x_s + (s / T).view(-1, 1, 1, 1, 1) * v
    c = z1.shape[1]
    z_hat, m_hat = x1_hat[:, :c], ((x1_hat[:, c:] + 1.0) / 2.0).clamp(0.0, 1.0)
    l_coarse = ((box * (z_hat - z1)) ** 2).sum() / (box.sum() * c + 1e-6)
    l_fine = ssim(m_hat * z_hat, m1 * z1)
    with torch.no_grad():
        _, feats = decode_with_features(ae, z_hat.detach() / scale)
    refined = torch.sigmoid(net.refiner(m_hat.detach(), feats).float())
    l_rec = torch.nn.functional.mse_loss(refined, mask)
    total = l_rfm + weights["coarse"] * l_coarse + weights["fine"] * l_fine + weights["rec"] * l_rec
    return total, {
        "rfm": float(l_rfm.detach()),
        "coarse": float(l_coarse.detach()),
        "fine": float(l_fine.detach()),
        "rec": float(l_rec.detach()),
    }


def make_ssim(cfg: dict[str, Any], latent_size: int) -> SSIMLoss:
    win = int(cfg["ssim_win"])
    if win % 2 == 0 or win > latent_size:
        raise ConfigError(
            "ssim_win",
            f"must be odd and <= the latent size {latent_size}, got {win}",
            f"pass an odd --set ssim_win=N with N <= {latent_size}",
        )
    # unit-variance latents: +-4 std covers practically all values
    return SSIMLoss(spatial_dims=3, data_range=8.0, win_size=win)


def train_tumorgen(
    cases: list[Case],
    cfg: dict[str, Any],
    autoencoder: str | Path,
    out_dir: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Train (or resume) TumorGen for one organ; returns ``out_dir/final.pt``."""
    ae, ae_payload = load_autoencoder(autoencoder, device)
    ae_payload["sha256"] = sha256_file(ae_payload["path"])
    window = ae_payload["config"]["hu_window"]
    patch = int(ae_payload["config"]["patch_size"])
    sizes = trained_sizes(cfg)
    sampler = PatchSampler(
        cases,
        patch,
        mode="tumor",
        tumor_source=cfg["tumor_source"],
        sizes=sizes,
        max_cached_cases=int(cfg["data"]["max_cached_cases"]),
        cache_dir=Path(out_dir) / CACHE_DIR,
    )
    scale, latent_range = latent_stats(ae, sampler, window, device, int(cfg["seed"]))
    net = seeded_init(lambda: TumorGenNet(cfg["model"], ae_payload["config"]["model"]), cfg["seed"])
    assert isinstance(net, TumorGenNet)
    scheduler = make_rflow(cfg)
    ssim = make_ssim(cfg, patch // 4)
    weights = {k: float(v) for k, v in cfg["loss_weights"].items()}
    batch = int(cfg["train"]["batch_size"])
    alpha = float(cfg["box_alpha"])

    def step_fn(rng: np.random.Generator, gen: torch.Generator):
        x, mask, _ = tumor_batch(sampler, rng, batch, window, device)
        box_np = ba_pmg_boxes(latent_mask(mask).cpu().numpy(), alpha, rng)
        box = torch.from_numpy(box_np).to(device)
        return tumorgen_losses(net, ae, scheduler, ssim, x, mask, box, scale, weights, gen)

    meta = {
        "data_hashes": data_hashes(cases),
        "cases": [c.name for c in cases],
        "scale_factor": scale,
        "latent_range": list(latent_range),
        "sizes": list(sizes),
        "autoencoder": embedded_autoencoder(ae_payload),
    }
    trainer = Trainer(net, cfg, out_dir, device, meta)
    trainer.resume()
    return trainer.run(step_fn, progress=progress)

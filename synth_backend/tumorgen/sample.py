"""TumorGen sampling: Euler integration of the joint [latent, mask] flow, decode, refine mask.

``RFlowScheduler.set_timesteps(n)`` gives s = T, T(1 - 1/n), ..., T/n; each ``step`` moves
x by v * (s - s_next) / T towards the data end (s = 0). Outside the box the known context
latents are kept (the model only synthesizes inside B), then the decoder renders the patch and
the VMR turns the coarse latent mask into a full-resolution mask from three decoder features.
"""

from __future__ import annotations

from pathlib import Path

import torch

from synth_backend.training.learned import LoadedModel
from synth_backend.tumorgen.boxes import upsample_box
from synth_backend.tumorgen.model import TumorGenNet, decode_with_features
from synth_backend.tumorgen.train import make_rflow


class TumorGenModel(LoadedModel):
    """A loaded TumorGen checkpoint: autoencoder + joint flow network and refiner (``net``)."""

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TumorGenModel:
        return cls.from_checkpoint(
            path,
            "tumorgen",
            device,
            lambda p: TumorGenNet(p["config"]["model"], p["autoencoder"]["config"]["model"]),
        )


@torch.no_grad()
def sample_patch(
    model: TumorGenModel,
    x: torch.Tensor,
    box: torch.Tensor,
    generator: torch.Generator,
    steps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate tumor image and mask inside ``box``.

    ``x``: healthy patch (B, 1, P, P, P) in [-1, 1]; ``box``: latent-grid box (B, 1, l, l, l).
    Returns (image in [-1, 1] (B, 1, P, P, P), refined mask probability (B, 1, P, P, P), zero
    outside the box,
    coarse latent mask (B, 1, l, l, l) in [0, 1]).
    """
    steps = int(steps or model.cfg["sample_steps"])
    scheduler = make_rflow(model.cfg)
    scheduler.set_timesteps(steps, device=x.device)
    z1 = model.ae.encode(x)[0] * model.scale
    z_masked = (1.0 - box) * z1
    c = z1.shape[1]
    xt = torch.randn((x.shape[0], c + 1, *z1.shape[2:]), generator=generator, device=x.device)
    ts = [float(t) for t in scheduler.timesteps] + [0.0]
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        tt = torch.full((x.shape[0],), t, device=x.device)
        v = model.net.velocity(xt, z_masked, box, tt).float()
        # RFlowScheduler.step is annotated int but takes the float times set_timesteps makes
        xt, _ = scheduler.step(v, t, xt, t_next)  # type: ignore[arg-type]
    z_hat = box * xt[:, :c] + (1.0 - box) * z1
    m_hat = ((xt[:, c:] + 1.0) / 2.0).clamp(0.0, 1.0) * box
    image, feats = decode_with_features(model.ae, z_hat / model.scale)
    # the refiner's receptive field reaches past the box; a tumor exists only inside it
    refined = torch.sigmoid(model.net.refiner(m_hat, feats).float()) * upsample_box(box)
    return image.clamp(-1.0, 1.0), refined, m_hat

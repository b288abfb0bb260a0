"""TumorGen networks: the vector-field estimator (SC-VFE) and the VAE-guided mask refiner (VMR).

Shapes (latent grid l = P / 4, C latent channels):
- SC-VFE input: x_t = [z_t, m_t] (C + 1) + masked latents z_m = (1 - B) z_1 (C) + box B (1);
  output: the velocity [v_z, v_m] (C + 1). Adding B as a channel is our choice: z_m alone is
  ambiguous where context latents happen to be ~0.
- VMR: the coarse mask m_hat (1 x l^3) is refined through three stages at l, 2l and 4l = P,
  each added to a 1x1x1 projection of the AutoencoderKL decoder's feature map at that
  resolution (paper, eq. 6), ending in one logit channel at full patch resolution.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.blocks import Upsample
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
from torch import nn


def decode_with_features(
    ae: AutoencoderKL, z: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Decode latents and collect three decoder feature maps, coarse to fine.

    The features are the activations entering each upsampling block (resolutions l and 2l)
    and entering the final GroupNorm (resolution 4l = P): the last layer of every decoder
    level. Equivalent to forward hooks on those blocks, without hook bookkeeping.
    """
    h = ae.post_quant_conv(z)
    feats: list[torch.Tensor] = []
    assert isinstance(ae.decoder.blocks, nn.ModuleList)  # MONAI Decoder keeps them so
    blocks = list(ae.decoder.blocks)
    for i, block in enumerate(blocks):
        if isinstance(block, Upsample) or (
            isinstance(block, nn.GroupNorm) and i == len(blocks) - 2
        ):
            feats.append(h)
        h = block(h)
    return h, feats


def decoder_feature_channels(ae_model_cfg: dict[str, Any]) -> list[int]:
    """Channels of the three decoder features returned by :func:`decode_with_features`."""
    return [int(c) for c in reversed(ae_model_cfg["channels"])]


class _Stage(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(groups, c_out),
            nn.SiLU(),
            nn.Conv3d(c_out, c_out, 3, padding=1),
            nn.GroupNorm(groups, c_out),
            nn.SiLU(),
        )

    def forward(self, x):
        return self.conv(x)


class MaskRefiner(nn.Module):
    """VMR: coarse latent mask + three decoder features -> full-resolution mask logits."""

    def __init__(self, feature_channels: list[int], channels: list[int]):
        super().__init__()
        if len(feature_channels) != 3 or len(channels) != 3:
            raise ValueError("the refiner uses exactly three decoder feature levels")
        coarse_to_fine = list(reversed(channels))  # config lists them fine -> coarse
        self.inp = nn.Conv3d(1, coarse_to_fine[0], 3, padding=1)
        # stage i adds proj_i(f_i) to its input q (c_in channels), then maps c_in -> c_i
        c_ins = [coarse_to_fine[0], *coarse_to_fine[:-1]]
        self.proj = nn.ModuleList(
            nn.Conv3d(f, c, 1) for f, c in zip(feature_channels, c_ins, strict=True)
        )
        self.stages = nn.ModuleList(
            _Stage(c_in, c, groups=min(8, c)) for c_in, c in zip(c_ins, coarse_to_fine, strict=True)
        )
        c_prev = coarse_to_fine[-1]
        self.head = nn.Conv3d(c_prev, 1, 1)

    def forward(self, coarse_mask: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        q = self.inp(coarse_mask)
        for i, (stage, proj, f) in enumerate(zip(self.stages, self.proj, feats, strict=True)):
            if i > 0:
                q = nn.functional.interpolate(
                    q, size=f.shape[2:], mode="trilinear", align_corners=False
                )
            q = stage(q + proj(f.to(q.dtype)))
        return self.head(q)


class TumorGenNet(nn.Module):
    """Trainable part of TumorGen: ``vfe`` (U-Net) and ``refiner`` (VMR)."""

    def __init__(self, model_cfg: dict[str, Any], ae_model_cfg: dict[str, Any]):
        super().__init__()
        c = int(ae_model_cfg["latent_channels"])
        channels = tuple(int(ch) for ch in model_cfg["channels"])
        attention = bool(model_cfg.get("attention", False))
        self.latent_channels = c
        self.vfe = DiffusionModelUNet(
            spatial_dims=3,
            in_channels=2 * c + 2,
            out_channels=c + 1,
            channels=channels,
            num_res_blocks=int(model_cfg["num_res_blocks"]),
            attention_levels=(False,) * (len(channels) - 1) + (attention,),
            norm_num_groups=int(model_cfg["norm_num_groups"]),
            num_head_channels=int(model_cfg.get("num_head_channels", 8)),
        )
        self.refiner = MaskRefiner(
            decoder_feature_channels(ae_model_cfg),
            [int(ch) for ch in model_cfg["refiner_channels"]],
        )

    def velocity(
        self, x_t: torch.Tensor, z_masked: torch.Tensor, box: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        return self.vfe(torch.cat([x_t, z_masked, box], dim=1), timesteps=timesteps)

"""Build, normalise for and load the MONAI ``AutoencoderKL`` used by both generative methods.

Intensity convention (spec, "Common conventions"): HU clipped to the window [-175, 250] and
mapped linearly to [-1, 1]. Arrays entering the network are (B, 1, x, y, z) float32 tensors of
1 mm patches whose side is divisible by 4 (two stride-2 downsamplings: latents are 4x smaller
per axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.networks.nets import AutoencoderKL

from synth_backend.training.checkpoint import CheckpointError, load_checkpoint


def hu_to_unit(hu: np.ndarray | torch.Tensor, window: Sequence[float]):
    """HU -> [-1, 1] over ``window`` (values outside are clipped)."""
    lo, hi = float(window[0]), float(window[1])
    scaled = (hu - lo) / (hi - lo) * 2.0 - 1.0
    return scaled.clip(-1.0, 1.0)


def unit_to_hu(x: np.ndarray | torch.Tensor, window: Sequence[float]):
    """[-1, 1] -> HU over ``window`` (inverse of :func:`hu_to_unit` inside the window)."""
    lo, hi = float(window[0]), float(window[1])
    return (x.clip(-1.0, 1.0) + 1.0) / 2.0 * (hi - lo) + lo


def build_autoencoder(model_cfg: dict[str, Any]) -> AutoencoderKL:
    """AutoencoderKL from a preset's ``model`` section (3D, one input channel)."""
    channels = tuple(int(c) for c in model_cfg["channels"])
    attention = bool(model_cfg.get("attention", False))
    return AutoencoderKL(
        spatial_dims=3,
        in_channels=1,
        out_channels=1,
        channels=channels,
        num_res_blocks=int(model_cfg["num_res_blocks"]),
        attention_levels=(False,) * len(channels),
        latent_channels=int(model_cfg["latent_channels"]),
        norm_num_groups=int(model_cfg["norm_num_groups"]),
        with_encoder_nonlocal_attn=attention,
        with_decoder_nonlocal_attn=attention,
    )


def downsampling_factor(model_cfg: dict[str, Any]) -> int:
    return 2 ** (len(model_cfg["channels"]) - 1)


def autoencoder_from_payload(payload: dict[str, Any], device: str = "cpu") -> AutoencoderKL:
    """An eval-mode, frozen AutoencoderKL from a checkpoint payload (or embedded sub-payload)."""
    ae = build_autoencoder(payload["config"]["model"])
    ae.load_state_dict(payload["state_dict"])
    ae.eval().requires_grad_(False)
    return ae.to(device)


def load_autoencoder(path, device: str = "cpu") -> tuple[AutoencoderKL, dict[str, Any]]:
    """Load an autoencoder checkpoint; returns the network and its payload (config, hashes)."""
    payload = load_checkpoint(path, method="autoencoder", map_location="cpu")
    if downsampling_factor(payload["config"]["model"]) != 4:
        raise CheckpointError(
            payload["path"],
            "autoencoder must downsample 4x per axis",
            "train it with 3 channel levels",
        )
    return autoencoder_from_payload(payload, device), payload


def embedded_autoencoder(payload: dict[str, Any]) -> dict[str, Any]:
    """The part of an autoencoder checkpoint a diffusion/flow checkpoint embeds."""
    return {
        "config": payload["config"],
        "state_dict": payload["state_dict"],
        "sha256": payload.get("sha256"),
        "step": payload.get("step"),
    }

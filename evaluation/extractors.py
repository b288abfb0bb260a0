"""Pluggable 2D feature extractors for FID on CT slices.

An extractor maps a batch of windowed slices ``(N, H, W)`` float32 in [0, 1] to features
``(N, F)`` float64. FID values from different extractors are **not comparable**; every FID
table and figure carries the extractor's ``name`` and ``limits``.

Registered extractors (no download ever happens):

- ``random-conv-v1`` (default): a fixed, untrained 4-block CNN (3x3 conv stride 2 + ReLU,
  16-32-64-128 channels, global mean pooling -> 128 features) on 128x128 inputs. Its weights
  are He-normal draws from ``numpy.random.default_rng(20240601)``, so they are identical on every
  machine and torch version. Random convolutional features capture intensity and texture
  statistics at several scales (the motivation of random-feature kernel two-sample tests) but no
  learned anatomy semantics, so it ranks gross differences (noise, blur, HU shifts, texture)
  rather than subtle realism.
- ``torchscript`` (``weights=FILE``): any local TorchScript module mapping ``(N, C, H, W)`` to
  ``(N, F)`` or ``(N, F, 1, 1)`` — e.g. an Inception-v3 pool3 or a RadImageNet ResNet-50
  exported elsewhere with ``torch.jit.trace`` (see evaluation/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.tables import EvaluationInputError

DEFAULT_EXTRACTOR = "random-conv-v1"
RANDOM_CONV_SEED = 20240601
RANDOM_CONV_CHANNELS = (16, 32, 64, 128)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FeatureExtractor:
    """A named slice -> feature map; call it on ``(N, H, W)`` arrays in [0, 1]."""

    name: str
    limits: str
    input_size: int
    model: object  # torch.nn.Module (kept untyped so importing this module needs no torch)
    device: str = "cpu"
    in_channels: int = 1
    imagenet_norm: bool = False
    info: dict = field(default_factory=dict)

    def __call__(self, slices: np.ndarray, batch_size: int = 64) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        slices = np.asarray(slices, dtype=np.float32)
        if slices.ndim != 3:
            raise ValueError(f"slices must be (N, H, W), got shape {slices.shape}")
        out = []
        with torch.inference_mode():
            for start in range(0, len(slices), batch_size):
                x = torch.from_numpy(slices[start : start + batch_size]).to(self.device)[:, None]
                x = F.interpolate(
                    x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
                )
                x = x.expand(-1, self.in_channels, -1, -1)
                if self.imagenet_norm:
                    mean = torch.tensor(IMAGENET_MEAN[: self.in_channels], device=x.device)
                    std = torch.tensor(IMAGENET_STD[: self.in_channels], device=x.device)
                    x = (x - mean[:, None, None]) / std[:, None, None]
                feats = self.model(x)  # type: ignore[operator]
                out.append(feats.reshape(feats.shape[0], -1).double().cpu().numpy())
        if not out:
            return np.zeros((0, 0))
        return np.concatenate(out)


def _random_conv_v1(device: str, **_) -> FeatureExtractor:
    import torch
    from torch import nn

    rng = np.random.default_rng(RANDOM_CONV_SEED)
    layers: list[nn.Module] = []
    c_in = 1
    for c_out in RANDOM_CONV_CHANNELS:
        conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False)
        fan_in = c_in * 9
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=conv.weight.shape).astype(np.float32)
        conv.weight.data = torch.from_numpy(w)
        layers += [conv, nn.ReLU()]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    model = nn.Sequential(*layers).eval().to(device)
    return FeatureExtractor(
        name=DEFAULT_EXTRACTOR,
        limits="untrained random-weight CNN (seeded, 128 features): measures intensity/texture "
        "statistics, not learned anatomy; not comparable to Inception or RadImageNet FID",
        input_size=128,
        model=model,
        device=device,
        info={"seed": RANDOM_CONV_SEED, "channels": list(RANDOM_CONV_CHANNELS)},
    )


def _torchscript(
    device: str,
    weights: str | Path | None = None,
    input_size: int = 299,
    in_channels: int = 3,
    imagenet_norm: bool = True,
    **_,
) -> FeatureExtractor:
    import torch

    from synth_backend.io import sha256_file

    if weights is None:
        raise EvaluationInputError(
            "--weights",
            "the torchscript extractor needs a weights file",
            "pass --weights FILE (a TorchScript module)",
        )
    path = Path(weights)
    if not path.is_file():
        raise EvaluationInputError(path, "weights file does not exist", "check the path")
    try:
        model = torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as exc:
        raise EvaluationInputError(
            path,
            f"is not a TorchScript module ({str(exc).splitlines()[0]})",
            "export the network with torch.jit.trace/script and "
            "torch.jit.save (see evaluation/README.md)",
        ) from exc
    digest = sha256_file(path)
    return FeatureExtractor(
        name=f"torchscript:{path.name}:{digest[:12]}",
        limits=f"user-supplied network {path.name} (sha256 {digest[:12]}); comparable only to "
        "FIDs computed with the same file and input settings",
        input_size=input_size,
        model=model,
        device=device,
        in_channels=in_channels,
        imagenet_norm=imagenet_norm,
        info={"weights": str(path), "sha256": digest},
    )


_REGISTRY: dict[str, Callable[..., FeatureExtractor]] = {
    DEFAULT_EXTRACTOR: _random_conv_v1,
    "torchscript": _torchscript,
}


def available_extractors() -> list[str]:
    return sorted(_REGISTRY)


def register_extractor(name: str, factory: Callable[..., FeatureExtractor]) -> None:
    """Add an extractor factory ``factory(device, **options) -> FeatureExtractor``."""
    _REGISTRY[name] = factory


def get_extractor(
    name: str | None = None, *, weights: str | Path | None = None, device: str = "auto", **options
) -> FeatureExtractor:
    """Build an extractor by name; ``weights`` alone selects ``torchscript``.

    ``device="auto"`` picks CUDA when available.
    """
    from synth_backend.base import resolve_device

    if name is None:
        name = "torchscript" if weights is not None else DEFAULT_EXTRACTOR
    if name not in _REGISTRY:
        raise EvaluationInputError(
            "--extractor",
            f"unknown feature extractor {name!r}",
            f"use one of {', '.join(available_extractors())}",
        )
    return _REGISTRY[name](str(resolve_device(device)), weights=weights, **options)

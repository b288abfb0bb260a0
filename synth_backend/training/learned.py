"""Shared plumbing of the learning-based synthesizers: checkpoint resolution, hash, and one
loaded model per device (loaded lazily, reused across calls)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synth_backend.base import SynthesisResult, Synthesizer
from synth_backend.training.checkpoint import (
    checkpoint_sha256,
    load_checkpoint,
    resolve_checkpoint,
)


@dataclass
class LoadedModel:
    """A checkpoint loaded for sampling (eval mode): the frozen autoencoder it embeds, the
    method's network, both configs, the latent scale factor, the file and its step count."""

    ae: Any
    net: Any
    cfg: dict[str, Any]
    ae_cfg: dict[str, Any]
    scale: float
    path: str
    step: int
    latent_range: tuple[float, float] | None = None  # scaled latents' (min, max) on training data

    @classmethod
    def from_checkpoint(cls, path: str | Path, method: str, device: str, build_net):
        """Load ``path`` (checked to be a ``method`` checkpoint); ``build_net(payload)`` makes
        the method's network, whose weights are then loaded, frozen and moved to ``device``."""
        from synth_backend.autoencoder.model import autoencoder_from_payload

        payload = load_checkpoint(path, method=method)
        net = build_net(payload)
        net.load_state_dict(payload["state_dict"])
        net.eval().requires_grad_(False).to(device)
        return cls(autoencoder_from_payload(payload["autoencoder"], device), net,
                   payload["config"], payload["autoencoder"]["config"],
                   float(payload["scale_factor"]), payload["path"], int(payload["step"]),
                   _range(payload.get("latent_range")))

    @property
    def patch_size(self) -> int:
        return int(self.ae_cfg["patch_size"])

    @property
    def window(self) -> list[float]:
        return list(self.ae_cfg["hu_window"])


def _range(value) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


class CheckpointSynthesizer(Synthesizer):
    """A :class:`Synthesizer` whose weights come from one checkpoint file.

    Subclasses set ``name`` and ``model_class`` (with ``load(path, device)``).
    """

    learning_based = True
    model_class: ClassVar[Any]

    def __init__(self, checkpoint: str | Path | None = None):
        from synth_backend.weights import default_checkpoint, default_organ

        # no checkpoint given: the shipped demo weights (synth_backend/weights/README.md)
        shipped = default_checkpoint(self.name) if checkpoint is None else None
        self.default_organ = default_organ(self.name) if shipped is not None else None
        self.checkpoint = resolve_checkpoint(shipped or checkpoint, method=self.name)
        self._models: dict[str, Any] = {}
        self._hash: str | None = None

    def check_organ(self, organ: str) -> None:
        """The shipped weights know one organ; other organs need their own checkpoint."""
        if self.default_organ is not None and organ != self.default_organ:
            from synth_backend.runner import SynthesisInputError

            raise SynthesisInputError(
                f"the shipped {self.name} weights were trained on the {self.default_organ} "
                f"only, not the {organ}",
                f"train them (`turingct train {self.name} --organ {organ} ...`, see "
                "docs/synthesis-generative.md) and pass --checkpoint")

    def checkpoint_hash(self) -> str:
        if self._hash is None:
            self._hash = checkpoint_sha256(self.checkpoint)
        return self._hash

    def model(self, device: str) -> Any:
        key = f"{self.checkpoint}@{device}"  # a synthesizer may switch checkpoints (stages)
        if key not in self._models:
            self._models[key] = self.model_class.load(self.checkpoint, device)
        return self._models[key]

    def synthesize_several(self, ct: np.ndarray, organ_mask: np.ndarray, *, n_tumors: int,
                           organ: str, spacing, seed: int, device: str = "auto",
                           **options: Any) -> SynthesisResult:
        """``n_tumors`` lesions = that many one-lesion calls (``n_tumors=1``), each with its own
        patch, centre and seed (``SeedSequence([seed, i])``), each on the CT the previous call
        returned; a later lesion is centred and masked outside the earlier ones. ``params``
        lists every lesion's own parameters."""
        from synth_backend.runner import SynthesisInputError

        if int(n_tumors) < 1:
            raise SynthesisInputError(f"n_tumors must be >= 1, got {n_tumors}",
                                      "pass a positive --n-tumors")
        out = np.asarray(ct, dtype=np.float32)
        organ_bool = np.asarray(organ_mask).astype(bool)
        tumor = np.zeros(out.shape, dtype=np.uint8)
        lesions, infos = [], []
        for i in range(int(n_tumors)):
            lesion_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
            free = organ_bool & ~tumor.astype(bool)
            res = self.synthesize(out, free if free.any() else organ_bool, organ=organ,
                                  spacing=spacing, seed=lesion_seed, device=device, n_tumors=1,
                                  **options)
            out, tumor = res.ct, tumor | res.tumor_mask
            lesions.append({"seed": lesion_seed, **res.params})
            infos.append(res.info)
        info = {"device": infos[0].get("device"), "sampling_steps": infos[0].get(
            "sampling_steps"), "seconds": sum(float(i.get("seconds", 0.0)) for i in infos),
                "lesions": infos}
        return SynthesisResult(out, tumor, {"seed": int(seed), "n_tumors": int(n_tumors),
                                            "lesions": lesions}, info)

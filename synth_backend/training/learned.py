"""Shared plumbing of the learning-based synthesizers: checkpoint resolution, hash, and one
loaded model per device (loaded lazily, reused across calls)."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synth_backend.base import SynthesisParams, SynthesisResult, Synthesizer
from synth_backend.errors import SynthesisInputError
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
        return cls(
            autoencoder_from_payload(payload["autoencoder"], device),
            net,
            payload["config"],
            payload["autoencoder"]["config"],
            float(payload["scale_factor"]),
            payload["path"],
            int(payload["step"]),
            _range(payload.get("latent_range")),
        )

    @property
    def patch_size(self) -> int:
        return int(self.ae_cfg["patch_size"])

    @property
    def window(self) -> list[float]:
        return list(self.ae_cfg["hu_window"])


def _range(value: Any) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


@dataclass(frozen=True)
class SeveralLesions:
    """Parameters of an ``n_tumors`` > 1 call: the call's ``seed`` and each lesion's own
    one-lesion parameters, applied in order (see :meth:`CheckpointSynthesizer.synthesize_several`).
    ``to_dict`` is the provenance shape ``{"seed", "n_tumors", "lesions": [...]}``."""

    seed: int
    lesions: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": int(self.seed),
            "n_tumors": len(self.lesions),
            "lesions": [lesion.to_dict() for lesion in self.lesions],
        }


# (lesion index, CT so far, organ voxels still free) -> that lesion's parameters
LesionSource = Callable[[int, np.ndarray, np.ndarray], Any]


class CheckpointSynthesizer(Synthesizer):
    """A :class:`Synthesizer` whose weights come from one checkpoint file.

    Subclasses set ``name``, ``model_class`` (with ``load(path, device)``) and
    ``params_class`` (frozen one-lesion parameters with ``to_dict``/``from_dict``) and
    implement :meth:`sample_lesion` and :meth:`apply_lesion`. ``n_tumors`` > 1 is a sequence
    of one-lesion calls, each drawn on the previous one's output (:meth:`synthesize_several`),
    so it is drawn and applied lesion by lesion; its :class:`SeveralLesions` replay as a whole.
    """

    learning_based = True
    model_class: ClassVar[Any]
    params_class: ClassVar[Any]

    def __init__(self, checkpoint: str | Path | None = None):
        from synth_backend.weights import default_checkpoint, default_organ

        # no checkpoint given: the shipped demo weights (synth_backend/weights/README.md)
        shipped = default_checkpoint(self.name) if checkpoint is None else None
        self.default_organ = default_organ(self.name) if shipped is not None else None
        self.checkpoint = resolve_checkpoint(shipped or checkpoint, method=self.name)
        self._models: dict[str, Any] = {}
        self._configs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._hash: str | None = None

    def check_organ(self, organ: str) -> None:
        """The shipped weights know one organ; other organs need their own checkpoint."""
        if self.default_organ is not None and organ != self.default_organ:
            raise SynthesisInputError(
                None,
                f"the shipped {self.name} weights were trained on the {self.default_organ} "
                f"only, not the {organ}",
                f"train them (`turingct train {self.name} --organ {organ} ...`, see "
                "docs/synthesis-generative.md) and pass --checkpoint",
            )

    def checkpoint_hash(self) -> str:
        if self._hash is None:
            self._hash = checkpoint_sha256(self.checkpoint)
        return self._hash

    def model(self, device: str) -> Any:
        key = f"{self.checkpoint}@{device}"  # a synthesizer may switch checkpoints (stages)
        if key not in self._models:
            self._models[key] = self.model_class.load(self.checkpoint, device)
        return self._models[key]

    def config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(method config, autoencoder config) of the current checkpoint, without putting the
        model on a device: drawing parameters needs the configs (stage, patch size, trained
        sizes), not the weights."""
        key = str(self.checkpoint)
        if key not in self._configs:
            loaded = [m for k, m in self._models.items() if k.startswith(f"{key}@")]
            if loaded:
                self._configs[key] = (loaded[0].cfg, loaded[0].ae_cfg)
            else:
                payload = load_checkpoint(self.checkpoint, method=self.name)
                self._configs[key] = (payload["config"], payload["autoencoder"]["config"])
        return self._configs[key]

    def synthesize(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        device: str = "auto",
        **options: Any,
    ) -> SynthesisResult:
        """One lesion (``sample_params`` then ``apply``), or ``n_tumors`` of them in turn."""
        n_tumors = options.get("n_tumors")
        if n_tumors is not None and int(n_tumors) != 1:
            del options["n_tumors"]
            return self.synthesize_several(
                ct,
                organ_mask,
                n_tumors=int(n_tumors),
                organ=organ,
                spacing=spacing,
                seed=seed,
                device=device,
                **options,
            )
        return super().synthesize(
            ct, organ_mask, organ=organ, spacing=spacing, seed=seed, device=device, **options
        )

    def sample_params(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        **options: Any,
    ) -> SynthesisParams:
        """One lesion's parameters. ``n_tumors`` > 1 cannot be drawn ahead: each lesion is
        placed outside the earlier ones, which only exist once applied (use ``synthesize``)."""
        n_tumors = options.pop("n_tumors", None)
        if n_tumors is not None and int(n_tumors) != 1:
            raise SynthesisInputError(
                None,
                f"n_tumors={n_tumors} lesions are drawn one by one on the previous lesion's output",
                "call synthesize (or synthesize_several) for several lesions",
            )
        return self.sample_lesion(
            ct,
            organ_mask,
            organ=organ,
            spacing=spacing,
            seed=seed,
            single=n_tumors is not None,
            **options,
        )

    @abstractmethod
    def sample_lesion(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        single: bool,
        **options: Any,
    ) -> SynthesisParams:
        """Draw one call's parameters (``single``: exactly one lesion was asked for)."""

    @abstractmethod
    def apply_lesion(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: Any,
        device: str,
    ) -> SynthesisResult:
        """Generate and paste what ``params`` (one ``params_class``) describes."""

    def params_from_dict(self, data: dict[str, Any]) -> SynthesisParams:
        if "lesions" in data:
            return SeveralLesions(
                int(data["seed"]),
                tuple(self.params_class.from_dict(lesion) for lesion in data["lesions"]),
            )
        return self.params_class.from_dict(data)

    def apply(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: Any,
        device: str = "auto",
    ) -> SynthesisResult:
        if isinstance(params, SeveralLesions):
            lesions = params.lesions
            return self._lesion_by_lesion(
                ct,
                organ_mask,
                spacing,
                device,
                params.seed,
                len(lesions),
                lambda i, _ct, _free: lesions[i],
            )
        return self.apply_lesion(ct, organ_mask, spacing=spacing, params=params, device=device)

    def synthesize_several(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        n_tumors: int,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        device: str = "auto",
        **options: Any,
    ) -> SynthesisResult:
        """``n_tumors`` lesions = that many one-lesion calls (``n_tumors=1``), each with its own
        patch, centre and seed (``SeedSequence([seed, i])``), each on the CT the previous call
        returned; a later lesion is centred and masked outside the earlier ones. ``params``
        lists every lesion's own parameters (:class:`SeveralLesions`)."""
        if int(n_tumors) < 1:
            raise SynthesisInputError(
                None, f"n_tumors must be >= 1, got {n_tumors}", "pass a positive --n-tumors"
            )

        def draw(i: int, current: np.ndarray, free: np.ndarray) -> SynthesisParams:
            lesion_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
            return self.sample_params(
                current, free, organ=organ, spacing=spacing, seed=lesion_seed, n_tumors=1, **options
            )

        return self._lesion_by_lesion(
            ct, organ_mask, spacing, device, int(seed), int(n_tumors), draw
        )

    def _lesion_by_lesion(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        spacing: tuple[float, float, float],
        device: str,
        seed: int,
        n_tumors: int,
        lesion: LesionSource,
    ) -> SynthesisResult:
        """Apply ``lesion(i, ct so far, free organ)`` for i < ``n_tumors`` in turn: drawing
        (``synthesize_several``) and replaying (stored lesions) share this one loop."""
        start = time.perf_counter()
        out = np.asarray(ct, dtype=np.float32)
        organ_bool = np.asarray(organ_mask).astype(bool)
        tumor = np.zeros(out.shape, dtype=np.uint8)
        lesions, infos = [], []
        for i in range(n_tumors):
            free = organ_bool & ~tumor.astype(bool)
            organ_i = free if free.any() else organ_bool
            params = lesion(i, out, organ_i)
            res = self.apply_lesion(out, organ_i, spacing=spacing, params=params, device=device)
            out, tumor = res.ct, tumor | res.tumor_mask
            lesions.append(params)
            infos.append(res.info)
        info = {
            "device": infos[0].get("device"),
            "sampling_steps": infos[0].get("sampling_steps"),
            "seconds": time.perf_counter() - start,
            "lesions": infos,
        }
        return SynthesisResult(out, tumor, SeveralLesions(seed, tuple(lesions)).to_dict(), info)

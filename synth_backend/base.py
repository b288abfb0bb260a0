"""The one interface every tumor-synthesis method implements, and its result type."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from core.vocabulary import ORGANS  # noqa: F401  (re-exported for older imports)


@dataclass(frozen=True)
class SynthesisResult:
    """Output of one synthesis call, on the same (x, y, z) grid as the input.

    ``ct`` is float32 HU; ``tumor_mask`` uint8 (1 = tumor). ``params`` holds every parameter
    actually used (JSON-serializable) so that the call can be replayed; ``info`` holds derived
    facts worth recording (device, density levels chosen, steps run, timings).
    """

    ct: np.ndarray
    tumor_mask: np.ndarray
    params: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


class SynthesisParams(Protocol):
    """What :meth:`Synthesizer.sample_params` returns: a frozen value holding every random
    draw of one synthesis, JSON-ready through ``to_dict`` (the provenance ``params``)."""

    def to_dict(self) -> dict[str, Any]: ...


class Synthesizer(ABC):
    """A tumor-synthesis method: ``synthesize(ct, organ_mask, organ=..., spacing=..., seed=...)``.

    Inputs are RAS (x, y, z) arrays: ``ct`` in HU (float32), ``organ_mask`` boolean or uint8
    (nonzero = organ), ``spacing`` in mm. Same seed + same device + same inputs -> same output.
    Learning-based methods also load a checkpoint (``checkpoint_hash`` goes into provenance).

    Every method splits a call in two: :meth:`sample_params` makes every random draw (the seed
    is used nowhere else) and returns frozen parameters; :meth:`apply` turns them into the
    volume deterministically. ``synthesize`` is the two in a row, and :meth:`replay` rebuilds
    the parameters from a stored ``params`` dict (:meth:`params_from_dict`) and applies them, so
    any provenance.json can be re-run to the same volume.
    """

    name: ClassVar[str]
    learning_based: ClassVar[bool] = False

    @abstractmethod
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
        """Draw everything random about one call from ``seed``; raises for bad options."""

    @abstractmethod
    def apply(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: Any,
        device: str = "auto",
    ) -> SynthesisResult:
        """Insert the tumor(s) ``params`` describe; deterministic for a device."""

    @abstractmethod
    def params_from_dict(self, data: dict[str, Any]) -> SynthesisParams:
        """The frozen parameters back from their ``to_dict`` form (a provenance ``params``)."""

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
        """Insert tumor(s) into the organ; see the class docstring for conventions."""
        start = time.perf_counter()
        params = self.sample_params(
            ct, organ_mask, organ=organ, spacing=spacing, seed=seed, **options
        )
        result = self.apply(ct, organ_mask, spacing=spacing, params=params, device=device)
        if "seconds" in result.info:  # the whole call, drawing included
            result.info["seconds"] = round(time.perf_counter() - start, 3)
        return result

    def replay(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: dict[str, Any],
        device: str = "auto",
    ) -> SynthesisResult:
        """Re-apply stored ``params`` (a provenance ``params`` dict): on the same inputs and
        device, the same volume bit for bit."""
        return self.apply(
            ct, organ_mask, spacing=spacing, params=self.params_from_dict(params), device=device
        )

    def checkpoint_hash(self) -> str | None:
        """sha256 of the weights used, or None for methods without weights."""
        return None


def int3(values: Iterable[Any]) -> tuple[int, int, int]:
    """An (x, y, z) triple of ints from any three values (a numpy row, a JSON list)."""
    x, y, z = (int(v) for v in values)
    return x, y, z


def float3(values: Iterable[Any]) -> tuple[float, float, float]:
    """An (x, y, z) triple of floats from any three values (a numpy row, a JSON list)."""
    x, y, z = (float(v) for v in values)
    return x, y, z


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; explicit 'cuda' without one fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "device 'cuda' was requested but no CUDA GPU is visible; use --device cpu or auto"
        )
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return device

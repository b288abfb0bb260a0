"""The one interface every tumor-synthesis method implements, and its result type."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


class Synthesizer(ABC):
    """A tumor-synthesis method: ``synthesize(ct, organ_mask, organ=..., spacing=..., seed=...)``.

    Inputs are RAS (x, y, z) arrays: ``ct`` in HU (float32), ``organ_mask`` boolean or uint8
    (nonzero = organ), ``spacing`` in mm. Same seed + same device + same inputs -> same output.
    Learning-based methods also load a checkpoint (``checkpoint_hash`` goes into provenance).
    """

    name: ClassVar[str]
    learning_based: ClassVar[bool] = False

    @abstractmethod
    def synthesize(self, ct: np.ndarray, organ_mask: np.ndarray, *, organ: str,
                   spacing: tuple[float, float, float], seed: int, device: str = "auto",
                   **options: Any) -> SynthesisResult:
        """Insert tumor(s) into the organ; see the class docstring for conventions."""

    def checkpoint_hash(self) -> str | None:
        """sha256 of the weights used, or None for methods without weights."""
        return None


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; explicit 'cuda' without one fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA GPU is visible; "
                           "use --device cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return device

"""Shared plumbing of the learning-based synthesizers: checkpoint resolution, hash, and one
loaded model per device (loaded lazily, reused across calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from synth_backend.base import Synthesizer
from synth_backend.training.checkpoint import checkpoint_sha256, resolve_checkpoint


class CheckpointSynthesizer(Synthesizer):
    """A :class:`Synthesizer` whose weights come from one checkpoint file.

    Subclasses set ``name`` and ``model_class`` (with ``load(path, device)``).
    """

    learning_based = True
    model_class: ClassVar[Any]

    def __init__(self, checkpoint: str | Path | None = None):
        self.checkpoint = resolve_checkpoint(checkpoint, method=self.name)
        self._models: dict[str, Any] = {}
        self._hash: str | None = None

    def checkpoint_hash(self) -> str:
        if self._hash is None:
            self._hash = checkpoint_sha256(self.checkpoint)
        return self._hash

    def model(self, device: str) -> Any:
        if device not in self._models:
            self._models[device] = self.model_class.load(self.checkpoint, device)
        return self._models[device]

"""Checkpoint files: one ``torch.save`` dict that carries everything needed to resume or sample.

Layout of a training directory ``CKPT_DIR``:

- ``last.pt``  — written every ``save_every`` steps and at the end: weights, EMA weights,
  optimizer, step, config, data hashes, code version. Training resumes from it.
- ``final.pt`` — written once training reaches its step count: weights (EMA when enabled) plus
  the metadata, without optimizer state. Synthesizers load this file; its sha256 is the
  ``checkpoint_hash`` recorded in provenance.
- ``loss.csv`` — step, loss terms (the loss curve).

A learning-based synthesis checkpoint embeds its autoencoder (weights and config), so a single
file (one hash) fully determines a sample.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.errors import InputError
from synth_backend.io import atomic_write, sha256_file

FORMAT_VERSION = 1
LAST = "last.pt"
FINAL = "final.pt"


class CheckpointError(InputError):
    """A checkpoint that is missing, unreadable or of the wrong kind: '<file>: <problem>; <fix>'."""


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` atomically (a crash never leaves a half-written checkpoint)."""
    import torch

    payload = {"format_version": FORMAT_VERSION, **payload}
    return atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def resolve_checkpoint(path: str | os.PathLike | None, *, method: str) -> Path:
    """A checkpoint file from a file or a training directory (``final.pt``, else ``last.pt``)."""
    train_hint = (
        f"train one with `turingct train {method} ...` and pass its final.pt "
        "(or the training directory) as --checkpoint"
    )
    if path is None:
        raise CheckpointError(method, "no checkpoint given", train_hint)
    path = Path(path)
    if path.is_dir():
        for name in (FINAL, LAST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(path, f"directory holds no {FINAL} or {LAST}", train_hint)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file does not exist", train_hint)
    return path


def load_checkpoint(
    path: str | os.PathLike | None, *, method: str, map_location: str = "cpu"
) -> dict[str, Any]:
    """Load and check a checkpoint written by :func:`save_checkpoint` for ``method``."""
    import torch

    file = resolve_checkpoint(path, method=method)
    try:
        payload = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise CheckpointError(
            file,
            f"is not a readable checkpoint ({exc.__class__.__name__})",
            "re-copy it or train again",
        ) from exc
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            file,
            f"is not a turingct checkpoint (format_version {FORMAT_VERSION} expected)",
            "pass a file written by `turingct train`",
        )
    if payload.get("method") != method:
        raise CheckpointError(
            file,
            f"was written by `turingct train {payload.get('method')}`, "
            f"but a `turingct train {method}` checkpoint is needed",
            "pass the right file",
        )
    payload["path"] = str(file)
    return payload


def checkpoint_sha256(path: str | os.PathLike) -> str:
    return sha256_file(path)

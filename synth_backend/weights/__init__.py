"""Shipped demo weights (see README.md here): the default ``--checkpoint`` of the learned
methods, found through the package (works from a fresh clone and an installed wheel)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# method -> (file, organ it was trained on)
DEFAULT_WEIGHTS = {"difftumor": ("difftumor_liver_early_small.pt", "liver"),
                   "tumorgen": ("tumorgen_liver_small.pt", "liver")}
AUTOENCODER = "autoencoder_small.pt"


def default_checkpoint(method: str) -> Path | None:
    """The shipped checkpoint of ``method``, or None when there is none (or it is missing)."""
    if method not in DEFAULT_WEIGHTS:
        return None
    path = Path(str(resources.files(__name__).joinpath(DEFAULT_WEIGHTS[method][0])))
    return path if path.is_file() else None


def default_organ(method: str) -> str | None:
    return DEFAULT_WEIGHTS[method][1] if method in DEFAULT_WEIGHTS else None

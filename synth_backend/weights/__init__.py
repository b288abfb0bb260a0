"""Shipped demo weights (see README.md here): the default ``--checkpoint`` of the learned
methods, found through the package (works from a fresh clone and an installed wheel)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# method -> (file, organ it was trained on)
DEFAULT_WEIGHTS = {
    "difftumor": ("difftumor_liver_early_small.pt", "liver"),
    "tumorgen": ("tumorgen_liver_small.pt", "liver"),
}
AUTOENCODER = "autoencoder_small.pt"
# one checkpoint per DiffTumor stage (the default above is the early one)
STAGE_WEIGHTS = {
    ("difftumor", "early"): "difftumor_liver_early_small.pt",
    ("difftumor", "late"): "difftumor_liver_late_small.pt",
}


def _packaged(name: str) -> Path | None:
    path = Path(str(resources.files(__name__).joinpath(name)))
    return path if path.is_file() else None


def default_checkpoint(method: str) -> Path | None:
    """The shipped checkpoint of ``method``, or None when there is none (or it is missing)."""
    if method not in DEFAULT_WEIGHTS:
        return None
    return _packaged(DEFAULT_WEIGHTS[method][0])


def stage_checkpoint(method: str, stage: str) -> Path | None:
    """The shipped checkpoint of one DiffTumor stage (early | late), or None."""
    name = STAGE_WEIGHTS.get((method, stage))
    return _packaged(name) if name else None


def default_organ(method: str) -> str | None:
    return DEFAULT_WEIGHTS[method][1] if method in DEFAULT_WEIGHTS else None

"""Benchmark settings: one frozen dataclass, two presets (``tiny`` for CPU/CI, ``full`` for GPU).

``full`` is the GPU recipe of the seed documents (SPEC-synthesis, "Segmentation training
recipe"): MONAI UNet, DiceCE loss, AdamW lr 4e-4, warmup-cosine schedule, 96^3 patches at 1 mm,
a synthetic tumor added with p = 0.5 to each healthy sample drawn. ``tiny`` keeps the recipe
but shrinks everything (2 mm grid, 48^3 patches, 3-level UNet with 8-32 channels, 120
iterations) so that one run takes a couple of minutes on a 2-core CPU; its numbers show that
the pipeline works, not how good a method is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from evaluation.tables import EvaluationInputError
from synth_backend.registry import registered_methods

# real tumors, or every registered method's tumors on healthy CT
TRAIN_ON = ("real", *registered_methods())
HU_WINDOW = (-175.0, 250.0)  # abdominal window used to scale CT to [0, 1]


@dataclass(frozen=True)
class BenchConfig:
    """Everything that changes a benchmark's numbers (stored with every result).

    Lengths in mm, patch sizes in voxels (x, y, z) of the benchmark grid (isotropic
    ``spacing_mm``). ``p_tumor``: probability that a healthy training sample gets a synthetic
    tumor; ``p_foreground``: probability that a patch is centred on a tumor voxel when the
    sample has one (else on a random organ voxel). ``test_fraction`` of the tumor volumes and,
    separately, of the healthy volumes is held out for testing (at least one of each when
    available). Detection: a test CT is called positive when the prediction inside the
    (``organ_margin_mm``-dilated) organ has a 26-connected component of at least
    ``min_lesion_mm3``.
    """

    preset: str = "tiny"
    spacing_mm: float = 2.0
    patch: tuple[int, int, int] = (48, 48, 48)
    channels: tuple[int, ...] = (8, 16, 32)
    strides: tuple[int, ...] = (2, 2)
    res_units: int = 1
    iterations: int = 120
    batch_size: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.1
    p_tumor: float = 0.5
    p_foreground: float = 0.67
    organ_margin_mm: float = 10.0
    test_fraction: float = 0.34
    checkpoint_every: int = 20
    sw_overlap: float = 0.25
    tolerance_mm: float = 2.0
    min_lesion_mm3: float = 100.0
    n_boot: int = 2000
    synth_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (self.spacing_mm > 0, "spacing_mm must be > 0"),
            (len(self.patch) == 3 and min(self.patch) >= 16, "patch must be 3 sizes >= 16"),
            (
                len(self.strides) == len(self.channels) - 1,
                "strides must be one shorter than channels",
            ),
            (
                all(p % (2 ** len(self.strides)) == 0 for p in self.patch),
                f"patch sizes must be multiples of {2 ** len(self.strides)} (the UNet's "
                "downsampling)",
            ),
            (self.iterations >= 1 and self.batch_size >= 1, "iterations and batch_size >= 1"),
            (0 <= self.p_tumor <= 1 and 0 <= self.p_foreground <= 1, "probabilities in [0, 1]"),
            (0 < self.test_fraction < 1, "test_fraction must be in (0, 1)"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise EvaluationInputError(
                    f"benchmark preset {self.preset}",
                    f"{message}; got {self}",
                    "change the overridden setting (e.g. pass --iterations >= 1)",
                )

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def fingerprint(self) -> str:
        """Short hash of the settings (a checkpoint only resumes under identical settings)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PRESETS: dict[str, BenchConfig] = {
    "tiny": BenchConfig(),
    "full": BenchConfig(
        preset="full",
        spacing_mm=1.0,
        patch=(96, 96, 96),
        channels=(32, 64, 128, 256, 320),
        strides=(2, 2, 2, 2),
        res_units=2,
        iterations=40_000,
        batch_size=2,
        lr=4e-4,
        warmup_fraction=0.025,
        checkpoint_every=1000,
        sw_overlap=0.5,
    ),
}


def preset(name: str, **overrides: Any) -> BenchConfig:
    """A preset with some fields replaced (e.g. ``preset("tiny", iterations=30)``)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return replace(PRESETS[name], **overrides)

"""Tiny synthetic CT cases for the generative-model tests (no phantom module dependency).

Each case: a 40 x 40 x 32 volume at 1.5 x 1.5 x 2.0 mm (x, y, z), air outside an elliptic body
of soft tissue (~40 HU), an ellipsoid "liver" (~100 HU) with smooth texture, and two darker
blobs (~-40 HU relative) saved as ``liver_tumor.nii.gz``. Written in the atlas layout
``<case>/ct.nii.gz`` + ``<case>/segmentations/{liver,liver_tumor}.nii.gz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from synth_backend.io import save_volume

SHAPE = (40, 40, 32)
SPACING = (1.5, 1.5, 2.0)


def make_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ct HU float32, liver uint8, tumor uint8, affine) of one synthetic case."""
    rng = np.random.default_rng(seed)
    mm = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(SHAPE, SPACING, strict=True)], indexing="ij")
    )
    centre = np.array([n * s / 2 for n, s in zip(SHAPE, SPACING, strict=True)])[:, None, None, None]
    d = mm - centre
    body = (d[0] / 28) ** 2 + (d[1] / 24) ** 2 <= 1
    liver = (d[0] / 20) ** 2 + (d[1] / 16) ** 2 + (d[2] / 22) ** 2 <= 1
    ct = np.where(body, 40.0, -1000.0).astype(np.float32)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), 1.5) * 25
    ct[liver] = 100.0 + texture[liver]
    tumor = np.zeros(SHAPE, dtype=bool)
    for _ in range(2):
        c = np.array([rng.uniform(-8, 8), rng.uniform(-6, 6), rng.uniform(-10, 10)])
        r = rng.uniform(4, 7)
        tumor |= ((d - c[:, None, None, None]) ** 2).sum(0) <= r * r
    tumor &= liver
    ct[tumor] -= 60.0 + 10 * rng.normal(0, 1, int(tumor.sum()))
    ct += rng.normal(0, 8, SHAPE).astype(np.float32)
    affine = np.diag([*SPACING, 1.0])
    return ct.astype(np.float32), liver.astype(np.uint8), tumor.astype(np.uint8), affine


def write_cases(root: Path, n: int = 2) -> Path:
    """Write ``n`` cases under ``root`` in the atlas layout; returns ``root``."""
    for i in range(n):
        ct, liver, tumor, affine = make_case(i)
        case = root / f"case{i:02d}"
        save_volume(ct, affine, case / "ct.nii.gz", "ct")
        save_volume(liver, affine, case / "segmentations" / "liver.nii.gz", "mask")
        save_volume(tumor, affine, case / "segmentations" / "liver_tumor.nii.gz", "mask")
    return root


# -- tiny trained models shared by the generative tests (cached per pytest session) -----------
TEST_PATCH = 16  # 16 mm cube: latent 4^3; the tiny tumors (r = 4 mm) fit


def limit_torch_threads():
    """Generator for an autouse fixture: one torch thread (the 2 shared CPU cores are
    oversubscribed otherwise, which makes small convolutions ~5x slower), restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_autoencoder(base: Path) -> tuple[Path, Path]:
    """(data dir, autoencoder final.pt) trained once under ``base`` (reused when present)."""
    from synth_backend.autoencoder.train import train_autoencoder
    from synth_backend.training.config import build_config
    from synth_backend.training.data import find_cases

    data = base / "data"
    if not data.is_dir():
        write_cases(data, 2)
    final = base / "ae" / "final.pt"
    if not final.is_file():
        cfg = build_config(
            "autoencoder",
            "tiny",
            overrides=[f"patch_size={TEST_PATCH}", "train.steps=150", "train.lr=0.003"],
        )
        train_autoencoder(find_cases(data, "liver"), cfg, base / "ae", progress=False)
    return data, final

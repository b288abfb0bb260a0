"""Benchmark data: catalog volumes on the benchmark grid, the train/test split, patch sampling.

Every array is (x, y, z) on an isotropic grid of ``config.spacing_mm`` mm, cropped to the organ's
bounding box plus ``config.organ_margin_mm``; CT in HU (float32), masks boolean.

Sampling is split from applying (STYLE habit 4): :meth:`PatchSampler.next_spec` draws a
:class:`SampleSpec` (which volume, whether to add a synthetic tumor, the synthesis seed, the
patch-centre seed) from the sampler's ``numpy.random.Generator``; :meth:`PatchSampler.patch`
turns a spec into arrays deterministically. Same seed -> same specs -> same patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evaluation.segbench.config import HU_WINDOW, BenchConfig
from evaluation.tables import EvaluationInputError
from synth_backend.geometry import bounding_box, resample_to_spacing

if TYPE_CHECKING:
    from synth_backend.io import Volume

TUMOR_KINDS = ("real", "phantom_lesion")


@dataclass(frozen=True)
class BenchCase:
    """One volume's organ region on the benchmark grid (see module docstring)."""

    case_id: str
    ct: np.ndarray
    organ: np.ndarray
    tumor: np.ndarray
    tumor_kind: str  # none | real | phantom_lesion
    spacing: tuple[float, float, float]

    @property
    def has_tumor(self) -> bool:
        return bool(self.tumor.any())


def prepare_case(
    case_id: str,
    ct: Volume,
    organ: np.ndarray,
    tumor: np.ndarray,
    tumor_kind: str,
    config: BenchConfig,
) -> BenchCase:
    """Crop ``ct`` (a ``synth_backend.io.Volume``) and its masks to the organ box + margin on
    the file's grid (so only the crop is resampled), then resample to the benchmark spacing
    (linear for CT, nearest for masks)."""
    spacing = ct.spacing
    margin = [int(m) for m in np.ceil(config.organ_margin_mm / np.asarray(spacing))]
    box = bounding_box(organ, margin)
    target = (config.spacing_mm,) * 3
    arrays = []
    for array, is_mask in ((ct.array[box], False), (organ[box], True), (tumor[box], True)):
        out, _ = resample_to_spacing(
            array.astype(np.uint8) if is_mask else array,
            ct.affine,
            spacing,
            target,
            is_mask=is_mask,
        )
        arrays.append(out.astype(bool) if is_mask else out.astype(np.float32))
    return BenchCase(
        case_id, arrays[0], arrays[1], arrays[2], tumor_kind if arrays[2].any() else "none", target
    )


def catalog_cases(
    session, organ: str, config: BenchConfig, *, dataset: str | None = None, progress: bool = False
) -> list[BenchCase]:
    """Non-synthetic catalog volumes that contain ``organ``: healthy ones and those with a real
    tumor or phantom lesion in it, on the benchmark grid, sorted by dataset and case id."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload
    from tqdm import tqdm

    from catalog.volumes import load_organ_mask, load_tumor_mask
    from db.models import Dataset, Origin, TumorKind, Volume, VolumeOrgan
    from synth_backend.io import load_volume

    query = (
        select(VolumeOrgan)
        .join(Volume)
        .join(Dataset)
        .where(
            VolumeOrgan.organ == organ,
            Volume.origin != Origin.SYNTHETIC,
            VolumeOrgan.tumor_kind.in_([TumorKind.NONE, TumorKind.REAL, TumorKind.PHANTOM_LESION]),
        )
        .options(selectinload(VolumeOrgan.volume).selectinload(Volume.dataset))
        .order_by(Dataset.name, Volume.case_id)
    )
    if dataset:
        query = query.where(Dataset.name == dataset)
    entries = list(session.scalars(query))
    cases = []
    for vo in tqdm(entries, desc=f"load {organ} volumes", unit="volume", disable=not progress):
        ct = load_volume(vo.volume.ct_path, "ct")
        cases.append(
            prepare_case(
                f"{vo.volume.dataset.name}/{vo.volume.case_id}",
                ct,
                load_organ_mask(vo, ct),
                load_tumor_mask(vo, ct),
                vo.tumor_kind.value,
                config,
            )
        )
    return cases


def folder_cases(
    folder: str | Path, organ: str, config: BenchConfig, *, progress: bool = False
) -> list[BenchCase]:
    """Cases of an AbdomenAtlas-layout folder (e.g. a phantom cohort) without a database: the
    folder is imported into a throw-away in-memory catalog with the regular importer."""
    from sqlalchemy.orm import Session

    from catalog.volumes import import_dataset
    from db.models import Base
    from db.session import make_engine

    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            import_dataset(session, "atlas", folder, organs=[organ], progress=progress)
            return catalog_cases(session, organ, config, progress=progress)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Split:
    train_tumor: list[BenchCase]
    train_healthy: list[BenchCase]
    test: list[BenchCase]


def split_cases(cases: Sequence[BenchCase], *, seed: int, test_fraction: float) -> Split:
    """Hold out ``test_fraction`` of the tumor volumes and, separately, of the healthy volumes
    (rounded, at least one of each kind that exists when there are two or more). The split
    depends only on the case ids and ``seed``, never on ``train_on``, so every arm of a
    comparison is tested on the same volumes."""
    ordered = sorted(cases, key=lambda c: c.case_id)
    rng = np.random.default_rng([seed, 101])
    parts: dict[bool, tuple[list[BenchCase], list[BenchCase]]] = {}
    for tumor in (True, False):
        group = [c for c in ordered if c.has_tumor == tumor]
        perm = rng.permutation(len(group))
        n_test = (
            min(len(group) - 1, max(1, round(test_fraction * len(group)))) if len(group) >= 2 else 0
        )
        parts[tumor] = ([group[i] for i in perm[n_test:]], [group[i] for i in perm[:n_test]])
    test = sorted(parts[True][1] + parts[False][1], key=lambda c: c.case_id)
    return Split(parts[True][0], parts[False][0], test)


@dataclass(frozen=True)
class SampleSpec:
    """One training sample: volume index, tumor insertion and its seed, patch-centre seed."""

    case: int
    add_tumor: bool
    synth_seed: int
    center_seed: int
    foreground: bool


def normalize_ct(ct: np.ndarray) -> np.ndarray:
    """HU -> [0, 1] over the abdominal window :data:`HU_WINDOW` (clipped)."""
    lo, hi = HU_WINDOW
    return np.clip((ct - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def extract_patch(
    array: np.ndarray, center: Sequence[int], size: Sequence[int], fill
) -> np.ndarray:
    """The ``size`` box centred on ``center`` (voxels); outside the array is ``fill``."""
    out = np.full(tuple(size), fill, dtype=array.dtype)
    src, dst = [], []
    for c, n, dim in zip(center, size, array.shape, strict=True):
        start = int(c) - n // 2
        lo, hi = max(start, 0), min(start + n, dim)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = array[tuple(src)]
    return out


class PatchSampler:
    """Training patches for ``train_on``: real tumors, or healthy volumes with on-the-fly
    synthetic tumors (a new tumor, from a fresh seed, every time a volume is drawn).

    ``real``: volumes are drawn from the training tumor volumes. Otherwise volumes are drawn
    from the training healthy volumes and a tumor is synthesized into the organ crop with
    probability ``config.p_tumor`` by ``synthesizer`` (a ``synth_backend`` Synthesizer).
    """

    def __init__(
        self,
        split: Split,
        train_on: str,
        organ: str,
        config: BenchConfig,
        rng: np.random.Generator,
        synthesizer=None,
        device: str = "cpu",
    ):
        self.cases = split.train_tumor if train_on == "real" else split.train_healthy
        if not self.cases:
            kind = "tumor (real or phantom lesion)" if train_on == "real" else "healthy"
            raise EvaluationInputError(
                "benchmark cases",
                f"no {kind} {organ} volumes left for training (train_on={train_on})",
                "import more volumes or use a larger phantom cohort",
            )
        if train_on != "real" and synthesizer is None:
            raise ValueError("a synthesizer is needed for synthetic training")
        self.train_on, self.organ, self.config = train_on, organ, config
        self.rng, self.synthesizer, self.device = rng, synthesizer, device

    def next_spec(self) -> SampleSpec:
        # a fixed number of draws per sample keeps the stream aligned whatever the branches
        case = int(self.rng.integers(len(self.cases)))
        u_tumor, u_fg = self.rng.random(2)
        synth_seed, center_seed = (int(s) for s in self.rng.integers(0, 2**31 - 1, size=2))
        add = self.train_on != "real" and bool(u_tumor < self.config.p_tumor)
        return SampleSpec(case, add, synth_seed, center_seed, bool(u_fg < self.config.p_foreground))

    def volume(self, spec: SampleSpec) -> tuple[np.ndarray, np.ndarray, dict]:
        """(CT HU, tumor mask, synthesis params) of the spec's volume, tumor inserted if asked."""
        case = self.cases[spec.case]
        if not spec.add_tumor:
            return case.ct, case.tumor, {}
        result = self.synthesizer.synthesize(
            case.ct,
            case.organ,
            organ=self.organ,
            spacing=case.spacing,
            seed=spec.synth_seed,
            device=self.device,
            **self.config.synth_options,
        )
        return result.ct.astype(np.float32), result.tumor_mask > 0, result.params

    def patch(self, spec: SampleSpec) -> tuple[np.ndarray, np.ndarray]:
        """(image (1, *patch) float32 in [0, 1], label (1, *patch) uint8) for ``spec``."""
        case = self.cases[spec.case]
        ct, tumor, _ = self.volume(spec)
        rng = np.random.default_rng(spec.center_seed)
        where = tumor if (spec.foreground and tumor.any()) else case.organ
        idx = np.flatnonzero(where)
        center = np.unravel_index(idx[rng.integers(idx.size)], where.shape)
        image = extract_patch(normalize_ct(ct), center, self.config.patch, np.float32(0.0))
        label = extract_patch(tumor.astype(np.uint8), center, self.config.patch, np.uint8(0))
        return image[None], label[None]

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray, list[SampleSpec]]:
        specs = [self.next_spec() for _ in range(n)]
        pairs = [self.patch(s) for s in specs]
        return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), specs)

"""Training cases and 1 mm patches for the autoencoder and the latent generative models.

A *case* is a CT, an organ mask and optionally a tumor mask on the same grid. Cases come from
a directory in the atlas / phantom layout (``<case>/ct.nii.gz``,
``<case>/segmentations/<organ>.nii.gz`` and, when present, ``<organ>_tumor.nii.gz``) or from a
manifest file with one ``ct,organ_mask[,tumor_mask]`` line per case (paths relative to the
manifest). Volumes are read with :func:`synth_backend.io.load_volume`, resampled to 1 mm
isotropic and cropped to the organ's bounding box plus one patch of margin; with a
``cache_dir`` the crop is written once as ``.npy`` files and memory-mapped afterwards (a
training run reads and resamples each CT once, not once per batch, and RAM holds only the
pages patches touch). Patches are (x, y, z) cubes of ``patch_size`` voxels.

When a case has no tumor mask, :class:`PatchSampler` can paste an ellipsoid pseudo tumor with
the hand-crafted look (``tumor_source="ellipsoid"`` or ``"auto"``): diffusion models need tumor
examples, and this is the label-free recipe of Hu et al. Real masks always win under ``auto``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError
from synth_backend.geometry import resample_to_spacing
from synth_backend.io import check_same_grid, load_volume, sha256_file
from synth_backend.training.pseudo_tumors import paste_pseudo_tumor

AIR_HU = -1024.0
CACHE_DIR = "patch_cache"  # under a training run's output folder
CACHE_VERSION = 1


class DataError(InputError):
    """Training data that cannot be used as given: '<folder, file or case>: <problem>; <fix>'."""


@dataclass(frozen=True)
class Case:
    """Paths of one training case. A mask may be the union of several files (two IRCAD tumor
    files, kidney_left + kidney_right); ``*_labels`` select values in multi-label files
    (None: any nonzero voxel). ``tumor`` is empty when the case has no tumor annotation."""

    name: str
    ct: Path
    organ: tuple[Path, ...]
    tumor: tuple[Path, ...] = ()
    organ_labels: tuple[int, ...] | None = None
    tumor_labels: tuple[int, ...] | None = None

    def files(self) -> list[Path]:
        return [self.ct, *self.organ, *self.tumor]


@dataclass
class LoadedCase:
    """A case on the 1 mm grid: CT in HU (float32), organ and tumor masks (bool), (x, y, z)."""

    ct: np.ndarray
    organ: np.ndarray
    tumor: np.ndarray | None


def discover_cases(data_dir: str | os.PathLike, organ: str) -> list[Case]:
    """Cases of the atlas / phantom layout under ``data_dir`` that have a mask for ``organ``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(
            root,
            "data directory does not exist",
            "pass a folder holding <case>/ct.nii.gz and <case>/segmentations/<organ>.nii.gz",
        )
    cases = []
    for ct in sorted(root.glob("*/ct.nii*")):
        seg = ct.parent / "segmentations"
        organ_file = next(iter(sorted(seg.glob(f"{organ}.nii*"))), None)
        if organ_file is None:
            continue
        tumor_file = next(iter(sorted(seg.glob(f"{organ}_tumor.nii*"))), None)
        cases.append(
            Case(ct.parent.name, ct, (organ_file,), (tumor_file,) if tumor_file is not None else ())
        )
    if not cases:
        raise DataError(
            root,
            f"no case with ct.nii.gz and segmentations/{organ}.nii.gz",
            "check the layout or pass a manifest file with ct,organ[,tumor] lines",
        )
    return cases


def read_manifest(path: str | os.PathLike) -> list[Case]:
    """Cases from a CSV/text file of ``ct,organ_mask[,tumor_mask]`` lines (``#`` comments).

    A mask field may list several files separated by ``;`` (their union is used), e.g.
    ``ct.nii.gz,mask_liver.nii.gz,mask_livertumor1.nii.gz;mask_livertumor2.nii.gz``.
    """
    path = Path(path)
    cases = []
    with open(path, newline="") as handle:
        for i, row in enumerate(csv.reader(handle)):
            row = [c.strip() for c in row if c.strip()]
            if not row or row[0].startswith("#") or row[0] == "ct":
                continue
            if len(row) not in (2, 3):
                raise DataError(
                    path,
                    f"line {i + 1} must be ct,organ_mask[,tumor_mask], got {len(row)} fields",
                    "fix the manifest",
                )
            files = [
                tuple((path.parent / p.strip()).resolve() for p in field.split(";"))
                for field in row
            ]
            cases.append(
                Case(f"case{i:04d}", files[0][0], files[1], files[2] if len(files) == 3 else ())
            )
    if not cases:
        raise DataError(path, "manifest lists no case", "add ct,organ_mask[,tumor_mask] lines")
    return cases


def find_cases(data: str | os.PathLike, organ: str) -> list[Case]:
    """A directory (atlas layout) or a manifest file."""
    return read_manifest(data) if Path(data).is_file() else discover_cases(data, organ)


def data_hashes(cases: list[Case]) -> dict[str, str]:
    """sha256 of every file used for training (recorded in the checkpoint)."""
    return {str(p): sha256_file(p) for case in cases for p in case.files()}


def _union(ct, paths: tuple[Path, ...], labels: tuple[int, ...] | None) -> np.ndarray:
    out = np.zeros(ct.shape, dtype=bool)
    for path in paths:
        mask = load_volume(path, "mask")
        check_same_grid(ct, mask)
        out |= np.isin(mask.array, labels) if labels else mask.array > 0
    return out


def load_case(case: Case) -> LoadedCase:
    """Read a case and resample it to 1 mm isotropic (linear for CT, nearest for masks)."""
    ct = load_volume(case.ct, "ct")
    target = (1.0, 1.0, 1.0)
    organ = _union(ct, case.organ, case.organ_labels).astype(np.uint8)
    ct_1mm, _ = resample_to_spacing(ct.array, ct.affine, ct.spacing, target, is_mask=False)
    organ_1mm, _ = resample_to_spacing(organ, ct.affine, ct.spacing, target, is_mask=True)
    tumor_1mm = None
    if case.tumor:
        tumor = _union(ct, case.tumor, case.tumor_labels).astype(np.uint8)
        tumor_1mm = resample_to_spacing(tumor, ct.affine, ct.spacing, target, is_mask=True)[0] > 0
        if not tumor_1mm.any():
            tumor_1mm = None
    if not (organ_1mm > 0).any():
        raise DataError(case.organ[0], "organ mask is empty", "pass the mask of this organ")
    return LoadedCase(ct_1mm.astype(np.float32), organ_1mm > 0, tumor_1mm)


def crop_to_organ(loaded: LoadedCase, margin: int) -> LoadedCase:
    """The organ's bounding box plus ``margin`` voxels (clipped to the volume): every patch a
    sampler centres in the organ, or within ``margin`` of it, lies inside this crop."""
    idx = np.argwhere(loaded.organ)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, loaded.organ.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    tumor = None if loaded.tumor is None else loaded.tumor[box]
    if tumor is not None and not tumor.any():
        tumor = None
    return LoadedCase(
        np.ascontiguousarray(loaded.ct[box]),
        np.ascontiguousarray(loaded.organ[box]),
        None if tumor is None else np.ascontiguousarray(tumor),
    )


def _cache_key(case: Case, margin: int) -> str:
    """Identifies a case's crop by its files (path, size, mtime), labels and margin."""
    files = [
        [str(Path(p).resolve()), os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in case.files()
    ]
    text = json.dumps(
        [
            CACHE_VERSION,
            files,
            case.organ_labels,
            case.tumor_labels,
            [len(case.organ), len(case.tumor)],
            margin,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_case(case: Case, margin: int, cache_dir: str | os.PathLike | None) -> LoadedCase:
    """:func:`load_case` cropped by :func:`crop_to_organ`; with ``cache_dir`` the crop is
    stored as ``.npy`` files (written atomically) and returned memory-mapped."""
    if cache_dir is None:
        return crop_to_organ(load_case(case), margin)
    folder = Path(cache_dir) / _cache_key(case, margin)
    if not (folder / "ct.npy").is_file():
        crop = crop_to_organ(load_case(case), margin)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.save(tmp / "organ.npy", crop.organ)
        if crop.tumor is not None:
            np.save(tmp / "tumor.npy", crop.tumor)
        np.save(tmp / "ct.npy", crop.ct)  # written last: its presence marks a complete entry
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    tumor = folder / "tumor.npy"
    return LoadedCase(
        np.load(folder / "ct.npy", mmap_mode="r"),
        np.load(folder / "organ.npy", mmap_mode="r"),
        np.load(tumor, mmap_mode="r") if tumor.is_file() else None,
    )


def crop_patch(array: np.ndarray, center: np.ndarray, size: int, fill: float) -> np.ndarray:
    """Cube of ``size`` voxels centred on ``center`` (x, y, z); outside the array -> ``fill``."""
    lo = np.asarray(center, dtype=int) - size // 2
    out = np.full((size,) * 3, fill, dtype=array.dtype)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(lo + size, array.shape)
    if np.any(src_hi <= src_lo):
        return out
    dst_lo = src_lo - lo
    dst = tuple(slice(a, a + (b - c)) for a, b, c in zip(dst_lo, src_hi, src_lo, strict=True))
    out[dst] = array[tuple(slice(a, b) for a, b in zip(src_lo, src_hi, strict=True))]
    return out


class PatchSampler:
    """Draws batches of 1 mm patches from a list of cases with a caller-supplied generator.

    ``sample(rng, batch_size)`` returns a dict of float32 arrays shaped (B, 1, P, P, P):
    ``ct`` in HU, ``organ`` and ``tumor`` in {0, 1}. ``mode="any"`` centres patches in the organ
    with probability ``organ_fraction`` and anywhere in the volume otherwise (autoencoder);
    ``mode="tumor"`` centres them near a tumor, real or pseudo (diffusion / flow models);
    pseudo tumors follow the DiffTumor ``stage`` mix (early | late | medium | large) or, when
    given, one tumor of a class drawn from ``sizes`` (TumorGen). "Anywhere" means anywhere in
    the organ's box plus one patch of margin (the cached crop, see :func:`cached_case`).
    """

    def __init__(
        self,
        cases: list[Case],
        patch_size: int,
        *,
        mode: str = "any",
        organ_fraction: float = 0.8,
        tumor_source: str = "auto",
        stage: str | None = None,
        sizes: tuple[str, ...] | None = None,
        max_cached_cases: int = 8,
        cache_dir: str | os.PathLike | None = None,
    ):
        if not cases:
            raise DataError("--data", "no training case given", "pass --data DIR or a manifest")
        if mode not in ("any", "tumor"):
            raise ValueError(f"mode must be 'any' or 'tumor', got {mode!r}")
        if tumor_source not in ("auto", "real", "ellipsoid"):
            raise ValueError(f"tumor_source must be auto, real or ellipsoid, got {tumor_source!r}")
        self.cases = cases
        self.patch_size = int(patch_size)
        self.mode = mode
        self.organ_fraction = organ_fraction
        self.tumor_source = tumor_source
        self.stage = stage
        self.sizes = tuple(sizes) if sizes else None
        self.cache_dir = cache_dir
        self.max_cached = max_cached_cases
        self._cache: OrderedDict[int, LoadedCase] = OrderedDict()
        # flat indices of organ / tumor voxels per cached case: np.argwhere over a whole 1 mm
        # CT costs tens of ms, once per case instead of once per patch
        self._coords: dict[tuple[int, str], np.ndarray] = {}

    def case(self, index: int) -> LoadedCase:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        loaded = cached_case(self.cases[index], self.patch_size, self.cache_dir)
        if self.mode == "tumor" and self.tumor_source == "real" and loaded.tumor is None:
            raise DataError(
                self.cases[index].ct,
                "case has no tumor mask but tumor_source is 'real'",
                "add <organ>_tumor.nii.gz or use tumor_source=auto",
            )
        self._cache[index] = loaded
        while len(self._cache) > self.max_cached:
            evicted, _ = self._cache.popitem(last=False)
            self._coords.pop((evicted, "organ"), None)
            self._coords.pop((evicted, "tumor"), None)
        return loaded

    def _voxel(self, index: int, kind: str, rng: np.random.Generator) -> np.ndarray:
        """A uniformly drawn (x, y, z) voxel of the case's ``kind`` mask ("organ" | "tumor");
        the same draw as ``np.argwhere(mask)[rng.integers(n)]`` (both list voxels in C order)."""
        mask = getattr(self.case(index), kind)
        key = (index, kind)
        if key not in self._coords:
            self._coords[key] = np.flatnonzero(mask)
        flat = self._coords[key]
        return np.array(np.unravel_index(flat[rng.integers(len(flat))], mask.shape))

    def _one(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = int(rng.integers(len(self.cases)))
        case = self.case(index)
        p = self.patch_size
        use_real = (
            self.mode == "tumor" and case.tumor is not None and self.tumor_source != "ellipsoid"
        )
        if use_real:
            # random shift up to p/4 keeps the tumor inside the patch but off-centre
            center = self._voxel(index, "tumor", rng) + rng.integers(-p // 4, p // 4 + 1, size=3)
        elif self.mode == "any" and rng.random() >= self.organ_fraction:
            center = np.array([rng.integers(n) for n in case.ct.shape])
        else:
            center = self._voxel(index, "organ", rng)
        ct = crop_patch(case.ct, center, p, AIR_HU)
        organ = crop_patch(case.organ, center, p, False)
        if use_real:
            assert case.tumor is not None  # use_real requires it
            tumor = crop_patch(case.tumor, center, p, False)
        elif self.mode == "tumor":
            ct, tumor = paste_pseudo_tumor(
                ct, organ, rng, stage=self.stage or "early", sizes=self.sizes
            )
        else:
            tumor = np.zeros_like(organ)
        return ct, organ, tumor

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        items = [self._one(rng) for _ in range(batch_size)]
        return {
            key: np.stack([it[i] for it in items])[:, None].astype(np.float32)
            for i, key in enumerate(("ct", "organ", "tumor"))
        }

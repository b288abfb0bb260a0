"""Volume IO: read NIfTI/NRRD into canonical RAS arrays, write results in the input's own grid.

Layout convention everywhere in the project: arrays are indexed (x, y, z) in RAS+ orientation
(nibabel's canonical), spacing in mm. CT is HU (int16 on disk, float32 in memory while
processing); masks are uint8 label maps.

A :class:`Volume` remembers the file's original orientation so that a synthesized CT can be
written back onto exactly the input's voxel grid and affine (``save_like``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage

from synth_backend.errors import VolumeError

Kind = Literal["ct", "mask"]

# A volume claiming more than this many bytes in memory is refused before reading: protects
# against hostile headers (a 100 GB claim in a 1 kB file) and against 4D series passed by mistake.
MAX_VOXELS = 1024 * 1024 * 1024 // 2  # 512 M voxels = 2 GiB as float32
# HU plausibility: real CT stores air near -1000; padding can go to -3024 (scanner fill values).
HU_MIN, HU_MAX = -3100, 40000

NRRD_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass
class Volume:
    """An image in canonical RAS voxel order.

    ``array`` is (x, y, z); ``affine`` maps RAS voxel indices to RAS mm. ``source_ornt`` is the
    nibabel orientation transform from the file's axes to RAS, used to write results back.
    """

    array: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    source_ornt: np.ndarray = field(default_factory=lambda: nib.orientations.axcodes2ornt("RAS"))
    source_affine: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return spacing_from_affine(self.affine)

    def with_array(self, array: np.ndarray) -> Volume:
        """Same grid and provenance, new voxel values."""
        if array.shape != self.array.shape:
            raise ValueError(
                f"array shape {array.shape} must equal volume shape {self.array.shape}"
            )
        return Volume(array, self.affine.copy(), self.path, self.source_ornt, self.source_affine)

    def to_source_array(self, array: np.ndarray) -> np.ndarray:
        """Map an RAS-ordered array back to the file's original axis order."""
        ras = nib.orientations.axcodes2ornt("RAS")
        back = nib.orientations.ornt_transform(ras, self.source_ornt)
        return nib.orientations.apply_orientation(array, back)


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm: the column norms of the affine's 3x3 part."""
    return tuple(float(v) for v in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_volume(path: str | os.PathLike, kind: Kind = "ct") -> Volume:
    """Read a NIfTI (or NRRD/MHA via SimpleITK) file and reorient it to RAS.

    CT comes back as float32 HU, masks as uint8. Raises :class:`VolumeError` naming the file,
    the problem and the fix for unreadable, truncated, non-3D, oversized, non-finite or
    implausible inputs.
    """
    path = Path(path)
    if not path.is_file():
        raise VolumeError(path, "file does not exist", "check the path")
    if path.name.lower().endswith(NRRD_SUFFIXES):
        raw, affine = _read_sitk(path)
    else:
        raw, affine = _read_nifti(path)
    raw = _squeeze_to_3d(raw, path)
    ornt = nib.orientations.io_orientation(affine)
    array = nib.orientations.apply_orientation(raw, ornt)
    ras_affine = affine @ nib.orientations.inv_ornt_aff(ornt, raw.shape)
    array = validate_ct(array, path) if kind == "ct" else validate_mask(array, path)
    return Volume(np.ascontiguousarray(array), ras_affine, path, ornt, affine)


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        # typed as the base FileBasedImage; every format read here is a spatial image
        img = cast(SpatialImage, nib.load(str(path)))
    except Exception as exc:  # nibabel raises many types for bad headers
        raise VolumeError(
            path,
            f"is not a readable NIfTI file ({exc})",
            "check the file is a .nii/.nii.gz image and was fully copied",
        ) from exc
    shape = img.shape
    n_vox = int(np.prod(shape, dtype=np.int64)) if shape else 0
    if n_vox == 0 or n_vox > MAX_VOXELS:
        raise VolumeError(
            path,
            f"header claims shape {shape} ({n_vox} voxels)",
            f"volumes must have between 1 and {MAX_VOXELS} voxels; "
            "check the header or split the series",
        )
    try:
        data = np.asanyarray(img.dataobj)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise VolumeError(
            path,
            f"is truncated or corrupt ({exc.__class__.__name__}: {exc})",
            "copy or export the file again",
        ) from exc
    return data, np.asarray(img.affine, dtype=np.float64)


def _read_sitk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise VolumeError(
            path,
            f"is not a readable image ({str(exc).splitlines()[0]})",
            "check the file format and that it was fully copied",
        ) from exc
    data = np.asarray(sitk.GetArrayFromImage(img)).transpose()  # ITK gives (z, y, x)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(img.GetSpacing())
    affine[:3, 3] = img.GetOrigin()
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # ITK is LPS, NIfTI is RAS
    return data, affine


def _squeeze_to_3d(data: np.ndarray, path: Path) -> np.ndarray:
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise VolumeError(
            path,
            f"must be a 3D volume, got shape {data.shape}",
            "pass one 3D volume (split 4D series, e.g. one phase per file)",
        )
    if min(data.shape) < 1:
        raise VolumeError(path, f"has an empty axis, shape {data.shape}", "check the file")
    return data


def validate_ct(array: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Return CT as float32 HU; refuse non-finite voxels and non-HU intensity ranges."""
    arr = np.asarray(array, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise VolumeError(
            path,
            f"contains {bad} NaN/inf voxels",
            "fix the conversion that produced the file or fill those voxels",
        )
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo < 50 or (lo >= -1.01 and hi <= 1.01) or (lo >= 0.0 and hi <= 255.0):
        raise VolumeError(
            path,
            f"intensity range [{lo:.3g}, {hi:.3g}] does not look like CT HU",
            "pass the original CT in Hounsfield units, not a normalized or "
            "windowed image (or a mask passed as CT)",
        )
    if lo < HU_MIN or hi > HU_MAX:
        raise VolumeError(
            path,
            f"intensity range [{lo:.3g}, {hi:.3g}] is outside [{HU_MIN}, {HU_MAX}] HU",
            "apply the DICOM rescale slope/intercept",
        )
    return arr


def validate_mask(array: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Return a uint8 label map; refuse fractional, negative or > 255 labels."""
    arr = np.asarray(array)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise VolumeError(path, "mask contains NaN/inf voxels", "re-export the mask")
        if not np.array_equal(arr, np.round(arr)):
            raise VolumeError(
                path,
                "mask labels must be integers, got fractional values",
                "pass a label map (not a probability map); threshold it first",
            )
    elif arr.dtype.kind not in "iub":
        raise VolumeError(path, f"mask dtype must be integer, got {arr.dtype}", "re-export")
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    if lo < 0 or hi > 255:
        raise VolumeError(
            path,
            f"mask labels must be in [0, 255], got [{lo}, {hi}]",
            "pass a label map with small non-negative integer labels",
        )
    return arr.astype(np.uint8)


def check_same_grid(a: Volume, b: Volume, *, atol_mm: float = 1e-3) -> None:
    """Raise unless two volumes share shape and affine (image/mask pairs must)."""
    if a.shape != b.shape:
        raise VolumeError(
            b.path,
            f"shape {b.shape} must equal the image's shape {a.shape} ({a.path})",
            "pass the mask that belongs to this image, or resample it onto the image grid",
        )
    if not np.allclose(a.affine, b.affine, atol=atol_mm):
        raise VolumeError(
            b.path,
            f"affine differs from the image's ({a.path})",
            "pass the mask that belongs to this image, or resample it onto the image grid",
        )


def save_volume(
    array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, kind: Kind = "ct"
) -> Path:
    """Write an (x, y, z) array atomically: CT as int16 HU (rounded, clipped), masks as uint8."""
    array = np.asarray(array)
    if kind == "ct":
        data = np.clip(np.rint(array), -32768, 32767).astype(np.int16)
    else:
        data = array.astype(np.uint8)
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    img.header.set_data_dtype(data.dtype)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    return atomic_write(Path(path), lambda tmp: nib.save(img, str(tmp)))


def save_like(
    reference: Volume, array: np.ndarray, path: str | os.PathLike, kind: Kind = "ct"
) -> Path:
    """Write an RAS array onto the reference file's original grid (same shape and affine)."""
    src_affine = (
        reference.source_affine if reference.source_affine is not None else reference.affine
    )
    return save_volume(reference.to_source_array(array), src_affine, path, kind)


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """An empty temporary folder beside ``final`` to fill; when the block succeeds it replaces
    ``final`` by a rename, when it fails it is removed: a folder named ``final`` is always
    complete (a pull interrupted half-way leaves nothing that looks done)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(path: Path, write) -> Path:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name.split('.')[0]}.", suffix=suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

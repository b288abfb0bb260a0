"""Blinded export: every case, real or synthetic, goes through exactly the same pipeline.

For each case: load the CT and masks in RAS (``synth_backend.io``), sample one box of a fixed
shape at the study spacing centred on the tumor (or organ region) with a single linear
interpolation (padding -1024 HU outside the scan), quantize to integer HU in int16 clipped to
[-1024, 3071], and write a fresh NIfTI header whose every field is identical across cases:
RAS axes, the same spacing and shape, an affine centred on the box (no scanner origin), qform
and sform code 1, empty descrip/aux_file/intent, the same optional window in cal_min/cal_max,
and a deterministic gzip stream (level 6, mtime 0, no file name). File name = opaque code.

Multi-focal cases (several connected lesions, e.g. hand-crafted's 3-10 tiny ones) are centred
on one lesion, the largest (:func:`choose_lesion`); the exported tumor crop keeps every lesion
voxel inside the box, and the chosen lesion is recorded with the case, with its voxel in the
blinded file (:func:`crop_lesion_voxel`) where the viewer puts its crosshair.
"""

from __future__ import annotations

import gzip
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from db.models import Volume as VolumeRow
from db.models import VolumeOrgan
from studies.errors import StudyError
from studies.spec import MAX_CROP_MM, MAX_CROP_VOXELS, Presentation, Window
from synth_backend.base import float3
from synth_backend.geometry import bounding_box
from synth_backend.io import atomic_write, load_volume

HU_PAD = -1024  # air; also the value outside the scanned field
HU_CLIP = (-1024, 3071)  # 12-bit CT range: hides scanner-specific fill values (-2048, -3024)
GZIP_LEVEL = 6
CODE_BYTES = 8  # 16 hex characters = 64 random bits per code


def new_code() -> str:
    """An unguessable case code (``secrets``): reveals nothing about arm, order or source."""
    return secrets.token_hex(CODE_BYTES)


@dataclass
class CaseArrays:
    """A catalog case in RAS (x, y, z): CT in HU (float32), boolean organ and tumor masks,
    the RAS voxel->mm affine and spacing (mm)."""

    ct: np.ndarray
    organ: np.ndarray
    tumor: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]


def load_case(volume: VolumeRow, organ: VolumeOrgan) -> CaseArrays:
    """Read one catalog case (masks checked against the CT grid by the catalog loaders); the
    tumor must be non-empty."""
    from catalog.volumes import load_organ_mask, load_tumor_mask

    ct = load_volume(volume.ct_path, kind="ct")
    if not organ.tumor_paths:
        raise StudyError(
            volume.ct_path,
            f"{organ.organ} has no tumor mask",
            "only volumes with a tumor can enter a study",
        )
    tumor = load_tumor_mask(organ, ct)
    if not tumor.any():
        raise StudyError(
            organ.tumor_paths[0], "tumor mask is empty", "re-import the case or exclude it"
        )
    return CaseArrays(ct.array, load_organ_mask(organ, ct), tumor, ct.affine, ct.spacing)


def box_center(mask: np.ndarray) -> np.ndarray:
    """Centre (x, y, z, in voxels) of the mask's bounding box; raises ValueError when empty."""
    box = bounding_box(mask)
    return np.array([(s.start + s.stop - 1) / 2.0 for s in box])


@dataclass(frozen=True)
class Lesion:
    """The lesion a case is centred on: its size rank (1 = largest) among ``n_lesions``
    connected components (6-connectivity, as the catalog counts them), voxel count, the
    equivalent-sphere diameter (mm) and its bounding-box centre (x, y, z source voxels)."""

    rank: int
    n_lesions: int
    voxels: int
    diameter_mm: float
    center_vox: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {
            "rule": "largest",
            "rank": self.rank,
            "n_lesions": self.n_lesions,
            "voxels": self.voxels,
            "diameter_mm": self.diameter_mm,
            "center_vox": [round(v, 2) for v in self.center_vox],
        }


def choose_lesion(tumor: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, Lesion]:
    """(boolean mask of the largest connected lesion, its :class:`Lesion`); ties go to the
    lowest label (first in C order). Raises ValueError for an empty mask."""
    from synth_backend.geometry import equivalent_diameter_mm

    labels, n = ndimage.label(np.asarray(tumor) > 0)
    if n == 0:
        raise ValueError("mask is empty")
    sizes = np.bincount(labels.ravel())[1:]
    label = int(np.argmax(sizes)) + 1
    mask = labels == label
    lesion = Lesion(
        1,
        int(n),
        int(sizes[label - 1]),
        round(equivalent_diameter_mm(int(sizes[label - 1]), spacing), 2),
        float3(box_center(mask)),
    )
    return mask, lesion


def extent_mm(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Bounding-box size (x, y, z) of a mask in mm."""
    box = bounding_box(mask)
    return np.array([(s.stop - s.start) * sp for s, sp in zip(box, spacing, strict=True)])


def target_shape(
    presentation: Presentation, organ_extents_mm: Sequence[np.ndarray] | None = None
) -> tuple[int, int, int]:
    """Voxel shape (x, y, z) shared by every case of a study.

    ``crop.around == 'tumor'``: the spec size (mm -> voxels at the target spacing, rounded).
    ``'organ'`` without a size: the largest organ box of the study plus twice ``margin_mm``.
    """
    crop, spacing = presentation.crop, np.asarray(presentation.spacing_mm)
    if crop.size is not None:
        size = np.asarray(crop.size, dtype=float)
        vox = size / spacing if crop.unit == "mm" else size
    else:
        if not organ_extents_mm:
            raise ValueError("organ extents are needed for crop.around = organ without a size")
        vox = (np.max(np.stack(organ_extents_mm), axis=0) + 2 * crop.margin_mm) / spacing
    shape = tuple(int(max(1, round(v))) for v in vox)
    mm = np.asarray(shape) * spacing
    if mm.max() > MAX_CROP_MM or int(np.prod(shape)) > MAX_CROP_VOXELS:
        # checked before any case array is allocated (organ-region boxes are only known here)
        raise StudyError(
            "presentation.crop",
            f"crop of {' x '.join(map(str, shape))} voxels ({np.round(mm, 1)} mm) "
            f"exceeds {MAX_CROP_MM:g} mm per axis or {MAX_CROP_VOXELS} voxels",
            "give presentation.crop.size or a coarser spacing_mm",
        )
    return shape  # type: ignore[return-value]


def sample_box(
    array: np.ndarray,
    spacing: Sequence[float],
    center_vox: Sequence[float] | np.ndarray,
    shape: Sequence[int],
    target_spacing: Sequence[float],
    *,
    order: int,
    cval: float,
) -> np.ndarray:
    """Resample a box of ``shape`` voxels at ``target_spacing`` mm centred on ``center_vox``.

    One interpolation pass (``order`` 1 for CT, 0 for masks), axes kept (RAS in, RAS out);
    points outside the source get ``cval``. Output voxel ``j`` samples source index
    ``center + (j - (shape - 1) / 2) * target / spacing``.
    """
    scale = np.asarray(target_spacing, float) / np.asarray(spacing, float)
    offset = np.asarray(center_vox, float) - (np.asarray(shape, float) - 1) / 2.0 * scale
    src = array.astype(np.float32, copy=False) if order > 0 else array.astype(np.uint8)
    return ndimage.affine_transform(
        src,
        scale,
        offset=offset,
        output_shape=tuple(shape),
        order=order,
        mode="constant",
        cval=cval,
        prefilter=False,
    )


def quantize_hu(ct: np.ndarray) -> np.ndarray:
    """Round to integer HU and clip to :data:`HU_CLIP`; int16, identical for both arms."""
    return np.clip(np.rint(ct), *HU_CLIP).astype(np.int16)


def crop_lesion_voxel(chosen_in_crop: np.ndarray) -> tuple[int, int, int] | None:
    """Voxel (i, j, k) of the blinded file at the bounding-box centre of the chosen lesion as
    resampled into the crop (rounded down, the rule ``studies.reading`` applies to a mask);
    None when no voxel of it survives. Taken from the chosen lesion itself, not the largest
    one left in the crop: an organ-region crop can cut the chosen lesion, and nearest-neighbour
    resampling can reorder lesions of about equal size."""
    if not chosen_in_crop.any():
        return None
    return tuple(
        int((s.start + s.stop - 1) // 2)  # type: ignore[return-value]
        for s in bounding_box(chosen_in_crop)
    )


def blind_arrays(
    case: CaseArrays, presentation: Presentation, shape: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, Lesion, int, tuple[int, int, int] | None]:
    """(int16 HU crop, uint8 tumor crop of every lesion in the box, the chosen lesion, its
    voxel count in the crop, its voxel in the crop (:func:`crop_lesion_voxel`)). The box is
    centred on the largest lesion (crop.around tumor) or on the organ's box (crop.around
    organ)."""
    chosen, lesion = choose_lesion(case.tumor, case.spacing)
    center = lesion.center_vox if presentation.crop.around == "tumor" else box_center(case.organ)
    target = presentation.spacing_mm
    ct = sample_box(case.ct, case.spacing, center, shape, target, order=1, cval=HU_PAD)
    tumor = sample_box(case.tumor, case.spacing, center, shape, target, order=0, cval=0)
    chosen_in_crop = sample_box(chosen, case.spacing, center, shape, target, order=0, cval=0) > 0
    return (
        quantize_hu(ct),
        tumor.astype(np.uint8),
        lesion,
        int(chosen_in_crop.sum()),
        crop_lesion_voxel(chosen_in_crop),
    )


def blinded_affine(shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """RAS affine with the given spacing whose world origin (0, 0, 0) is the box centre."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = -(np.asarray(shape, float) - 1) / 2.0 * np.asarray(spacing, float)
    return affine


def encode_nifti(
    array: np.ndarray, spacing: Sequence[float], window: Window | None, *, dtype: type = np.int16
) -> bytes:
    """A ``.nii.gz`` byte string with a fresh header (see module docstring); deterministic."""
    data: np.ndarray = np.asarray(array).astype(dtype)
    affine = blinded_affine(data.shape, spacing)
    img = nib.Nifti1Image(data, affine)
    hdr = img.header
    hdr.set_data_dtype(dtype)
    hdr.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    hdr["descrip"] = b""
    hdr["aux_file"] = b""
    hdr["intent_name"] = b""
    hdr["db_name"] = b""
    if window is not None:
        lo, hi = window.range
        hdr["cal_min"], hdr["cal_max"] = lo, hi
    return gzip.compress(img.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0)


def write_bytes(path: Path, payload: bytes) -> Path:
    """Atomic write (temporary file + rename)."""
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(payload))


@dataclass(frozen=True)
class BlindedCase:
    """A written blinded case: ``image_path`` is what readers get; ``mask_path`` (tumor crop,
    server-side only) feeds the audit and evaluation."""

    code: str
    image_path: Path
    mask_path: Path
    image_bytes: int
    lesion: Lesion
    lesion_voxel: tuple[int, int, int]


def export_case(
    case: CaseArrays, presentation: Presentation, shape: Sequence[int], out_dir: Path, code: str
) -> tuple[BlindedCase, np.ndarray, np.ndarray, bytes]:
    """Blind one case into ``out_dir/images/<code>.nii.gz`` (+ ``masks/<code>.nii.gz``).

    Returns the record, the int16 CT crop, the tumor crop and the image file's bytes (the
    audit measures exactly what readers receive).
    """
    ct, tumor, lesion, in_crop, voxel = blind_arrays(case, presentation, shape)
    if in_crop == 0:  # centred on it, so only a lesion smaller than one study voxel vanishes
        raise StudyError(
            f"case {code}",
            f"its largest lesion ({lesion.voxels} voxels, {lesion.diameter_mm:g} mm) does "
            f"not survive resampling to {tuple(presentation.spacing_mm)} mm or lies outside "
            f"the {tuple(shape)} crop",
            "use a finer presentation.spacing_mm, a larger crop or "
            "selection.tumor_diameter_mm to exclude it",
        )
    assert voxel is not None  # in_crop > 0, so crop_lesion_voxel found a voxel
    window = presentation.window if presentation.window_in_header else None
    image = encode_nifti(ct, presentation.spacing_mm, window)
    image_path = write_bytes(out_dir / "images" / f"{code}.nii.gz", image)
    mask_path = write_bytes(
        out_dir / "masks" / f"{code}.nii.gz",
        encode_nifti(tumor, presentation.spacing_mm, None, dtype=np.uint8),
    )
    return BlindedCase(code, image_path, mask_path, len(image), lesion, voxel), ct, tumor, image

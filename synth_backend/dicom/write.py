"""Write a 3D int16 HU volume as a classic CT Image Storage series (pydicom).

The volume is an (x, y, z) array with its RAS affine (as :func:`synth_backend.io.load_volume`
or a NIfTI file gives it): column index = array axis 0, row index = axis 1, slice = axis 2, so
the series has exactly the array's grid (``ImageOrientationPatient`` from the affine's first
two columns). Pixels are stored signed (PixelRepresentation 1, slope 1, intercept 0): the
stored value is the HU. Every header field comes from ``fixed`` or the geometry, so two
volumes of one shape and affine written with one ``fixed`` differ only in UIDs and pixels.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from synth_backend.dicom.errors import DicomError
from synth_backend.dicom.scan import CT_IMAGE

# Instance-specific UIDs: the only header elements allowed to differ between blinded cases.
CASE_UID_KEYWORDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "MediaStorageSOPInstanceUID",
)
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _ds(value: float) -> str:
    """A DICOM DS string (at most 16 characters), exact for the values we write."""
    text = f"{value:.10g}"
    if len(text) > 16:
        text = f"{value:.8g}"
    return "0" if text == "-0" else text


def ct_series(
    array_xyz: np.ndarray,
    affine_ras: np.ndarray,
    *,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    sop_uids: Sequence[str],
    fixed: Mapping[str, Any],
) -> list[Dataset]:
    """One pydicom Dataset per slice (z index order); see the module docstring."""
    data = np.asarray(array_xyz)
    if data.ndim != 3:
        raise DicomError(
            "<array>",
            f"must be a 3D (x, y, z) volume, got shape {data.shape}",
            "pass one CT volume",
        )
    if data.dtype != np.int16:
        if data.min() < -32768 or data.max() > 32767 or not np.array_equal(data, np.rint(data)):
            raise DicomError(
                "<array>", "CT values must be integer HU within int16", "quantize the volume first"
            )
        data = data.astype(np.int16)
    lps = LPS @ np.asarray(affine_ras, float)
    cols_mm, rows_mm, slice_vec = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    ps_col, ps_row, dz = (float(np.linalg.norm(v)) for v in (cols_mm, rows_mm, slice_vec))
    row_dir, col_dir = cols_mm / ps_col, rows_mm / ps_row
    normal = np.cross(row_dir, col_dir)
    if abs(abs(float(normal @ slice_vec / dz)) - 1) > 1e-6 or abs(row_dir @ col_dir) > 1e-6:
        raise DicomError(
            "<affine>",
            "the volume's axes are not orthogonal",
            "a classic CT series needs an orthogonal grid (resample it first)",
        )
    if len(sop_uids) != data.shape[2]:
        raise ValueError(f"need {data.shape[2]} SOP Instance UIDs, got {len(sop_uids)}")
    out = []
    for k in range(data.shape[2]):
        ds = Dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CT_IMAGE)
        meta.MediaStorageSOPInstanceUID = UID(sop_uids[k])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "TURINGCT"
        ds.file_meta = meta
        ds.SOPClassUID = CT_IMAGE
        ds.SOPInstanceUID = sop_uids[k]
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.Modality = "CT"
        for keyword, value in fixed.items():
            setattr(ds, keyword, value)
        position = lps[:3, 3] + k * slice_vec
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        ds.SliceLocation = _ds(float(position @ normal))
        ds.PixelSpacing = [_ds(ps_row), _ds(ps_col)]
        ds.SliceThickness = _ds(dz)
        ds.SpacingBetweenSlices = _ds(dz)
        ds.Rows, ds.Columns = int(data.shape[1]), int(data.shape[0])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        # slice k: rows along y, columns along x -> (rows, columns) = transpose of [:, :, k]
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T).astype("<i2").tobytes()
        out.append(ds)
    return out


def write_series(datasets: Sequence[Dataset], folder: Path, *, suffix: str = ".dcm") -> list[Path]:
    """Write datasets as ``IM00001.dcm``... (little endian, with the 128-byte preamble)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets, start=1):
        path = folder / f"IM{i:05d}{suffix}"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def new_uid(root: str, digits: int = 30) -> str:
    """A random UID under ``root`` (which ends with '.'): always the same length for one root,
    so header lengths (group lengths, padding, file sizes) do not vary between cases."""
    n = min(digits, 64 - len(root))
    if n < 10:
        raise ValueError(f"UID root {root!r} is too long; keep it under 54 characters")
    return root + str(10 ** (n - 1) + secrets.randbelow(9 * 10 ** (n - 1)))


def write_volume_as_series(
    array_xyz: np.ndarray,
    affine_ras: np.ndarray,
    folder: Path,
    fixed: Mapping[str, Any] | None = None,
    root: str | None = None,
) -> list[Path]:
    """Convenience for tests and tools: one volume -> a folder of CT files with fresh UIDs."""
    root = root or generate_uid()[:40].rstrip(".") + "."
    fixed = {"PatientName": "TEST^VOLUME", "PatientID": "TEST", **(fixed or {})}
    n = np.shape(array_xyz)[2]
    datasets = ct_series(
        array_xyz,
        affine_ras,
        study_uid=new_uid(root),
        series_uid=new_uid(root),
        frame_of_reference_uid=new_uid(root),
        sop_uids=[new_uid(root) for _ in range(n)],
        fixed=fixed,
    )
    return write_series(datasets, Path(folder))

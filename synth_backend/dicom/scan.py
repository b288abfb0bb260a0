"""Find DICOM files under a path (any folder layout, with or without extension) and sort
them into series: CT image series, SEG and RTSTRUCT objects, and what is skipped (localizers,
dose reports, secondary captures, other modalities) with a note saying why.

Only headers are read here (``stop_before_pixels``); pixel data is read by :mod:`convert`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from synth_backend.dicom.errors import DicomError

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
DICOMDIR = "1.2.840.10008.1.3.10"
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
# A folder with more files than this is refused before any is opened (bounded time).
MAX_FILES = 200_000


@dataclass
class Instance:
    path: Path
    header: pydicom.Dataset  # without pixel data


@dataclass
class Series:
    uid: str
    kind: str  # "ct" | "seg" | "rtstruct"
    instances: list[Instance] = field(default_factory=list)

    @property
    def first(self) -> pydicom.Dataset:
        return self.instances[0].header

    @property
    def description(self) -> str:
        ds = self.first
        return (
            f"series {self.uid} (#{ds.get('SeriesNumber', '?')} "
            f"{str(ds.get('SeriesDescription', '')).strip()!r})"
        )


@dataclass
class ScanResult:
    ct: dict[str, Series] = field(default_factory=dict)
    seg: list[Instance] = field(default_factory=list)
    rtstruct: list[Instance] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped_series: dict[str, str] = field(default_factory=dict)  # uid -> why


def iter_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` (or ``root`` itself), sorted, hidden files skipped."""
    if root.is_file():
        return [root]
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
        if len(files) > MAX_FILES:
            raise DicomError(
                root,
                f"more than {MAX_FILES} files",
                "point the import at one patient or study folder at a time",
            )
    return files


def read_header(path: Path) -> pydicom.Dataset | None:
    """The header of a DICOM file, or None when the file is not DICOM at all.

    Files without the 128-byte preamble (raw data sets, common in old archives) are accepted
    when they parse to something with a SOP Class and a Series Instance UID. A file that
    claims to be DICOM (preamble or .dcm suffix) but cannot be parsed is an error.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        ds = None
    except Exception as exc:  # a DICOM preamble followed by a broken or cut-off header
        raise DicomError(
            path,
            f"DICOM header is truncated or corrupt ({exc.__class__.__name__}: {exc})",
            "copy or export the file again",
        ) from exc
    if ds is not None:
        # pydicom stops quietly at the end of a cut-off file: a header without the
        # identifying elements is a truncated file, not a different kind of object
        if "SOPClassUID" not in ds or "SeriesInstanceUID" not in ds:
            if str(getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", "")) == DICOMDIR:
                return ds
            raise DicomError(
                path,
                "DICOM header is truncated or incomplete (no SOP Class or Series Instance UID)",
                "copy or export the file again",
            )
        return ds
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if "SOPClassUID" in ds and "SeriesInstanceUID" in ds:
            return ds
    except Exception:  # not DICOM; decided below
        pass
    if path.suffix.lower() in DICOM_SUFFIXES:
        raise DicomError(
            path,
            "is not a DICOM file (no DICOM header found)",
            "remove it or export it again from the PACS",
        )
    return None


def scan(root: str | Path) -> ScanResult:
    """Read every header under ``root`` and sort it (see the module docstring)."""
    root = Path(root)
    if not root.exists():
        raise DicomError(root, "does not exist", "check the path")
    result = ScanResult()
    ct: dict[str, Series] = {}
    skipped: dict[str, int] = defaultdict(int)
    n_dicom, not_dicom = 0, []
    for path in iter_files(root):
        ds = read_header(path)
        if ds is None:
            not_dicom.append(path)
            continue
        n_dicom += 1
        sop_class = str(ds.get("SOPClassUID", ""))
        modality = str(ds.get("Modality", "")).upper()
        if sop_class == DICOMDIR or path.name.upper() == "DICOMDIR":
            continue
        if sop_class == SEG:
            result.seg.append(Instance(path, ds))
        elif sop_class == RTSTRUCT:
            result.rtstruct.append(Instance(path, ds))
        elif sop_class == CT_IMAGE:
            image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
            if "LOCALIZER" in image_type:
                skipped[f"localizer {ds.get('SeriesInstanceUID', '?')}"] += 1
                result.skipped_series[str(ds.get("SeriesInstanceUID", ""))] = "a localizer"
                continue
            uid = str(ds.SeriesInstanceUID)
            ct.setdefault(uid, Series(uid, "ct")).instances.append(Instance(path, ds))
        elif sop_class == ENHANCED_CT:
            skipped[
                f"enhanced (multi-frame) CT {ds.get('SeriesInstanceUID', '?')}, not "
                "supported: export it as classic CT images"
            ] += 1
        elif modality == "SR":
            skipped[f"structured report (dose report) {ds.get('SeriesInstanceUID', '?')}"] += 1
        elif sop_class.startswith(SECONDARY_CAPTURE_PREFIX):
            skipped[f"secondary capture (dose screen) {ds.get('SeriesInstanceUID', '?')}"] += 1
        else:
            skipped[f"{modality or 'unknown modality'} {ds.get('SeriesInstanceUID', '?')}"] += 1
    if root.is_file() and n_dicom == 0:
        raise DicomError(root, "is not a DICOM file", "pass a DICOM file or a folder of them")
    if n_dicom == 0:
        raise DicomError(
            root,
            f"no DICOM files found ({len(not_dicom)} other files)",
            "pass the folder that holds the exported series",
        )
    for what, n in sorted(skipped.items()):
        result.notes.append(f"skipped {what} ({n} file{'s' if n > 1 else ''})")
    if not_dicom:
        result.notes.append(f"ignored {len(not_dicom)} non-DICOM file(s), e.g. {not_dicom[0]}")
    for uid, series in sorted(ct.items()):
        if len(series.instances) < 2:
            result.notes.append(f"skipped {series.description}: a single CT image, not a volume")
            result.skipped_series[uid] = "a single CT image"
            continue
        result.ct[uid] = series
    return result

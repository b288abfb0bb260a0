"""DICOM CT series (+ SEG / RTSTRUCT) -> NIfTI in the data directory -> catalog case records.

:func:`prepare` is what ``turingct data import --format dicom`` runs before the catalog's
validate-then-register step:

1. scan PATH and sort the files (:mod:`scan`); check every CT series' geometry and every
   mask object's references and segment names from headers alone, so a bad series, a SEG of
   an absent series or an unknown tumor organ stops the import before any pixel is read;
2. convert each series once: int16 HU (rescale slope/intercept applied per slice), the series'
   own grid and orientation, masks as one uint8 label map per organ (1 organ, 2 tumor, the
   MSD convention), and ``provenance.json`` (source series/SOP UIDs and file sha256, the
   conversion version, tilt and resampling applied, segment -> target mapping).

Output folders are content addressed, ``<out_root>/<SeriesInstanceUID>/<digest>/`` (digest of
the source files' hashes, the options and :data:`CONVERSION_VERSION`), written in a temporary
folder and renamed: a finished conversion is reused, never overwritten, so a file the catalog
registered never changes under it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from synth_backend.datasets import CaseRecord, OrganRecord
from synth_backend.dicom import labels as label_rules
from synth_backend.dicom.errors import DicomError
from synth_backend.dicom.grid import FILL_HU, SliceGrid, build_grid
from synth_backend.dicom.masks import (
    MaskSource,
    describe_rtstruct,
    describe_seg,
    read_rtstruct,
    read_seg,
)
from synth_backend.dicom.scan import Series, scan
from synth_backend.io import save_volume, sha256_file

# Bump when the conversion's output for the same input changes (it is part of the digest).
CONVERSION_VERSION = 1
INT16 = np.iinfo(np.int16)


@dataclass
class SeriesPlan:
    series: Series
    grid: SliceGrid
    order: list[int]
    masks: list[tuple[MaskSource, dict[int, str]]] = field(default_factory=list)


@dataclass
class Prepared:
    records: list[CaseRecord]
    notes: list[str]


def plan(
    root: str | Path, *, label_map: dict[str, str] | None = None, resample_nonuniform: bool = False
) -> tuple[list[SeriesPlan], list[str]]:
    """Headers-only validation of everything under ``root`` (step 1 of the module docstring)."""
    found = scan(root)
    notes = list(found.notes)
    plans: dict[str, SeriesPlan] = {}
    for uid, series in found.ct.items():
        grid, order = build_grid(
            [i.header for i in series.instances],
            [i.path for i in series.instances],
            series.description,
            resample_nonuniform=resample_nonuniform,
        )
        plans[uid] = SeriesPlan(series, grid, order)
        if grid.tilt_deg:
            notes.append(
                f"{series.description}: gantry tilt {grid.tilt_deg:.2f} deg corrected "
                "(in-plane shift per slice)"
            )
        if grid.resampled:
            notes.append(
                f"{series.description}: non-uniform slices resampled onto "
                f"{grid.slice_spacing:.2f} mm"
            )
    if not plans:
        raise DicomError(
            root,
            f"no CT image series found ({'; '.join(notes) or 'nothing'})",
            "pass a folder with an axial CT series",
        )
    sources = [describe_seg(i.path, i.header) for i in found.seg] + [
        describe_rtstruct(i.path, i.header) for i in found.rtstruct
    ]
    for source in sources:
        target = _referenced_plan(source, plans, found.skipped_series)
        mapped, label_notes = label_rules.resolve(
            source.segments, label_map or {}, str(source.path)
        )
        notes.extend(label_notes)
        if mapped:
            target.masks.append((source, mapped))
    for p in plans.values():
        _check_tumor_organs(p)
    return list(plans.values()), notes


def _referenced_plan(
    source: MaskSource, plans: dict[str, SeriesPlan], skipped: dict[str, str]
) -> SeriesPlan:
    present = [uid for uid in sorted(source.referenced_series) if uid in plans]
    if present:
        return plans[present[0]]
    if source.referenced_series:
        uid = sorted(source.referenced_series)[0]
        if uid in skipped:
            raise DicomError(
                source.path,
                f"{source.kind} references series {uid}, which is {skipped[uid]}, not a CT volume",
                "import masks drawn on the CT series itself",
            )
        raise DicomError(
            source.path,
            f"{source.kind} references CT series {uid}, which is not under the imported path",
            "put that series beside it (or pull it from the PACS) and import again",
        )
    same_frame = [
        p
        for p in plans.values()
        if str(p.series.first.get("FrameOfReferenceUID", "")) == source.frame_of_reference
    ]
    if len(same_frame) == 1:
        return same_frame[0]
    raise DicomError(
        source.path,
        f"{source.kind} names no referenced series and {len(same_frame)} CT series share "
        "its frame of reference",
        "import it together with only its own CT series",
    )


def _check_tumor_organs(p: SeriesPlan) -> None:
    organs = {t for _, m in p.masks for t in m.values() if ":" not in t}
    for source, mapped in p.masks:
        for number, target in mapped.items():
            organ = target.split(":")[0]
            if target.endswith(":tumor") and organ not in organs:
                raise DicomError(
                    source.path,
                    f"segment {source.segments[number][0]!r} is a {organ} tumor but no "
                    f"{organ} segment exists for {p.series.description}",
                    f"the catalog needs the organ mask too: add a {organ} segment or map one "
                    "with --label-map",
                )


def prepare(
    root: str | Path,
    out_root: str | Path,
    *,
    label_map: dict[str, str] | None = None,
    resample_nonuniform: bool = False,
) -> Prepared:
    """Validate, convert and describe every CT series under ``root`` (module docstring)."""
    plans, notes = plan(root, label_map=label_map, resample_nonuniform=resample_nonuniform)
    records = [convert_series(p, Path(out_root), resample_nonuniform) for p in plans]
    return Prepared(records, notes)


def convert_series(p: SeriesPlan, out_root: Path, resample_nonuniform: bool) -> CaseRecord:
    """Convert one planned series (reusing an earlier identical conversion)."""
    ordered = [p.series.instances[i] for i in p.order]
    files = [
        {
            "path": str(i.path),
            "sha256": sha256_file(i.path),
            "sop_instance_uid": str(i.header.SOPInstanceUID),
        }
        for i in ordered
    ]
    mask_files = [
        {
            "path": str(s.path),
            "sha256": sha256_file(s.path),
            "kind": s.kind,
            "series_instance_uid": s.series_uid,
            "segments": {
                str(n): {"name": s.segments[n][0], "target": t} for n, t in sorted(m.items())
            },
        }
        for s, m in p.masks
    ]
    digest = hashlib.sha256(
        json.dumps(
            {
                "v": CONVERSION_VERSION,
                "ct": [f["sha256"] for f in files],
                "masks": [(f["sha256"], f["segments"]) for f in mask_files],
                "resample": resample_nonuniform,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    final = out_root / p.series.uid / digest
    if not (final / "provenance.json").is_file():
        _write_conversion(p, ordered, files, mask_files, final)
    provenance = json.loads((final / "provenance.json").read_text())
    organs = []
    for organ, info in sorted(provenance["organs"].items()):
        mask = final / info["file"]
        tumor = info["tumor_voxels"] > 0 or info["has_tumor_segment"]
        organs.append(
            OrganRecord(
                organ, [mask], [1, 2], [mask] if tumor else [], [2] if tumor else None, "real"
            )
        )
    first = p.series.first
    meta = {
        "dicom": {
            "series_instance_uid": p.series.uid,
            "study_instance_uid": str(first.get("StudyInstanceUID", "")),
            "n_files": len(files),
            "tilt_deg": p.grid.tilt_deg,
            "resampled": p.grid.resampled,
            "conversion": str(final),
            "conversion_version": CONVERSION_VERSION,
        }
    }
    return CaseRecord(p.series.uid, final / "ct.nii.gz", organs, meta=meta)


def read_hu_stack(p: SeriesPlan, ordered) -> np.ndarray:
    """(K, R, C) float32 HU of the series' source slices, in grid order."""
    stack = np.empty((len(ordered), *p.grid.shape_rc), dtype=np.float32)
    for k, inst in enumerate(ordered):
        stack[k] = hu_pixels(inst.path, p.grid.shape_rc)
    return stack


def hu_pixels(path: Path, shape_rc: tuple[int, int]) -> np.ndarray:
    """One slice's HU (rescale slope/intercept applied); one-line errors for what fails."""
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise DicomError(
            path,
            f"unreadable DICOM file ({exc.__class__.__name__}: {exc})",
            "copy or export it again",
        ) from exc
    _check_decodable(ds, path)
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise DicomError(
            path,
            f"has {ds.SamplesPerPixel} samples per pixel (colour); a CT slice has one: "
            "this is not an original CT image",
            "import the original CT series from the scanner or PACS",
        )
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # short pixel data, broken compressed stream
        raise DicomError(
            path,
            f"pixel data is truncated or corrupt ({exc.__class__.__name__}"
            f": {str(exc).splitlines()[0] if str(exc) else ''})",
            "copy or export the file again",
        ) from exc
    if pixels.shape != shape_rc:
        raise DicomError(
            path,
            f"pixel data has shape {pixels.shape}, expected {shape_rc}",
            "export the file again",
        )
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return (pixels.astype(np.float64) * slope + intercept).astype(np.float32)


def _check_decodable(ds: pydicom.Dataset, path: Path) -> None:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is None or not ts.is_compressed:
        return
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(ts).is_available
    except (NotImplementedError, ValueError, KeyError):
        available = False
    if not available:
        raise DicomError(
            path,
            f"pixel data is compressed as {ts.name} ({ts}), which the installed pydicom "
            "plugins cannot decode",
            "decompress the series first (dcmdjpeg, gdcmconv --raw) or install a decoder "
            "plugin for it (pylibjpeg-openjpeg, pylibjpeg-libjpeg or python-gdcm)",
        )


def _write_conversion(p: SeriesPlan, ordered, files, mask_files, final: Path) -> None:
    grid = p.grid
    hu = grid.finish(read_hu_stack(p, ordered), order=1, raw=True, cval=FILL_HU)
    hu = np.rint(hu)
    if hu.min() < INT16.min or hu.max() > INT16.max:
        raise DicomError(
            ordered[0].path,
            f"HU after rescale span [{hu.min():.0f}, {hu.max():.0f}], outside int16",
            "check RescaleSlope/Intercept",
        )
    affine = grid.affine_ras()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        save_volume(hu.transpose(2, 1, 0), affine, tmp / "ct.nii.gz", "ct")
        organs = _write_masks(p, grid, affine, tmp)
        import highdicom
        import skimage

        # skimage's __init__.pyi lists __version__ but never defines it
        skimage_version = skimage.__version__  # type: ignore[attr-defined]
        provenance = {
            "converter": "turingct.dicom",
            "conversion_version": CONVERSION_VERSION,
            "code_version": _code_version(),
            "libraries": {
                "pydicom": pydicom.__version__,
                "highdicom": highdicom.__version__,
                "scikit-image": skimage_version,
            },
            "series_instance_uid": p.series.uid,
            "study_instance_uid": str(p.series.first.get("StudyInstanceUID", "")),
            "frame_of_reference_uid": str(p.series.first.get("FrameOfReferenceUID", "")),
            "series_description": str(p.series.first.get("SeriesDescription", "")),
            "files": files,
            "masks": mask_files,
            "organs": organs,
            "geometry": {
                "shape_xyz": [int(s) for s in hu.shape[::-1]],
                "affine_ras": affine.tolist(),
                "slice_spacing_mm": grid.slice_spacing,
                "gantry_tilt_deg": grid.tilt_deg,
                "tilt_correction": "in-plane linear shift per slice, fill -1024 HU"
                if grid.tilt_deg
                else None,
                "resampled_from_positions_mm": grid.positions.round(4).tolist()
                if grid.resampled
                else None,
            },
            "values": "int16 HU = stored * RescaleSlope + RescaleIntercept, rounded",
        }
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:  # another import finished the same conversion first: keep that one
            if not (final / "provenance.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_masks(p: SeriesPlan, grid: SliceGrid, affine: np.ndarray, out: Path) -> dict:
    """One label map per organ (1 organ, 2 tumor; tumor wins where both are set)."""
    stacks: dict[str, dict[str, np.ndarray]] = {}
    described = p.series.description
    for source, mapped in p.masks:
        reader, raw = (read_seg, True) if source.kind == "SEG" else (read_rtstruct, False)
        per_segment = reader(source, grid, mapped, described)
        for number, target in mapped.items():
            organ, _, part = target.partition(":")
            mask = grid.finish(per_segment[number].astype(np.uint8), order=0, raw=raw, cval=0) > 0
            slot = stacks.setdefault(organ, {})
            role = "tumor" if part else "organ"
            slot[role] = mask | slot[role] if role in slot else mask
    organs = {}
    for organ, parts in sorted(stacks.items()):
        labels = np.zeros(grid.shape_krc, dtype=np.uint8)
        labels[parts["organ"]] = 1
        if "tumor" in parts:
            labels[parts["tumor"]] = 2
        name = f"{organ}.nii.gz"
        save_volume(labels.transpose(2, 1, 0), affine, out / name, "mask")
        organs[organ] = {
            "file": name,
            "labels": {"1": organ, "2": f"{organ} tumor"},
            "organ_voxels": int((labels > 0).sum()),
            "tumor_voxels": int((labels == 2).sum()),
            "has_tumor_segment": "tumor" in parts,
        }
    return organs


def _code_version() -> str:
    try:
        from core.settings import code_version

        return code_version()
    except Exception:  # the converter must not fail because git is absent
        from core.settings import package_version

        return package_version()

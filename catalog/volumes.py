"""The catalog: register dataset volumes (by path and sha256, never copied) and query them.

An import validates every case first (readable, 3D, HU plausible, masks on the CT's grid,
integer labels) and writes all rows in one transaction at the end: a bad file aborts the import
with a one-line message and leaves the database unchanged. Re-importing a dataset adds only new
cases (resumable); a case whose CT changed on disk is refused.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.errors import InputError
from db.models import Dataset, DatasetFormat, Origin, TumorKind, Volume, VolumeOrgan
from synth_backend import datasets as layouts
from synth_backend.errors import VolumeError
from synth_backend.geometry import equivalent_diameter_mm
from synth_backend.io import check_same_grid, load_volume, sha256_file

log = logging.getLogger(__name__)

# Layouts that ship a file per structure whether or not it is in the field of view: an empty
# organ there means "not in this scan" and is skipped; elsewhere an empty organ is an error.
_SKIP_EMPTY = {"atlas", "totalseg", "phantom", "dicom"}


class CatalogError(InputError):
    """The catalog cannot take this import as given: '<path or option>: <problem>; <fix>'."""


@dataclass
class ImportReport:
    dataset: str
    added: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    skipped_organs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what an import skipped or changed, and why


def import_dataset(
    session: Session,
    fmt: str,
    path: str | Path,
    *,
    name: str | None = None,
    organs: Sequence[str] | None = None,
    ct: str | Path | None = None,
    class_map: str | Path | None = None,
    case_id: str | None = None,
    label_map: dict[str, str] | None = None,
    resample_nonuniform: bool = False,
    convert_dir: str | Path | None = None,
    progress: bool = False,
) -> ImportReport:
    """Register a dataset in the catalog; see the module docstring for the guarantees.

    ``fmt`` is one of msd, kits, atlas, totalseg, manifest, dicom. ``organs`` restricts the
    organs registered. ``ct``/``class_map``/``case_id`` are for TotalSegmentator outputs.
    DICOM series are converted to NIfTI once, under ``convert_dir`` (default
    ``<data dir>/dicom``), before anything is registered (:mod:`synth_backend.dicom.convert`;
    ``label_map`` maps segment names, ``resample_nonuniform`` accepts irregular slices). The
    caller commits (use ``db.session.session_scope``); nothing is flushed before every case
    is valid.
    """
    path = Path(path).resolve()
    if not path.exists():
        raise CatalogError(path, "does not exist", "check the dataset path")
    organs_t = tuple(organs) if organs else None
    for organ in organs_t or ():
        if organ not in layouts.ORGAN_NAMES:
            raise CatalogError(
                "--organ",
                f"must be one of {layouts.ORGAN_NAMES}, got {organ!r}",
                f"pass --organ {' or '.join(layouts.ORGAN_NAMES)}",
            )
    notes: list[str] = []
    if fmt == "dicom":
        from core.settings import data_dir
        from synth_backend.dicom.convert import prepare

        prepared = prepare(
            path,
            Path(convert_dir) if convert_dir else data_dir() / "dicom",
            label_map=label_map,
            resample_nonuniform=resample_nonuniform,
        )
        notes = prepared.notes
        records = prepared.records
        if organs_t:  # like the other layouts: only series that have a requested organ
            for r in records:
                r.organs = [o for o in r.organs if o.organ in organs_t]
            records = [r for r in records if r.organs]
    else:
        records = list(_records(fmt, path, organs_t, ct, class_map, case_id))
    is_phantom = fmt == "atlas" and layouts._is_phantom_cohort(path)
    db_format = DatasetFormat.PHANTOM if is_phantom else DatasetFormat(fmt)
    name = name or (layouts.nifti_stem(path) if path.is_file() else path.name)

    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is not None and dataset.format != db_format:
        raise CatalogError(
            path,
            f"dataset name {name!r} is already used by a {dataset.format} dataset",
            "pass --name to choose another",
        )
    existing = {v.case_id: v for v in dataset.volumes} if dataset else {}

    report = ImportReport(name, notes=notes)
    volumes: list[Volume] = []
    bar = _progress(records, progress, f"import {name}")
    for record in bar:
        if record.case_id in existing:
            if existing[record.case_id].ct_sha256 != sha256_file(record.ct_path):
                raise CatalogError(
                    record.ct_path,
                    f"case {record.case_id!r} is registered with different contents",
                    "import it under a new --name",
                )
            report.skipped_existing.append(record.case_id)
            continue
        volumes.append(
            _build_volume(
                record,
                Origin.PHANTOM if is_phantom else Origin.REAL,
                "phantom" if is_phantom else fmt,
                report,
            )
        )
        report.added.append(record.case_id)
    if dataset is None:
        dataset = Dataset(
            name=name,
            format=db_format,
            root_path=str(path),
            meta={
                "organs": list(organs_t) if organs_t else None,
                "tumor_annotations": fmt != "totalseg",
            },
        )
        session.add(dataset)
    for volume in volumes:
        volume.dataset = dataset
        session.add(volume)
    session.flush()
    return report


def _records(fmt, path, organs, ct, class_map, case_id) -> Iterable[layouts.CaseRecord]:
    if fmt == "msd":
        return layouts.read_msd(path, organs)
    if fmt == "kits":
        return layouts.read_kits(path, organs)
    if fmt == "atlas":
        return layouts.read_atlas(path, organs)
    if fmt == "totalseg":
        return layouts.read_totalseg(
            path,
            Path(ct).resolve() if ct else None,
            Path(class_map) if class_map else None,
            organs,
            case_id,
        )
    if fmt == "manifest":
        return layouts.read_manifest(path, organs)
    raise CatalogError(
        "--format",
        f"must be one of {layouts.FORMATS}, got {fmt!r}",
        f"pass --format {'|'.join(layouts.FORMATS)}",
    )


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="case")


def _build_volume(
    record: layouts.CaseRecord, origin: Origin, fmt: str, report: ImportReport
) -> Volume:
    ct = load_volume(record.ct_path, "ct")
    volume = Volume(
        case_id=record.case_id,
        origin=origin,
        ct_path=str(record.ct_path),
        ct_sha256=sha256_file(record.ct_path),
        shape=list(ct.shape),
        spacing=[round(s, 6) for s in ct.spacing],
        affine=ct.affine.tolist(),
        axcodes="".join(nib.aff2axcodes(ct.source_affine)),
        meta={"hu_min": float(ct.array.min()), "hu_max": float(ct.array.max()), **record.meta},
    )
    for organ in record.organs:
        mask = _union(ct, organ.mask_paths, organ.mask_labels)
        n_organ = int(mask.sum())
        if n_organ == 0:
            if fmt in _SKIP_EMPTY:
                report.skipped_organs.append(f"{record.case_id}:{organ.organ}")
                continue
            raise VolumeError(
                organ.mask_paths[0],
                f"{organ.organ} mask is empty"
                + (f" for labels {organ.mask_labels}" if organ.mask_labels else ""),
                "check the label values or leave this organ out",
            )
        tumor = (
            _union(ct, organ.tumor_paths, organ.tumor_labels)
            if organ.tumor_paths
            else np.zeros_like(mask)
        )
        n_tumor = int(tumor.sum())
        volume.organs.append(
            VolumeOrgan(
                organ=organ.organ,
                mask_paths=[str(p) for p in organ.mask_paths],
                mask_sha256=_hash_files(organ.mask_paths),
                mask_labels=organ.mask_labels,
                organ_voxels=n_organ,
                tumor_kind=TumorKind(organ.tumor_kind) if n_tumor else TumorKind.NONE,
                tumor_paths=[str(p) for p in organ.tumor_paths],
                tumor_sha256=_hash_files(organ.tumor_paths) if organ.tumor_paths else None,
                tumor_labels=organ.tumor_labels,
                tumor_voxels=n_tumor,
                tumor_diameter_mm=_largest_diameter(tumor, ct.spacing) if n_tumor else None,
            )
        )
    return volume


def _union(reference, paths: Sequence[Path | str], labels: Sequence[int] | None) -> np.ndarray:
    """Boolean union of mask files on the reference CT's grid (labels: None = any nonzero)."""
    out: np.ndarray | None = None
    for path in paths:
        mask = load_volume(path, "mask")
        check_same_grid(reference, mask)
        sel = np.isin(mask.array, labels) if labels else mask.array > 0
        out = sel if out is None else (out | sel)
    if out is None:
        # the reference is the case's CT: the one file a record without masks still names
        raise CatalogError(
            reference.path, "no mask files given", "list the organ's mask file(s) for this case"
        )
    return out


def _hash_files(paths: Sequence[Path | str]) -> str:
    if len(paths) == 1:
        return sha256_file(paths[0])
    return hashlib.sha256("".join(sha256_file(p) for p in paths).encode()).hexdigest()


def _largest_diameter(mask: np.ndarray, spacing) -> float:
    labelled, n = ndimage.label(mask)
    sizes = np.bincount(labelled.ravel())[1:] if n else np.array([0])
    return round(equivalent_diameter_mm(int(sizes.max()), spacing), 2)


def load_organ_mask(organ: VolumeOrgan, reference=None) -> np.ndarray:
    """Boolean organ mask (RAS, x y z) of a catalog entry; ``reference`` = its CT Volume."""
    reference = reference or load_volume(organ.volume.ct_path, "ct")
    return _union(reference, organ.mask_paths, organ.mask_labels)


def load_tumor_mask(organ: VolumeOrgan, reference=None) -> np.ndarray:
    """Boolean tumor mask of a catalog entry (all False when none is annotated)."""
    reference = reference or load_volume(organ.volume.ct_path, "ct")
    if not organ.tumor_paths:
        return np.zeros(reference.shape, dtype=bool)
    return _union(reference, organ.tumor_paths, organ.tumor_labels)


def healthy_volumes(session: Session, organ: str, dataset: str | None = None) -> list[Volume]:
    """Non-synthetic volumes whose ``organ`` is present with no tumor annotated."""
    query = (
        select(Volume)
        .join(VolumeOrgan)
        .join(Dataset)
        .where(
            VolumeOrgan.organ == organ,
            VolumeOrgan.tumor_kind == TumorKind.NONE,
            Volume.origin != Origin.SYNTHETIC,
        )
        .options(selectinload(Volume.organs), selectinload(Volume.dataset))
        .order_by(Dataset.name, Volume.case_id)
    )
    if dataset:
        query = query.where(Dataset.name == dataset)
    return list(session.scalars(query))


def list_volumes(session: Session, dataset: str | None = None) -> list[dict]:
    """One row per registered volume, for `turingct data list` and the app's catalog page."""
    query = (
        select(Volume)
        .join(Dataset)
        .options(selectinload(Volume.organs), selectinload(Volume.dataset))
        .order_by(Dataset.name, Volume.case_id)
    )
    if dataset:
        query = query.where(Dataset.name == dataset)
    rows = []
    for v in session.scalars(query):
        rows.append(
            {
                "dataset": v.dataset.name,
                "case": v.case_id,
                "origin": v.origin.value,
                "organs": ",".join(o.organ for o in v.organs),
                "tumor": ",".join(
                    f"{o.organ}:{o.tumor_kind.value}"
                    for o in v.organs
                    if o.tumor_kind != TumorKind.NONE
                )
                or "-",
                "shape": "x".join(str(s) for s in v.shape),
                "spacing": "x".join(f"{s:.3g}" for s in v.spacing),
            }
        )
    return rows

"""Readers for dataset layouts users already have: each turns a folder into case records.

A reader only finds files and states which labels mean what; it reads no voxels. Loading,
validation and registration happen in :mod:`catalog.volumes`.

Label conventions (from the datasets' own documentation):
- MSD Task03 Liver / Task07 Pancreas: 1 organ, 2 tumor (organ mask = {1, 2}).
- KiTS19/23: 1 kidney, 2 tumor, 3 cyst (cyst counted as kidney): kidney = {1, 2, 3}.
- AbdomenAtlas: one binary file per structure; kidney = kidney_left | kidney_right.
- TotalSegmentator v2 ``total``: 5 liver, 7 pancreas, 2/3 kidney right/left, 23/24 kidney cysts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from core.vocabulary import ORGANS

ORGAN_NAMES = ORGANS
FORMATS = ("msd", "kits", "atlas", "totalseg", "manifest", "dicom")

# AbdomenAtlas-style structure file stems per organ; tumor stems tried in this order.
ATLAS_ORGAN_FILES = {
    "liver": ("liver",),
    "pancreas": ("pancreas",),
    "kidney": ("kidney_left", "kidney_right", "kidney"),
}
ATLAS_TUMOR_FILES = {
    "liver": ("liver_tumor", "liver_tumors", "liver_lesion", "hepatic_tumor"),
    "pancreas": ("pancreas_tumor", "pancreatic_tumor", "pancreatic_lesion", "pancreas_lesion"),
    "kidney": ("kidney_tumor", "kidney_tumors", "kidney_lesion"),
}
TOTALSEG_ORGANS = {
    "liver": ("liver",),
    "pancreas": ("pancreas",),
    "kidney": ("kidney_right", "kidney_left", "kidney_cyst_left", "kidney_cyst_right"),
}


class DatasetLayoutError(InputError):
    """A dataset folder or manifest without the expected layout: '<path>: <problem>; <fix>'."""


@dataclass
class OrganRecord:
    organ: str
    mask_paths: list[Path]
    mask_labels: list[int] | None = None  # None: any nonzero voxel
    tumor_paths: list[Path] = field(default_factory=list)
    tumor_labels: list[int] | None = None
    tumor_kind: str = "real"  # kind of tumor when the tumor mask is non-empty


@dataclass
class CaseRecord:
    case_id: str
    ct_path: Path
    organs: list[OrganRecord]
    meta: dict = field(default_factory=dict)  # extra Volume.meta (e.g. DICOM UIDs)


def nifti_stem(path: Path) -> str:
    """File name without .nii.gz/.nii/.nrrd/.mha (or the last suffix)."""
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".csv", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _want(organ: str, organs: tuple[str, ...] | None) -> bool:
    return organs is None or organ in organs


def read_msd(root: Path, organs: tuple[str, ...] | None = None) -> Iterator[CaseRecord]:
    """MSD task folder: ``dataset.json`` + ``imagesTr/`` + ``labelsTr/``."""
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DatasetLayoutError(
            root,
            "no dataset.json",
            "pass an MSD task folder (e.g. Task03_Liver) or use --format manifest",
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(
            meta_path, f"invalid JSON ({exc})", "fix or re-download it"
        ) from exc
    labels = {int(k): str(v).lower() for k, v in meta.get("labels", {}).items()}
    organ = labels.get(1)
    if organ not in ORGAN_NAMES:
        if organs and len(organs) == 1:
            organ = organs[0]
        else:
            raise DatasetLayoutError(
                meta_path,
                f"label 1 is {organ!r}, not one of {ORGAN_NAMES}",
                "pass --organ to say which organ it is",
            )
    if not _want(organ, organs):
        return
    for entry in meta.get("training", []):
        image = (root / entry["image"]).resolve()
        label = (root / entry["label"]).resolve()
        yield CaseRecord(
            nifti_stem(image), image, [OrganRecord(organ, [label], [1, 2], [label], [2], "real")]
        )


def read_kits(root: Path, organs: tuple[str, ...] | None = None) -> Iterator[CaseRecord]:
    """KiTS19/23: ``case_xxxxx/imaging.nii.gz`` + ``segmentation.nii.gz``."""
    if not _want("kidney", organs):
        return
    cases = sorted(p for p in root.glob("case_*") if p.is_dir())
    if not cases:
        raise DatasetLayoutError(root, "no case_xxxxx folders", "pass the KiTS data folder")
    for case in cases:
        seg = case / "segmentation.nii.gz"
        yield CaseRecord(
            case.name,
            case / "imaging.nii.gz",
            [OrganRecord("kidney", [seg], [1, 2, 3], [seg], [2], "real")],
        )


def read_atlas(root: Path, organs: tuple[str, ...] | None = None) -> Iterator[CaseRecord]:
    """AbdomenAtlas-style ``<case>/ct.nii.gz`` + ``<case>/segmentations/<structure>.nii.gz``.

    A ``cohort.json`` at the root written by ``turingct phantom`` marks the built-in phantom
    cohort: its tumors are phantom lesions, never real tumors.
    """
    phantom = _is_phantom_cohort(root)
    cases = (
        sorted(p for p in root.iterdir() if (p / "ct.nii.gz").is_file()) if root.is_dir() else []
    )
    if not cases:
        raise DatasetLayoutError(
            root, "no <case>/ct.nii.gz found", "pass the folder that holds the case folders"
        )
    for case in cases:
        seg_dir = case / "segmentations"
        records = []
        for organ, stems in ATLAS_ORGAN_FILES.items():
            if not _want(organ, organs):
                continue
            masks = [seg_dir / f"{s}.nii.gz" for s in stems if (seg_dir / f"{s}.nii.gz").is_file()]
            if organ == "kidney" and len(masks) > 1:
                masks = [m for m in masks if m.name != "kidney.nii.gz"]
            if not masks:
                continue
            tumors = [
                seg_dir / f"{s}.nii.gz"
                for s in ATLAS_TUMOR_FILES[organ]
                if (seg_dir / f"{s}.nii.gz").is_file()
            ][:1]
            records.append(
                OrganRecord(
                    organ, masks, None, tumors, None, "phantom_lesion" if phantom else "real"
                )
            )
        yield CaseRecord(case.name, case / "ct.nii.gz", records)


def _is_phantom_cohort(root: Path) -> bool:
    meta = root / "cohort.json"
    if not meta.is_file():
        return False
    try:
        return "phantom" in str(json.loads(meta.read_text()).get("generator", "")).lower()
    except (json.JSONDecodeError, AttributeError):
        return False


def read_totalseg(
    seg: Path,
    ct: Path | None,
    class_map: Path | None = None,
    organs: tuple[str, ...] | None = None,
    case_id: str | None = None,
) -> Iterator[CaseRecord]:
    """TotalSegmentator output: one multi-label file + class map, or a folder of structures.

    TotalSegmentator does not segment tumors, so every organ is registered without a tumor
    mask ("no tumor annotated", which is not proof of a healthy organ).
    """
    if ct is None:
        raise DatasetLayoutError(seg, "TotalSegmentator output has no CT", "pass --ct CT_FILE")
    case = case_id or nifti_stem(ct)
    records = []
    if seg.is_dir():
        for organ, stems in TOTALSEG_ORGANS.items():
            files = [seg / f"{s}.nii.gz" for s in stems if (seg / f"{s}.nii.gz").is_file()]
            if files and _want(organ, organs):
                records.append(OrganRecord(organ, files))
    else:
        names = _totalseg_class_map(seg, class_map)
        by_name = {v: k for k, v in names.items()}
        for organ, stems in TOTALSEG_ORGANS.items():
            labels = [by_name[s] for s in stems if s in by_name]
            if labels and _want(organ, organs):
                records.append(OrganRecord(organ, [seg], labels))
    yield CaseRecord(case, ct, records)


def _totalseg_class_map(seg: Path, class_map: Path | None) -> dict[int, str]:
    candidates = [class_map] if class_map else sorted(seg.parent.glob("*.json"))
    for path in candidates:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetLayoutError(
                path,
                f"unreadable class map ({exc})",
                'pass a JSON {"labels": {"1": "spleen", ...}}',
            ) from exc
        labels = data.get("labels", data)
        if isinstance(labels, dict):
            return {int(k): str(v) for k, v in labels.items() if str(k).isdigit()}
    raise DatasetLayoutError(
        seg,
        "multi-label file without a class map",
        "pass --class-map JSON (TotalSegmentator v2 'total' map)",
    )


MANIFEST_COLUMNS = ("case", "ct", "organ", "organ_mask")


def read_manifest(csv_path: Path, organs: tuple[str, ...] | None = None) -> Iterator[CaseRecord]:
    """CSV manifest, one row per case x organ; relative paths are relative to the CSV.

    Columns: ``case, ct, organ, organ_mask`` and optionally ``organ_label, tumor_mask,
    tumor_label, tumor_kind``. Several files or labels are separated by ``;`` (e.g. two IRCAD
    tumor files, or ``1;2``).
    """
    if not csv_path.is_file():
        raise DatasetLayoutError(csv_path, "manifest not found", "pass a CSV file")
    # surrogateescape: Linux file names are bytes; a non-UTF-8 name must still resolve
    with open(csv_path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetLayoutError(
                csv_path,
                f"missing column(s) {missing}",
                f"the manifest needs {list(MANIFEST_COLUMNS)} (+ optional organ_label, "
                "tumor_mask, tumor_label, tumor_kind)",
            )
        cases: dict[str, CaseRecord] = {}
        for line, row in enumerate(reader, start=2):
            organ = (row["organ"] or "").strip().lower()
            if organ not in ORGAN_NAMES:
                raise DatasetLayoutError(
                    f"{csv_path}:{line}",
                    f"organ must be one of {ORGAN_NAMES}, got {organ!r}",
                    "fix that row",
                )
            if not _want(organ, organs):
                continue
            ct = _rel(csv_path, row["ct"])
            record = OrganRecord(
                organ,
                _paths(csv_path, row["organ_mask"]),
                _labels(csv_path, line, row, "organ_label"),
                _paths(csv_path, row.get("tumor_mask") or ""),
                _labels(csv_path, line, row, "tumor_label"),
                (row.get("tumor_kind") or "real").strip() or "real",
            )
            case = cases.setdefault(row["case"], CaseRecord(row["case"], ct, []))
            if case.ct_path != ct:
                raise DatasetLayoutError(
                    f"{csv_path}:{line}",
                    f"case {row['case']!r} lists two CT files",
                    "use one CT per case",
                )
            case.organs.append(record)
    yield from cases.values()


def _rel(base: Path, value: str) -> Path:
    path = Path(value.strip())
    return path if path.is_absolute() else (base.parent / path).resolve()


def _paths(base: Path, value: str) -> list[Path]:
    return [_rel(base, v) for v in value.split(";") if v.strip()]


def _labels(csv_path: Path, line: int, row: dict, column: str) -> list[int] | None:
    value = (row.get(column) or "").strip()
    if not value:
        return None
    try:
        return [int(v) for v in value.split(";")]
    except ValueError:
        raise DatasetLayoutError(
            f"{csv_path}:{line}",
            f"{column} must be integers separated by ';', got {value!r}",
            "fix that row",
        ) from None

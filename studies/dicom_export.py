"""A blinded study as DICOM: every case a de-identified CT series any viewer or PACS can show.

Each blinded case (``studies/blinding.py`` output: RAS, the study's spacing, shape and int16
HU) becomes one CT Image Storage series, reoriented to the radiological display order (rows
toward posterior, columns toward the patient's left, slices toward the head). UIDs come from a
random root drawn per export (``2.25.<64 random bits>.``) plus random digits, so they reveal
neither the arm nor the order. Every other header field is written from one fixed template:
the same patient/study/series text for every case ("TURINGCT^BLINDED"), no dates, no private
tags, and the study's window as the default VOI (WindowCenter/WindowWidth). The export checks
that claim (:func:`check_identical_headers`) and runs the blinding audit again over the DICOM
headers (:func:`dicom_header_features` + the context statistics), stored as
``study.audit["dicom"]``.

Readers find a case by its code: the folder name, and ``cases.csv`` maps code ->
StudyInstanceUID / SeriesInstanceUID (no arm, no source).
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pydicom
from sqlalchemy.orm import Session

from studies.admin import Actor, get_study
from studies.audit import AuditResult, context_features, run_audit
from studies.errors import StudyError
from studies.spec import Window, parse_spec
from synth_backend.dicom.write import CASE_UID_KEYWORDS, ct_series, new_uid, write_series

BLINDED_PATIENT = "TURINGCT^BLINDED"


def blinded_template(window: Window) -> dict:
    """The header fields shared by every case of an export (module docstring)."""
    return {
        "PatientName": BLINDED_PATIENT,
        "PatientID": "TURINGCT",
        "PatientBirthDate": "",
        "PatientSex": "",
        "PatientIdentityRemoved": "YES",
        "DeidentificationMethod": "turingct blinded export (fresh header, no source fields)",
        "StudyDate": "",
        "StudyTime": "",
        "AccessionNumber": "",
        "ReferringPhysicianName": "",
        "StudyID": "1",
        "StudyDescription": "TuringCT reader study",
        "SeriesNumber": 1,
        "SeriesDescription": "CT",
        "ImageType": ["DERIVED", "SECONDARY", "AXIAL"],
        "Manufacturer": "",
        "BurnedInAnnotation": "NO",
        "PositionReferenceIndicator": "",
        "WindowCenter": f"{window.level:g}",
        "WindowWidth": f"{window.width:g}",
        "WindowCenterWidthExplanation": window.name.upper()[:64],
        "VOILUTFunction": "LINEAR",
    }


def display_order(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorient an (x, y, z) volume to LPS axis order: DICOM's usual axial display."""
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt("LPS")
    )
    return (
        nib.orientations.apply_orientation(array, ornt),
        affine @ nib.orientations.inv_ornt_aff(ornt, array.shape),
    )


def header_signature(ds: pydicom.Dataset) -> dict[str, str]:
    """Every header element except the case UIDs and the pixel data, as text (file meta
    included, sequences recursed)."""
    out = {}
    for elem in [*ds.file_meta.iterall(), *ds.iterall()]:
        if elem.keyword in CASE_UID_KEYWORDS or elem.keyword == "PixelData" or elem.VR == "SQ":
            continue
        out[elem.keyword or str(elem.tag)] = str(elem.value)
    return out


def check_identical_headers(cases: Mapping[str, Sequence[pydicom.Dataset]]) -> None:
    """Raise :class:`StudyError` unless slice i of every case has the same header (except
    UIDs and pixels) and no case has a private tag."""
    reference_code, reference = next(iter(cases.items()))
    ref = [header_signature(ds) for ds in reference]
    for code, datasets in cases.items():
        if len(datasets) != len(ref):
            raise StudyError(
                f"case {code}",
                f"{len(datasets)} slices, case {reference_code} has {len(ref)}",
                "re-create the study (its cases must share a shape)",
            )
        for i, ds in enumerate(datasets):
            if any(elem.tag.is_private for elem in ds.iterall()):
                raise StudyError(
                    f"case {code}",
                    f"slice {i + 1} has private tags",
                    "this is a bug in the export, report it",
                )
            sig = header_signature(ds)
            diff = sorted(k for k in set(sig) | set(ref[i]) if sig.get(k) != ref[i].get(k))
            if diff:
                raise StudyError(
                    f"case {code}",
                    f"header field(s) {diff} differ from case {reference_code}; the export "
                    "would not be blinded",
                    "this is a bug in the export, report it",
                )


def dicom_header_features(datasets: Sequence[pydicom.Dataset], file_bytes: int) -> dict[str, float]:
    """Numeric audit features of one exported series: every numeric element of the first and
    last slice (multi-values flattened), text elements as lengths, and the file bytes."""
    out = {"dicom_file_bytes": float(file_bytes), "dicom_n_files": float(len(datasets))}
    for tag, ds in (("first", datasets[0]), ("last", datasets[-1])):
        for key, text in header_signature(ds).items():
            values = text.strip("[]").replace("'", "").split(",")
            try:
                for j, v in enumerate(values):
                    out[f"dcm_{tag}_{key}_{j}"] = float(v)
            except ValueError:
                out[f"dcm_{tag}_{key}_len"] = float(len(text))
    return out


@dataclass(frozen=True)
class DicomExport:
    out_dir: Path
    n_cases: int
    n_files: int
    study_uids: dict[str, str]  # code -> StudyInstanceUID
    audit: AuditResult

    @property
    def files(self) -> list[Path]:
        return sorted(self.out_dir.glob("*/*.dcm"))


def export_study_dicom(
    session: Session, actor: Actor, study: int | str, out: str | Path
) -> DicomExport:
    """Write every blinded case of ``study`` under ``out/<code>/IM*.dcm`` (+ ``cases.csv``).

    ``out`` must not exist or be empty; the export is written beside it and renamed when
    complete. Staff only. Stores the DICOM-header audit in ``study.audit['dicom']`` (the
    caller commits).
    """
    st = get_study(session, actor, study)
    window = parse_spec(st.spec).presentation.window
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError(out, "exists and is not an empty folder", "choose a new --out folder")
    if not st.cases:
        raise StudyError(
            f"study {st.name!r}",
            "has no cases; nothing to export",
            "export a study that has cases (`turingct study list`)",
        )
    root = f"2.25.{secrets.randbits(64)}."
    fixed = blinded_template(window)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        per_case, features, arms, uids, rows = {}, [], [], {}, []
        for case in sorted(st.cases, key=lambda c: c.code):
            image_path = Path(case.blinded_path)
            if not image_path.is_file():
                raise StudyError(
                    image_path,
                    f"blinded file of case {case.code} is missing",
                    "restore the study export folder",
                )
            # nib.load is typed as the base image class; blinded files are NIfTI-1
            img = cast(nib.Nifti1Image, nib.load(image_path))
            ct = np.asarray(img.dataobj).astype(np.int16)
            array, affine = display_order(ct, img.affine)
            datasets = ct_series(
                array,
                affine,
                study_uid=new_uid(root),
                series_uid=new_uid(root),
                frame_of_reference_uid=new_uid(root),
                sop_uids=[new_uid(root) for _ in range(array.shape[2])],
                fixed=fixed,
            )
            paths = write_series(datasets, tmp / case.code)
            per_case[case.code] = datasets
            tumor = np.asarray(cast(nib.Nifti1Image, nib.load(case.meta["mask_path"])).dataobj) > 0
            spacing = img.header.get_zooms()[:3]
            feats = dicom_header_features(datasets, sum(p.stat().st_size for p in paths))
            feats.update({f"shape_{i}": float(s) for i, s in enumerate(ct.shape)})
            feats.update(context_features(ct, tumor, spacing))
            features.append(feats)
            arms.append(case.arm.value == "synthetic")
            uids[case.code] = str(datasets[0].StudyInstanceUID)
            rows.append(
                {
                    "code": case.code,
                    "study_instance_uid": uids[case.code],
                    "series_instance_uid": str(datasets[0].SeriesInstanceUID),
                    "folder": case.code,
                }
            )
        check_identical_headers(per_case)
        with open(tmp / "cases.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        audit = run_audit(features, arms, seed=st.seed)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    st.audit = {**(st.audit or {}), "dicom": audit.to_dict()}
    n_files = sum(len(v) for v in per_case.values())
    return DicomExport(out, len(per_case), n_files, uids, audit)


def push_study(
    session: Session, actor: Actor, study: int | str, url: str, out: str | Path | None = None
) -> DicomExport:
    """Export ``study`` as DICOM (into ``out``, or a temporary folder) and store it on the PACS
    at ``url`` (DICOMweb STOW-RS for http(s)://, C-STORE for dicom://AET@host:port)."""
    from synth_backend.dicom.pacs import check, push

    check(url)
    with tempfile.TemporaryDirectory(prefix="turingct-push-") as scratch:
        export = export_study_dicom(session, actor, study, out or Path(scratch) / "export")
        push(url, export.files)
    return export

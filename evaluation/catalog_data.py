"""Tumors from the database for the radiomics analyses: catalog volumes or a study's cases.

Each tumor is read from the catalog entry's own files (``catalog.volumes.load_tumor_mask``,
which unions multi-file masks and selects labels) and its features are computed on the file's
own voxel grid and orientation, exactly like :func:`evaluation.radiomics.extract_cases` does for
a cases CSV. Arrays are (x, y, z) RAS, CT in HU. The session is passed in.

``arm`` is ``real`` for real tumors and phantom lesions (``tumor_kind`` tells them apart) and
``synthetic`` for the output of a synthesis method (``method`` names it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from evaluation.readers import ORIGIN_ORGANS
from evaluation.tables import EvaluationInputError

if TYPE_CHECKING:
    from evaluation.radiomics import ExtractorSpec

META_COLUMNS = ("case", "dataset", "organ", "arm", "tumor_kind", "method", "tumor_diameter_mm")


def _features(entries, spec: ExtractorSpec | None, progress: bool) -> pd.DataFrame:
    """``entries``: (meta dict, VolumeOrgan) pairs -> metadata + pyradiomics feature columns."""
    from tqdm import tqdm

    from catalog.volumes import load_tumor_mask
    from evaluation.radiomics import make_extractor, tumor_features
    from synth_backend.io import load_volume

    extractor = make_extractor(spec)
    rows = []
    for meta, vo in tqdm(entries, desc="radiomics", unit="tumor", disable=not progress):
        ct = load_volume(vo.volume.ct_path, "ct")
        tumor = load_tumor_mask(vo, ct)
        if not tumor.any():
            raise EvaluationInputError(
                vo.tumor_paths[0] if vo.tumor_paths else vo.volume.ct_path,
                f"{vo.organ} tumor mask is empty",
                "re-import the volume or leave it out",
            )
        # the file's own grid and orientation: the same features as pyradiomics on the files
        feats = tumor_features(
            ct.to_source_array(ct.array),
            ct.to_source_array(tumor),
            ct.source_affine if ct.source_affine is not None else ct.affine,
            extractor=extractor,
        )
        rows.append({**meta, **feats})
    return pd.DataFrame(rows)


def _meta(vo, arm: str, method: str | None, case: str) -> dict:
    return {
        "case": case,
        "dataset": vo.volume.dataset.name,
        "organ": vo.organ,
        "arm": arm,
        "tumor_kind": vo.tumor_kind.value,
        "method": method or "",
        "tumor_diameter_mm": vo.tumor_diameter_mm,
    }


def catalog_tumor_features(
    session,
    *,
    dataset: str | None = None,
    organs: Sequence[str] | None = None,
    spec: ExtractorSpec | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Features of every catalog tumor (real, phantom lesion and synthetic) of ``organs``
    (default liver, pancreas, kidney), optionally one ``dataset``; sorted by dataset, case."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from db.models import Dataset, TumorKind, Volume, VolumeOrgan

    organs = list(organs or ORIGIN_ORGANS)
    query = (
        select(VolumeOrgan)
        .join(Volume)
        .join(Dataset)
        .where(VolumeOrgan.organ.in_(organs), VolumeOrgan.tumor_kind != TumorKind.NONE)
        .options(
            selectinload(VolumeOrgan.volume).selectinload(Volume.dataset),
            selectinload(VolumeOrgan.volume).selectinload(Volume.provenance),
        )
        .order_by(Dataset.name, Volume.case_id, VolumeOrgan.organ)
    )
    if dataset:
        query = query.where(Dataset.name == dataset)
    entries = []
    for vo in session.scalars(query):
        synthetic = vo.tumor_kind == TumorKind.SYNTHETIC
        method = vo.volume.provenance.method if vo.volume.provenance is not None else None
        entries.append(
            (_meta(vo, "synthetic" if synthetic else "real", method, vo.volume.case_id), vo)
        )
    if not entries:
        where = f"dataset {dataset!r}" if dataset else "the catalog"
        raise EvaluationInputError(
            f"--dataset {dataset}" if dataset else "catalog",
            f"{where} has no {'/'.join(organs)} tumors",
            "import annotated datasets or synthesize tumors first",
        )
    return _features(entries, spec, progress)


def study_tumor_features(
    session, study: int | str, *, spec: ExtractorSpec | None = None, progress: bool = False
) -> pd.DataFrame:
    """Features of a study's cases (blinded code as ``case``), each from its source volume's
    tumor mask in the catalog (not the blinded crop), with the case's arm and method."""
    from sqlalchemy import select

    from db.models import StudyCase
    from evaluation.store import resolve_study_id

    study_id = resolve_study_id(session, study)
    entries = []
    for case in session.scalars(
        select(StudyCase).where(StudyCase.study_id == study_id).order_by(StudyCase.code)
    ):
        vo = case.volume.organ(case.organ)
        if vo is None:
            raise EvaluationInputError(
                case.volume.ct_path,
                f"catalog has no {case.organ} entry for study case {case.code}",
                "re-import the volume",
            )
        entries.append((_meta(vo, case.arm.value, case.method, case.code), vo))
    if not entries:
        raise EvaluationInputError(
            "--study", f"study {study!r} has no cases", "check the study name"
        )
    return _features(entries, spec, progress)


def origin_comparison(
    svm_summary: pd.DataFrame, reader_origin: pd.DataFrame | None = None
) -> pd.DataFrame:
    """SVM train/test macro precision and recall (mean, sd over splits) next to each reader's
    macro organ-origin precision and recall (:func:`evaluation.readers.organ_origin_table`)."""
    s = svm_summary.set_index("metric")
    rows = [
        {
            "who": f"SVM {part}",
            "precision": s.loc[f"{part}_precision", "mean"],
            "precision_sd": s.loc[f"{part}_precision", "sd"],
            "recall": s.loc[f"{part}_recall", "mean"],
            "recall_sd": s.loc[f"{part}_recall", "sd"],
        }
        for part in ("train", "test")
    ]
    if reader_origin is not None:
        for r in reader_origin[reader_origin.organ == "macro"].itertuples():
            rows.append(
                {
                    "who": f"reader {r.reader}",
                    "precision": r.precision,
                    "precision_sd": float("nan"),
                    "recall": r.recall,
                    "recall_sd": float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["who", "precision", "precision_sd", "recall", "recall_sd"])

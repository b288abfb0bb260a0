"""Batch synthesis over many healthy volumes: progress bar, resumable, failures recorded.

Items come from the catalog (``items_from_catalog``: healthy organs in the db) or from a folder
(``items_from_dir``: ``<case>/ct.nii.gz`` + ``<case>/segmentations/<organ>.nii.gz``, the
phantom-cohort / AbdomenAtlas layout; kidney = kidney_left | kidney_right union). Output of item
``i`` goes to ``OUT/<case>`` with seed ``derive_seed(S, i)``, so a re-run is identical; an item
whose ``provenance.json`` exists is skipped; a failing item is logged in ``OUT/failures.jsonl``
(and the SynthesisJob row) and the batch carries on.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import TuringCTError
from synth_backend.io import atomic_write
from synth_backend.provenance import PROVENANCE_NAME

log = logging.getLogger(__name__)
FAILURES_NAME = "failures.jsonl"


@dataclass(frozen=True)
class BatchItem:
    """One input: a case id (used as output folder name), CT and organ-mask paths."""

    case: str
    ct_path: Path
    mask_path: Path
    organ_label: int | None = None
    extra_masks: tuple[Path, ...] = ()       # unioned with mask_path (kidney left + right)
    mask_labels: tuple[int, ...] | None = None  # several labels of one multi-label file
    source_volume_id: int | None = None


@dataclass(frozen=True)
class BatchConfig:
    method: str
    organ: str
    out_dir: str | Path
    seed: int = 0
    n: int | None = None
    device: str = "auto"
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    register: bool = False
    db_url: str | None = None


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures_path: Path | None = None
    outputs: list[Path] = field(default_factory=list)


def derive_seed(seed: int, index: int) -> int:
    """Per-item seed from (batch seed, item index): independent streams, stable across runs."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "case"


def items_from_dir(root: str | Path, organ: str) -> list[BatchItem]:
    """Cases ``<root>/<case>/ct.nii.gz`` with ``segmentations/<organ>.nii.gz`` (kidney: the
    union of ``kidney_left``/``kidney_right`` when there is no ``kidney``), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise TuringCTError(f"{root}: folder does not exist; pass a folder of "
                            "<case>/ct.nii.gz + <case>/segmentations/<organ>.nii.gz")
    items = []
    for case in sorted(p for p in root.iterdir() if (p / "ct.nii.gz").is_file()):
        seg = case / "segmentations"
        masks = [seg / f"{organ}.nii.gz"]
        if organ == "kidney" and not masks[0].is_file():
            masks = [m for m in (seg / "kidney_left.nii.gz", seg / "kidney_right.nii.gz")
                     if m.is_file()]
        masks = [m for m in masks if m.is_file()]
        if masks:
            items.append(BatchItem(case.name, case / "ct.nii.gz", masks[0],
                                   extra_masks=tuple(masks[1:])))
    if not items:
        raise TuringCTError(f"{root}: no case with ct.nii.gz and segmentations/{organ}.nii.gz; "
                            "check the folder layout")
    return items


def items_from_catalog(organ: str, *, dataset: str | None = None,
                       db_url: str | None = None) -> list[BatchItem]:
    """Healthy ``organ`` volumes of real or phantom origin in the catalog, by volume id."""
    from db.session import make_engine, make_sessionmaker
    from synth_backend.catalog import healthy_volumes

    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        items = []
        for vol in healthy_volumes(session, organ, dataset):
            org = vol.organ(organ)
            labels = tuple(int(v) for v in org.mask_labels or ())
            paths = [Path(p) for p in org.mask_paths]
            items.append(BatchItem(_safe(f"{vol.dataset.name}_{vol.case_id}"), Path(vol.ct_path),
                                   paths[0], extra_masks=tuple(paths[1:]),
                                   organ_label=labels[0] if len(labels) == 1 else None,
                                   mask_labels=labels if len(labels) > 1 else None,
                                   source_volume_id=vol.id))
    engine.dispose()
    if not items:
        raise TuringCTError(f"catalog: no healthy {organ} volume"
                            f"{f' in dataset {dataset!r}' if dataset else ''}; import data "
                            "first (`turingct data import ...` or `turingct phantom ...`)")
    return items


def _union_mask(item: BatchItem, work: Path) -> Path:
    """Write the union of an item's masks (kidney left + right) into ``work``; return it."""
    from synth_backend.io import load_volume, save_like

    def select(array: np.ndarray) -> np.ndarray:
        return np.isin(array, item.mask_labels) if item.mask_labels else array > 0

    ref = load_volume(item.mask_path, "mask")
    union = select(ref.array)
    for extra in item.extra_masks:
        union |= select(load_volume(extra, "mask").array)
    return save_like(ref, union.astype(np.uint8), work / "organ_mask.nii.gz", "mask")


def _record_failure(path: Path, entry: dict) -> None:
    lines = path.read_text().splitlines() if path.is_file() else []
    lines = [ln for ln in lines if json.loads(ln).get("case") != entry["case"]] + [
        json.dumps(entry)]
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def run_batch(items: list[BatchItem], config: BatchConfig, *,
              progress: bool = True) -> BatchSummary:
    """Synthesize ``config.n`` outputs (default: one per item; more than the items cycles
    through them with new seeds) in this process, skipping finished ones; never stops on a
    failing item. See :mod:`synth_backend.executors` for the driver and the Ray executor."""
    from synth_backend.executors import LocalExecutor, run_batch_on

    return run_batch_on(LocalExecutor(), items, config, progress=progress)


def _start_job(config: BatchConfig, n: int) -> int:
    from db.models import JobStatus, SynthesisJob
    from db.session import make_sessionmaker

    with make_sessionmaker(_engine(config.db_url)).begin() as session:
        job = SynthesisJob(method=config.method, organ=config.organ, seed=config.seed,
                           config={"options": config.options, "device": config.device,
                                   "checkpoint": config.checkpoint, "n": n},
                           out_dir=str(Path(config.out_dir).resolve()), n_total=n,
                           status=JobStatus.RUNNING, started_at=datetime.now(UTC))
        session.add(job)
        session.flush()
        return job.id


def _update_job(config: BatchConfig, job_id: int, summary: BatchSummary, final: bool,
                interrupted: bool = False) -> None:
    from db.models import JobStatus, SynthesisJob
    from db.session import make_sessionmaker

    failures = []
    if summary.failures_path and summary.failures_path.is_file():
        failures = [json.loads(ln) for ln in summary.failures_path.read_text().splitlines()]
    with make_sessionmaker(_engine(config.db_url)).begin() as session:
        job = session.get(SynthesisJob, job_id)
        job.n_done, job.n_failed = summary.done, summary.failed
        job.errors = [{"item": f["index"], "case": f["case"], "error": f["error"]}
                      for f in failures]
        if interrupted:  # stopped by the user or an error in the driver: re-run to resume
            job.status = JobStatus.INTERRUPTED
        elif final:
            job.status = JobStatus.FAILED if summary.failed and not summary.done else JobStatus.DONE
            job.finished_at = datetime.now(UTC)


@functools.cache
def _engine(url: str | None):
    """One engine per database for the whole batch (not one per item)."""
    from db.session import make_engine

    return make_engine(url)


def _register(config: BatchConfig, job_id: int, item: BatchItem, target: Path) -> None:
    """Register a synthetic volume and its provenance in the catalog (dataset 'synthetic')."""
    from sqlalchemy import select

    from db.models import (
        Dataset,
        DatasetFormat,
        Origin,
        SyntheticProvenance,
        TumorKind,
        Volume,
        VolumeOrgan,
    )
    from db.session import make_sessionmaker
    from synth_backend.io import load_volume
    from synth_backend.provenance import read_provenance

    prov = read_provenance(target)
    ct = load_volume(target / "ct.nii.gz", "ct")
    name = f"synthetic-{config.method}"
    with make_sessionmaker(_engine(config.db_url)).begin() as session:
        ds = session.scalar(select(Dataset).where(Dataset.name == name))
        if ds is None:
            ds = Dataset(name=name, format=DatasetFormat.SYNTHETIC,
                         root_path=str(Path(config.out_dir).resolve()))
            session.add(ds)
            session.flush()
        # one source can get tumors in several organs with the same seed: keep them apart
        case_id = f"{item.case}-{config.organ}-{prov['seed']}"
        if session.scalar(select(Volume).where(Volume.dataset_id == ds.id,
                                               Volume.case_id == case_id)) is not None:
            return
        import nibabel as nib

        vol = Volume(dataset_id=ds.id, case_id=case_id, origin=Origin.SYNTHETIC,
                     ct_path=str((target / "ct.nii.gz").resolve()),
                     ct_sha256=prov["outputs"]["ct.nii.gz"]["sha256"], shape=list(ct.shape),
                     spacing=list(ct.spacing), affine=np.asarray(ct.affine).tolist(),
                     axcodes="".join(nib.aff2axcodes(ct.source_affine if ct.source_affine
                                                     is not None else ct.affine)),
                     meta={"method": config.method})
        session.add(vol)
        session.flush()
        stats = prov["tumor"]
        session.add(VolumeOrgan(
            volume_id=vol.id, organ=config.organ,
            mask_paths=[str(Path(m).resolve()) for m in (item.mask_path, *item.extra_masks)],
            mask_sha256=prov["inputs"]["organ_mask"]["sha256"],
            mask_labels=(list(item.mask_labels) if item.mask_labels else
                         [item.organ_label] if item.organ_label is not None else None),
            organ_voxels=int(prov.get("organ_voxels", 0)), tumor_kind=TumorKind.SYNTHETIC,
            tumor_paths=[str((target / "tumor_mask.nii.gz").resolve())],
            tumor_sha256=prov["outputs"]["tumor_mask.nii.gz"]["sha256"],
            tumor_voxels=int(stats["voxels"]),
            # largest lesion, as the catalog does for imported tumors
            tumor_diameter_mm=float(stats.get("largest_diameter_mm") or 0.0)))
        session.add(SyntheticProvenance(
            volume_id=vol.id, source_volume_id=item.source_volume_id, job_id=job_id,
            method=config.method, organ=config.organ, params=prov["params"],
            seed=int(prov["seed"]), device=str(prov["device"]),
            checkpoint_hash=prov.get("checkpoint_hash"), code_version=prov["code_version"],
            tumor_stats=stats, manifest_path=str((target / PROVENANCE_NAME).resolve())))

"""The database side of a synthesis batch: its items from the catalog, and the recorder that
writes the SynthesisJob row and registers every finished output (dataset 'synthetic-<method>').

``synth_backend`` runs the batch on files only and reports through the
:class:`~synth_backend.batch.BatchRecorder` it is given; :func:`run_batch` and
:func:`run_batch_on` here pass a :class:`CatalogRecorder` when ``config.register`` is set.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path

import nibabel as nib
import numpy as np
from sqlalchemy import select

from catalog.volumes import healthy_volumes
from core.errors import InputError
from db.models import (
    Dataset,
    DatasetFormat,
    JobStatus,
    Origin,
    SynthesisJob,
    SyntheticProvenance,
    TumorKind,
    Volume,
    VolumeOrgan,
)
from db.session import make_engine, make_sessionmaker
from synth_backend import executors
from synth_backend.batch import BatchConfig, BatchItem, BatchSummary, safe_case_name
from synth_backend.io import load_volume
from synth_backend.provenance import PROVENANCE_NAME, read_provenance
from synth_backend.registry import UnknownMethodError, registered_methods

__all__ = ["BatchConfig", "CatalogRecorder", "items_from_catalog", "run_batch", "run_batch_on"]


def items_from_catalog(
    organ: str, *, dataset: str | None = None, db_url: str | None = None
) -> list[BatchItem]:
    """Healthy ``organ`` volumes of real or phantom origin in the catalog, by volume id."""
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        items = []
        for vol in healthy_volumes(session, organ, dataset):
            org = vol.organ(organ)
            assert org is not None  # healthy_volumes returns only volumes with this organ
            labels = tuple(int(v) for v in org.mask_labels or ())
            paths = [Path(p) for p in org.mask_paths]
            items.append(
                BatchItem(
                    safe_case_name(f"{vol.dataset.name}_{vol.case_id}"),
                    Path(vol.ct_path),
                    paths[0],
                    extra_masks=tuple(paths[1:]),
                    organ_label=labels[0] if len(labels) == 1 else None,
                    mask_labels=labels if len(labels) > 1 else None,
                    source_volume_id=vol.id,
                )
            )
    engine.dispose()
    if not items:
        raise InputError(
            "catalog",
            f"no healthy {organ} volume{f' in dataset {dataset!r}' if dataset else ''}",
            "import data first (`turingct data import ...` or `turingct phantom ...`)",
        )
    return items


def run_batch(
    items: list[BatchItem], config: BatchConfig, *, progress: bool = True
) -> BatchSummary:
    """:func:`synth_backend.executors.run_batch`, registering in the catalog when asked."""
    return executors.run_batch(items, config, progress=progress, recorder=recorder_for(config))


def run_batch_on(
    executor: executors.Executor,
    items: list[BatchItem],
    config: BatchConfig,
    *,
    task_fn: executors.TaskFn = executors.run_task,
    progress: bool = True,
) -> BatchSummary:
    """:func:`synth_backend.executors.run_batch_on`, registering in the catalog when asked."""
    return executors.run_batch_on(
        executor, items, config, task_fn=task_fn, progress=progress, recorder=recorder_for(config)
    )


def recorder_for(config: BatchConfig) -> CatalogRecorder | None:
    return CatalogRecorder(config) if config.register else None


@functools.cache
def _engine(url: str | None):
    """One engine per database for the whole batch (not one per item)."""
    return make_engine(url)


class CatalogRecorder:
    """Writes one batch's SynthesisJob row and registers its outputs (each in a transaction)."""

    def __init__(self, config: BatchConfig):
        # `method` columns stay free strings in the schema (the registry grows without a
        # migration, unlike the organ CHECK), so this write path is where they are checked
        if config.method not in registered_methods():
            raise UnknownMethodError(
                f"method {config.method!r}",
                "is not a registered synthesis method",
                f"use one of {', '.join(registered_methods())}",
            )
        self.config = config
        self.sessions = make_sessionmaker(_engine(config.db_url))

    def start(self, config: BatchConfig, n: int) -> int:
        with self.sessions.begin() as session:
            job = SynthesisJob(
                method=config.method,
                organ=config.organ,
                seed=config.seed,
                config={
                    "options": config.options,
                    "device": config.device,
                    "checkpoint": config.checkpoint,
                    "n": n,
                },
                out_dir=str(Path(config.out_dir).resolve()),
                n_total=n,
                status=JobStatus.RUNNING,
                started_at=datetime.now(UTC),
            )
            session.add(job)
            session.flush()
            return job.id

    def update(
        self, job: int, summary: BatchSummary, final: bool, interrupted: bool = False
    ) -> None:
        failures = []
        if summary.failures_path and summary.failures_path.is_file():
            failures = [json.loads(ln) for ln in summary.failures_path.read_text().splitlines()]
        with self.sessions.begin() as session:
            row = session.get_one(SynthesisJob, job)
            row.n_done, row.n_failed = summary.done, summary.failed
            row.errors = [
                {"item": f["index"], "case": f["case"], "error": f["error"]} for f in failures
            ]
            if interrupted:  # stopped by the user or an error in the driver: re-run to resume
                row.status = JobStatus.INTERRUPTED
            elif final:
                row.status = (
                    JobStatus.FAILED if summary.failed and not summary.done else JobStatus.DONE
                )
                row.finished_at = datetime.now(UTC)

    def register(self, job: int, item: BatchItem, target: Path) -> None:
        """Register a synthetic volume and its provenance in the catalog (dataset 'synthetic')."""
        config = self.config
        prov = read_provenance(target)
        ct = load_volume(target / "ct.nii.gz", "ct")
        name = f"synthetic-{config.method}"
        with self.sessions.begin() as session:
            ds = session.scalar(select(Dataset).where(Dataset.name == name))
            if ds is None:
                ds = Dataset(
                    name=name,
                    format=DatasetFormat.SYNTHETIC,
                    root_path=str(Path(config.out_dir).resolve()),
                )
                session.add(ds)
                session.flush()
            # one source can get tumors in several organs with the same seed: keep them apart
            case_id = f"{item.case}-{config.organ}-{prov['seed']}"
            if (
                session.scalar(
                    select(Volume).where(Volume.dataset_id == ds.id, Volume.case_id == case_id)
                )
                is not None
            ):
                return
            vol = Volume(
                dataset_id=ds.id,
                case_id=case_id,
                origin=Origin.SYNTHETIC,
                ct_path=str((target / "ct.nii.gz").resolve()),
                ct_sha256=prov["outputs"]["ct.nii.gz"]["sha256"],
                shape=list(ct.shape),
                spacing=list(ct.spacing),
                affine=np.asarray(ct.affine).tolist(),
                axcodes="".join(
                    nib.aff2axcodes(ct.source_affine if ct.source_affine is not None else ct.affine)
                ),
                meta={"method": config.method},
            )
            session.add(vol)
            session.flush()
            stats = prov["tumor"]
            session.add(
                VolumeOrgan(
                    volume_id=vol.id,
                    organ=config.organ,
                    mask_paths=[
                        str(Path(m).resolve()) for m in (item.mask_path, *item.extra_masks)
                    ],
                    mask_sha256=prov["inputs"]["organ_mask"]["sha256"],
                    mask_labels=(
                        list(item.mask_labels)
                        if item.mask_labels
                        else [item.organ_label]
                        if item.organ_label is not None
                        else None
                    ),
                    organ_voxels=int(prov.get("organ_voxels", 0)),
                    tumor_kind=TumorKind.SYNTHETIC,
                    tumor_paths=[str((target / "tumor_mask.nii.gz").resolve())],
                    tumor_sha256=prov["outputs"]["tumor_mask.nii.gz"]["sha256"],
                    tumor_voxels=int(stats["voxels"]),
                    # largest lesion, as the catalog does for imported tumors
                    tumor_diameter_mm=float(stats.get("largest_diameter_mm") or 0.0),
                )
            )
            session.add(
                SyntheticProvenance(
                    volume_id=vol.id,
                    source_volume_id=item.source_volume_id,
                    job_id=job,
                    method=config.method,
                    organ=config.organ,
                    params=prov["params"],
                    seed=int(prov["seed"]),
                    device=str(prov["device"]),
                    checkpoint_hash=prov.get("checkpoint_hash"),
                    code_version=prov["code_version"],
                    tumor_stats=stats,
                    manifest_path=str((target / PROVENANCE_NAME).resolve()),
                )
            )

"""Batch synthesis: per-item seeds, resume, failures recorded, catalog registration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalog.batch import run_batch
from synth_backend.batch import BatchConfig, derive_seed, items_from_dir
from synth_backend.io import save_volume
from tests.synth_backend.test_handcrafted import organ_phantom

AFFINE = np.diag([1.5, 1.5, 2.0, 1.0])


@pytest.fixture
def cohort(tmp_path):
    root = tmp_path / "cohort"
    ct, organ = organ_phantom(shape=(48, 48, 32))
    for i, mask in enumerate([organ, organ, np.zeros_like(organ)]):
        seg = root / f"case{i}" / "segmentations"
        seg.mkdir(parents=True)
        save_volume(ct, AFFINE, root / f"case{i}" / "ct.nii.gz", "ct")
        half = mask.copy()
        half[24:] = False
        save_volume(half.astype(np.uint8), AFFINE, seg / "kidney_left.nii.gz", "mask")
        save_volume((mask & ~half).astype(np.uint8), AFFINE, seg / "kidney_right.nii.gz", "mask")
    return root


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(7, 0) == derive_seed(7, 0)
    assert len({derive_seed(7, i) for i in range(100)}) == 100
    assert derive_seed(7, 0) != derive_seed(8, 0)


def test_batch_resume_and_failures(cohort, tmp_path):
    items = items_from_dir(cohort, "kidney")
    assert [i.case for i in items] == ["case0", "case1", "case2"]
    assert len(items[0].extra_masks) == 1  # kidney = left | right
    config = BatchConfig(
        method="handcrafted",
        organ="kidney",
        out_dir=tmp_path / "out",
        seed=5,
        options={"diameter_mm": 12.0},
    )
    first = run_batch(items, config)
    assert (first.done, first.failed, first.skipped) == (2, 1, 0)
    failures = [
        json.loads(x) for x in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()
    ]
    assert failures[0]["case"] == "case2" and "empty" in failures[0]["error"]
    prov = json.loads((tmp_path / "out" / "case1" / "provenance.json").read_text())
    assert prov["seed"] == derive_seed(5, 1)
    stamp = (tmp_path / "out" / "case0" / "ct.nii.gz").stat().st_mtime_ns
    second = run_batch(items, config)
    assert (second.done, second.skipped, second.failed) == (2, 2, 1)
    assert (tmp_path / "out" / "case0" / "ct.nii.gz").stat().st_mtime_ns == stamp
    assert len((tmp_path / "out" / "failures.jsonl").read_text().splitlines()) == 1


def test_batch_registers_in_catalog(cohort, tmp_path, db_url):
    from sqlalchemy import select

    from db.models import JobStatus, SynthesisJob, SyntheticProvenance, Volume
    from db.session import make_engine, make_sessionmaker

    items = items_from_dir(cohort, "kidney")
    config = BatchConfig(
        method="handcrafted",
        organ="kidney",
        out_dir=tmp_path / "out",
        seed=1,
        options={"diameter_mm": 12.0},
        register=True,
        db_url=db_url,
    )
    summary = run_batch(items, config)
    assert summary.done == 2 and summary.failed == 1
    with make_sessionmaker(make_engine(db_url))() as s:
        job = s.scalars(select(SynthesisJob)).one()
        assert job.status == JobStatus.DONE and job.n_done == 2 and job.n_failed == 1
        assert job.errors[0]["case"] == "case2"
        provs = s.scalars(select(SyntheticProvenance)).all()
        assert len(provs) == 2 and all(p.method == "handcrafted" for p in provs)
        vols = s.scalars(select(Volume)).all()
        assert {v.origin.value for v in vols} == {"synthetic"}


def test_catalog_batch_uses_multilabel_organ_and_registers_on_resume(tmp_path, db_url):
    """TotalSegmentator-style label maps: kidney = labels {2, 3} of one file, never "any
    nonzero"; an output written before a crash (no catalog row yet) is registered on re-run;
    two organs of the same source with the same seed get distinct catalog entries."""
    from sqlalchemy import func, select

    from catalog.batch import items_from_catalog
    from catalog.volumes import import_dataset
    from db.models import SyntheticProvenance, Volume
    from db.session import make_engine, session_scope
    from synth_backend.io import load_volume

    ct, organ = organ_phantom(shape=(48, 48, 32))
    labels = np.zeros(organ.shape, np.uint8)
    labels[organ] = 5  # "liver"
    labels[:, :, :4] = 9  # another structure, must never count as kidney
    half = organ.copy()
    half[:, :, 16:] = False
    labels[half] = 2
    labels[organ & ~half & (np.indices(organ.shape)[0] < 24)] = 3
    root = tmp_path / "ts"
    root.mkdir()
    save_volume(ct, AFFINE, root / "ct.nii.gz", "ct")
    save_volume(labels, AFFINE, root / "seg.nii.gz", "mask")
    (root / "map.json").write_text(
        json.dumps({"labels": {"2": "kidney_right", "3": "kidney_left", "5": "liver"}})
    )
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        import_dataset(
            s, "totalseg", root / "seg.nii.gz", ct=root / "ct.nii.gz", class_map=root / "map.json"
        )
    kidney = np.isin(labels, [2, 3])
    items = items_from_catalog("kidney", db_url=db_url)
    assert items[0].mask_labels == (2, 3)

    def config(organ):
        return BatchConfig(
            method="handcrafted",
            organ=organ,
            out_dir=tmp_path / organ,
            seed=3,
            options={"diameter_mm": 8.0},
            register=True,
            db_url=db_url,
        )

    run_batch(items, BatchConfig(**{**config("kidney").__dict__, "register": False}))
    tumor = load_volume(next((tmp_path / "kidney").glob("*/tumor_mask.nii.gz")), "mask").array
    assert tumor.any() and not (tumor.astype(bool) & ~kidney).any()
    run_batch(items, config("kidney"))  # resume: output exists, registration missing
    run_batch(items_from_catalog("liver", db_url=db_url), config("liver"))
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(SyntheticProvenance.id))) == 2
        assert (
            len({v.case_id for v in s.scalars(select(Volume).where(Volume.origin == "synthetic"))})
            == 2
        )
    engine.dispose()


def test_interrupted_batch_is_marked_and_resumes(cohort, tmp_path, db_url):
    from sqlalchemy import select

    from catalog.batch import run_batch_on
    from db.models import JobStatus, SynthesisJob
    from db.session import make_engine, session_scope
    from synth_backend.executors import LocalExecutor, run_task

    items = items_from_dir(cohort, "kidney")[:2]
    config = BatchConfig(
        method="handcrafted",
        organ="kidney",
        out_dir=tmp_path / "out",
        seed=1,
        options={"diameter_mm": 12.0},
        register=True,
        db_url=db_url,
    )

    def stop_at_second(task, cfg):
        if task.index == 1:
            raise KeyboardInterrupt
        return run_task(task, cfg)

    with pytest.raises(KeyboardInterrupt):
        run_batch_on(LocalExecutor(), items, config, task_fn=stop_at_second, progress=False)
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        job = s.scalars(select(SynthesisJob)).one()
        assert job.status == JobStatus.INTERRUPTED and job.n_done == 1
    summary = run_batch(items, config, progress=False)
    assert (summary.done, summary.skipped) == (2, 1)
    with session_scope(engine) as s:
        assert (
            s.scalars(select(SynthesisJob).order_by(SynthesisJob.id)).all()[-1].status
            == JobStatus.DONE
        )
    engine.dispose()


def test_catalog_recorder_refuses_an_unregistered_method(tmp_path, db_url):
    """The method columns are free strings in the schema; the catalog write path checks them."""
    from catalog.batch import CatalogRecorder
    from synth_backend.registry import UnknownMethodError

    config = BatchConfig(
        method="handcrafted ", organ="liver", out_dir=tmp_path, seed=0, register=True, db_url=db_url
    )
    with pytest.raises(UnknownMethodError, match="use one of handcrafted"):
        CatalogRecorder(config)
    ok = CatalogRecorder(BatchConfig(**{**config.__dict__, "method": "handcrafted"}))
    assert ok.config.method == "handcrafted"

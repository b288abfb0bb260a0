"""The executor split of a batch (plan / task / driver) matches ``executors.run_batch``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth_backend.batch import BatchConfig, derive_seed, items_from_dir
from synth_backend.executors import (
    LocalExecutor,
    TaskResult,
    plan_tasks,
    run_batch,
    run_batch_on,
)
from synth_backend.io import load_volume, save_volume
from tests.synth_backend.test_handcrafted import organ_phantom

AFFINE = np.diag([1.5, 1.5, 2.0, 1.0])


@pytest.fixture
def items(tmp_path):
    root = tmp_path / "cohort"
    ct, organ = organ_phantom(shape=(40, 40, 28))
    for i, mask in enumerate([organ, np.zeros_like(organ)]):
        (root / f"case{i}" / "segmentations").mkdir(parents=True)
        save_volume(ct, AFFINE, root / f"case{i}" / "ct.nii.gz", "ct")
        save_volume(
            mask.astype(np.uint8),
            AFFINE,
            root / f"case{i}" / "segmentations" / "liver.nii.gz",
            "mask",
        )
    return items_from_dir(root, "liver")


def _config(out, **kw):
    return BatchConfig(
        method="handcrafted",
        organ="liver",
        out_dir=out,
        seed=9,
        options={"diameter_mm": 10.0},
        **kw,
    )


def test_plan_names_and_seeds_cycle_like_run_batch(items, tmp_path):
    tasks = plan_tasks(items, _config(tmp_path, n=5))
    assert [t.target.name for t in tasks] == [
        "case0_000",
        "case1_000",
        "case0_001",
        "case1_001",
        "case0_002",
    ]
    assert [t.seed for t in tasks] == [derive_seed(9, i) for i in range(5)]
    assert [t.target.name for t in plan_tasks(items, _config(tmp_path))] == ["case0", "case1"]


def test_local_executor_reproduces_run_batch(items, tmp_path):
    ref = run_batch(items, _config(tmp_path / "ref"))
    got = run_batch_on(LocalExecutor(), items, _config(tmp_path / "new"), progress=False)
    assert (got.done, got.failed, got.skipped) == (ref.done, ref.failed, ref.skipped) == (1, 1, 0)
    a = load_volume(tmp_path / "ref" / "case0" / "ct.nii.gz", "ct").array
    b = load_volume(tmp_path / "new" / "case0" / "ct.nii.gz", "ct").array
    assert np.array_equal(a, b)
    (fail,) = [
        json.loads(x) for x in (tmp_path / "new" / "failures.jsonl").read_text().splitlines()
    ]
    assert fail["case"] == "case1" and fail["host"]
    # outputs of either runner count as done for the other: nothing is recomputed
    again = run_batch_on(LocalExecutor(), items, _config(tmp_path / "ref"), progress=False)
    assert (again.done, again.skipped, again.failed) == (1, 1, 1)


def test_driver_only_counts_what_workers_report(items, tmp_path):
    seen = []

    def fake(task, config) -> TaskResult:
        seen.append(task.index)
        return TaskResult(task.index, None if task.index % 2 == 0 else "RuntimeError: boom")

    summary = run_batch_on(
        LocalExecutor(), items, _config(tmp_path / "o", n=4), task_fn=fake, progress=False
    )
    assert seen == [0, 1, 2, 3]
    assert (summary.done, summary.failed) == (2, 2)
    lines = (tmp_path / "o" / "failures.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["index"] for x in lines) == [1, 3]
    assert sorted(json.loads(x)["case"] for x in lines) == ["case1_000", "case1_001"]


def test_missing_ray_gives_the_install_command(monkeypatch):
    import sys

    from synth_backend.ray_executor import RayExecutor, RayMissingError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'turingct\[ray\]'") as info:
        list(
            RayExecutor().run(
                [],
                BatchConfig(method="handcrafted", organ="liver", out_dir="unused"),
                lambda t, c: None,
            )
        )
    assert isinstance(info.value, RayMissingError)

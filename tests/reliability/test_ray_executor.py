"""The Ray executor on a local CPU Ray instance: same outputs as the local executor, a
crashed worker is retried, progress lands in one SynthesisJob row, resume skips done items.

Skipped when ``ray`` is not installed (``pip install 'turingct[ray]'``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from catalog.batch import run_batch_on
from synth_backend.batch import BatchConfig, items_from_dir
from synth_backend.errors import TuringCTError
from synth_backend.executors import LocalExecutor, TaskResult, run_task
from synth_backend.io import load_volume, save_volume
from tests.synth_backend.test_handcrafted import organ_phantom

ray = pytest.importorskip("ray", reason="ray not installed; pip install 'turingct[ray]'")
from synth_backend.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
AFFINE = np.diag([1.5, 1.5, 2.0, 1.0])


@pytest.fixture(scope="module")
def local_ray():
    """A 2-CPU local Ray; workers import this repository (tests included) via PYTHONPATH."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield
    ray.shutdown()


@pytest.fixture
def cohort(tmp_path):
    """3 liver cases (folder layout); case2's organ mask is empty, so it must fail."""
    root = tmp_path / "cohort"
    ct, organ = organ_phantom(shape=(40, 40, 28))
    for i, mask in enumerate([organ, organ, np.zeros_like(organ)]):
        (root / f"case{i}" / "segmentations").mkdir(parents=True)
        save_volume(ct, AFFINE, root / f"case{i}" / "ct.nii.gz", "ct")
        save_volume(
            mask.astype(np.uint8),
            AFFINE,
            root / f"case{i}" / "segmentations" / "liver.nii.gz",
            "mask",
        )
    return items_from_dir(root, "liver")


def _config(out: Path, **kw) -> BatchConfig:
    return BatchConfig(
        method="handcrafted",
        organ="liver",
        out_dir=out,
        seed=4,
        options={"diameter_mm": 10.0},
        **kw,
    )


def crash_once(task, config) -> TaskResult:
    """Kill the worker process the first time each task runs (a crashed GPU worker)."""
    marker = Path(config.out_dir) / f".attempted-{task.index}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os._exit(1)
    return run_task(task, config)


def always_crash(task, config) -> TaskResult:
    os._exit(1)


def test_ray_matches_local_and_records_one_job(local_ray, cohort, tmp_path, db_url, engine):
    from sqlalchemy import select

    from db.models import JobStatus, SynthesisJob
    from db.session import session_scope

    local = run_batch_on(LocalExecutor(), cohort, _config(tmp_path / "local"), progress=False)
    remote = run_batch_on(
        RayExecutor(),
        cohort,
        _config(tmp_path / "ray", register=True, db_url=db_url),
        progress=False,
    )
    assert (remote.done, remote.failed, remote.skipped) == (local.done, local.failed, 0)
    assert (remote.done, remote.failed) == (2, 1)
    for case in ("case0", "case1"):  # same per-item seeds: voxel-identical results
        a = load_volume(tmp_path / "local" / case / "ct.nii.gz", "ct").array
        b = load_volume(tmp_path / "ray" / case / "ct.nii.gz", "ct").array
        assert np.array_equal(a, b)
    failures = (tmp_path / "ray" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 1 and '"case2"' in failures[0]
    with session_scope(engine) as s:
        (job,) = s.scalars(select(SynthesisJob)).all()
        assert (job.n_total, job.n_done, job.n_failed) == (3, 2, 1)
        assert job.status == JobStatus.DONE and job.errors[0]["case"] == "case2"
    again = run_batch_on(RayExecutor(), cohort, _config(tmp_path / "ray"), progress=False)
    assert (again.done, again.skipped, again.failed) == (2, 2, 1)  # resume: nothing redone


def test_crashed_worker_is_retried(local_ray, cohort, tmp_path):
    out = tmp_path / "crash"
    summary = run_batch_on(
        RayExecutor(max_retries=2), cohort[:2], _config(out), task_fn=crash_once, progress=False
    )
    assert (summary.done, summary.failed) == (2, 0)
    assert sorted(p.name for p in out.glob(".attempted-*")) == [".attempted-0", ".attempted-1"]
    assert all((out / c / "provenance.json").is_file() for c in ("case0", "case1"))


def test_worker_crash_beyond_retries_is_a_recorded_failure(local_ray, cohort, tmp_path):
    summary = run_batch_on(
        RayExecutor(max_retries=0),
        cohort[:1],
        _config(tmp_path / "x"),
        task_fn=always_crash,
        progress=False,
    )
    assert (summary.done, summary.failed) == (0, 1)
    line = (tmp_path / "x" / "failures.jsonl").read_text()
    assert "after 0 retries" in line and "case0" in line


def test_gpu_request_on_cpu_cluster_is_a_clear_error(local_ray, cohort, tmp_path):
    with pytest.raises(TuringCTError, match="--gpus-per-task 0"):
        list(RayExecutor(gpus_per_task=1).run([], _config(tmp_path / "g"), run_task))


def test_cli_synth_batch_on_ray(local_ray, cohort, tmp_path, capsys):
    """`turingct synth batch --executor ray` (skips until the option is wired in the CLI)."""
    from turingct.cli import build_parser, main

    try:
        build_parser().parse_args(
            [
                "synth",
                "batch",
                "--method",
                "handcrafted",
                "--organ",
                "liver",
                "--from-dir",
                "x",
                "--out",
                "y",
                "--executor",
                "ray",
                "--gpus-per-task",
                "0",
            ]
        )
    except SystemExit:
        pytest.skip(
            "`synth batch --executor ray --gpus-per-task` is not wired in "
            "turingct/cli/synth_cmd.py yet"
        )
    root = cohort[0].ct_path.parents[1]
    argv = [
        "synth",
        "batch",
        "--method",
        "handcrafted",
        "--organ",
        "liver",
        "--from-dir",
        str(root),
        "--out",
        str(tmp_path / "cli"),
        "--diameter-mm",
        "10",
        "--executor",
        "ray",
        "--gpus-per-task",
        "0",
    ]
    assert main(argv) == 0
    assert "2 done" in capsys.readouterr().out
    assert all((tmp_path / "cli" / c / "provenance.json").is_file() for c in ("case0", "case1"))
    assert main([*argv[:-2], "--gpus-per-task", "1"]) == 2  # no GPU in a CPU-only Ray
    assert "--gpus-per-task 0" in capsys.readouterr().err

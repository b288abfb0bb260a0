"""Where the items of a synthesis batch run: in this process (local) or on a Ray cluster.

The batch is split into a *plan* (:func:`plan_tasks`: the same output names and per-item seeds
as :func:`run_batch`, so a batch started locally can be finished on a
cluster and vice versa), a *task* (:func:`run_task`: one item, no database access, safe to run
on any node that sees the input and output folders) and a *driver* (:func:`run_batch_on`):
it skips finished items (``provenance.json`` present), hands the rest to an executor, and alone
writes the failures file and the SynthesisJob row, so progress from every worker is aggregated
in one place. An executor only needs ``run(tasks, config, task_fn) -> iterator of results in
completion order``; :class:`LocalExecutor` is the default, ``synth_backend.ray_executor``
provides :class:`~synth_backend.ray_executor.RayExecutor`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from core.errors import InputError, TuringCTError
from synth_backend.batch import (
    FAILURES_NAME,
    BatchConfig,
    BatchItem,
    BatchRecorder,
    BatchSummary,
    derive_seed,
    record_failure,
    union_mask,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchTask:
    """Output ``index`` of a batch: its input item, output folder and seed."""

    index: int
    item: BatchItem
    target: Path
    seed: int


@dataclass(frozen=True)
class TaskResult:
    """What a worker reports back: ``error`` is None on success (one line otherwise)."""

    index: int
    error: str | None = None
    seconds: float = 0.0
    host: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


TaskFn = Callable[[BatchTask, BatchConfig], TaskResult]


class Executor(Protocol):
    """Runs tasks somewhere and yields their results as they complete (any order)."""

    def run(
        self, tasks: list[BatchTask], config: BatchConfig, task_fn: TaskFn
    ) -> Iterator[TaskResult]: ...


def plan_tasks(items: list[BatchItem], config: BatchConfig) -> list[BatchTask]:
    """The ``config.n`` outputs (default one per item; more cycles through the items with
    new seeds), named and seeded exactly as :func:`run_batch` does."""
    if not items:
        raise InputError("batch", "no input items", "check the input folder or catalog")
    n = config.n if config.n is not None else len(items)
    out = Path(config.out_dir)
    tasks = []
    for index in range(n):
        item = items[index % len(items)]
        name = item.case if n <= len(items) else f"{item.case}_{index // len(items):03d}"
        tasks.append(BatchTask(index, item, out / name, derive_seed(config.seed, index)))
    return tasks


def is_done(task: BatchTask) -> bool:
    """A task is finished when its provenance manifest (written last) exists."""
    from synth_backend.provenance import PROVENANCE_NAME

    return (task.target / PROVENANCE_NAME).is_file()


def run_task(task: BatchTask, config: BatchConfig) -> TaskResult:
    """Synthesize one output (runs on a worker; touches only files). Input problems and
    method failures come back as ``error``; anything else (a killed or crashed worker)
    propagates so the executor can retry the task."""
    from synth_backend.runner import synthesize_file

    started = time.perf_counter()
    item = task.item
    try:
        needs_union = item.extra_masks or item.mask_labels
        mask = union_mask(item, task.target / "_work") if needs_union else item.mask_path
        synthesize_file(
            config.method,
            item.ct_path,
            mask,
            organ=config.organ,
            organ_label=item.organ_label,
            out_dir=task.target,
            seed=task.seed,
            device=config.device,
            checkpoint=config.checkpoint,
            **config.options,
        )
        error = None
    except (TuringCTError, ValueError, RuntimeError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return TaskResult(task.index, error, time.perf_counter() - started, socket.gethostname())


class LocalExecutor:
    """Runs tasks one after another in this process (the default executor)."""

    def run(
        self, tasks: list[BatchTask], config: BatchConfig, task_fn: TaskFn = run_task
    ) -> Iterator[TaskResult]:
        for task in tasks:
            yield task_fn(task, config)


def run_batch_on(
    executor: Executor,
    items: list[BatchItem],
    config: BatchConfig,
    *,
    task_fn: TaskFn = run_task,
    progress: bool = True,
    recorder: BatchRecorder | None = None,
) -> BatchSummary:
    """Run a batch on ``executor``: skip finished outputs, run the rest, record failures in
    ``OUT/failures.jsonl`` and report the job and every output to ``recorder``
    (:class:`catalog.batch.CatalogRecorder` writes the SynthesisJob row and the catalog).

    Same outputs, seeds and resume rule as :func:`run_batch`; only the
    driver (this function) writes the failures file and calls the recorder.
    """
    from tqdm import tqdm

    if config.register and recorder is None:
        raise InputError(
            "batch",
            "register=True needs a recorder",
            "run it through catalog.batch.run_batch / run_batch_on, which pass the catalog's",
        )
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = plan_tasks(items, config)
    failures = out / FAILURES_NAME
    summary = BatchSummary(failures_path=failures)
    recorder = recorder if recorder is not None else NullRecorder()
    job = recorder.start(config, len(tasks))
    pending = []
    for task in tasks:
        if is_done(task):
            summary.skipped += 1
            summary.done += 1
            summary.outputs.append(task.target)
            recorder.register(job, task.item, task.target)  # killed between write and register
        else:
            pending.append(task)
    by_index = {t.index: t for t in pending}
    bar = tqdm(
        total=len(tasks),
        initial=summary.skipped,
        unit="vol",
        disable=not progress,
        desc=f"{config.method}/{config.organ} ({type(executor).__name__})",
    )
    results = _results(executor, pending, config, task_fn)
    try:
        for result in results:
            task = by_index[result.index]
            if result.ok:
                summary.done += 1
                summary.outputs.append(task.target)
                recorder.register(job, task.item, task.target)
            else:
                summary.failed += 1
                # keyed by output name: with --n > items one input gives several outputs
                record_failure(
                    failures,
                    {
                        "index": task.index,
                        "case": task.target.name,
                        "ct": str(task.item.ct_path),
                        "error": result.error,
                        "host": result.host,
                        "time": datetime.now(UTC).isoformat(),
                    },
                )
                log.warning("item %d (%s) failed: %s", task.index, task.item.case, result.error)
            bar.update(1)
            bar.set_postfix(done=summary.done, failed=summary.failed)
            recorder.update(job, summary, False)
    except BaseException:
        recorder.update(job, summary, False, interrupted=True)
        raise
    finally:
        bar.close()
        if hasattr(results, "close"):
            results.close()  # now, not at garbage collection: cancels queued remote tasks
    recorder.update(job, summary, True)
    return summary


class NullRecorder:
    """The recorder of a batch that registers nothing (files and failures.jsonl only)."""

    def start(self, config: BatchConfig, n: int) -> int:
        return 0

    def register(self, job: int, item: BatchItem, target: Path) -> None:
        pass

    def update(
        self, job: int, summary: BatchSummary, final: bool, interrupted: bool = False
    ) -> None:
        pass


def _results(
    executor: Executor, tasks: list[BatchTask], config: BatchConfig, task_fn: TaskFn
) -> Iterable[TaskResult]:
    return executor.run(tasks, config, task_fn) if tasks else ()


def run_batch(
    items: list[BatchItem],
    config: BatchConfig,
    *,
    progress: bool = True,
    recorder: BatchRecorder | None = None,
) -> BatchSummary:
    """Synthesize ``config.n`` outputs (default: one per item; more than the items cycles
    through them with new seeds) in this process, skipping finished ones; never stops on a
    failing item. The driver is :func:`run_batch_on`; see
    :func:`catalog.batch.run_batch` for a batch that registers its outputs."""
    return run_batch_on(LocalExecutor(), items, config, progress=progress, recorder=recorder)

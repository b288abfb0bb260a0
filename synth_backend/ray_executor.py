"""Run a synthesis batch on a Ray cluster: one Ray task per output, GPU requests, retries.

``RayExecutor(address=..., gpus_per_task=1)`` plugs into
:func:`synth_backend.executors.run_batch_on`. Each task asks Ray for ``gpus_per_task`` GPUs
(Ray then sets ``CUDA_VISIBLE_DEVICES`` for it, so ``device="auto"`` picks the GPU it was
given) and ``cpus_per_task`` CPUs. A task whose worker process or node dies is re-run up to
``max_retries`` times (same seed, same output folder; ``provenance.json`` is written last, so
a half-written attempt is never taken for a finished one and the retry overwrites it); input
problems are not retried, they are reported. Results stream back to the driver, which alone writes the
failures file and the database (one SynthesisJob row for the whole cluster).

Every node needs the same Python environment (turingct installed) and must see the input and
output folders at the same paths (a shared filesystem). ``ray`` is an optional extra, imported
only here: ``pip install 'turingct[ray]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError, TuringCTError
from synth_backend.batch import BatchConfig
from synth_backend.executors import BatchTask, TaskFn, TaskResult, run_task

log = logging.getLogger(__name__)
INSTALL_HINT = "install it with `pip install 'turingct[ray]'` (or `pip install ray`)"


class RayMissingError(TuringCTError, ImportError):
    """``ray`` is not installed (an ImportError the CLI prints as one line)."""


def import_ray():
    """The ``ray`` module, or :class:`RayMissingError` giving the install command."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissingError(f"ray: package not installed; {INSTALL_HINT}") from exc
    return ray


def _call(task_fn: TaskFn, task: BatchTask, config: BatchConfig) -> TaskResult:
    # module-level so Ray pickles it by reference; task_fn travels as an argument
    return task_fn(task, config)


@dataclass
class RayExecutor:
    """Runs batch tasks as Ray tasks.

    ``address``: a running cluster (``"auto"``, ``"ray://head:10001"`` or ``"head:6379"``);
    None joins an already initialized Ray session or starts a local one (``num_cpus``).
    ``gpus_per_task`` / ``cpus_per_task``: Ray resource requests per output (fractions allowed,
    e.g. 0.5 GPU for two small jobs per GPU). ``max_retries``: re-runs after a worker or node
    failure. ``init_options`` go to ``ray.init`` (e.g. ``runtime_env``).
    """

    address: str | None = None
    gpus_per_task: float = 0.0
    cpus_per_task: float = 1.0
    max_retries: int = 3
    num_cpus: int | None = None
    init_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gpus_per_task < 0 or self.cpus_per_task < 0:
            raise InputError(
                "--gpus-per-task/--cpus-per-task",
                f"must be >= 0, got {self.gpus_per_task}/{self.cpus_per_task}",
                "pass e.g. 1",
            )
        if self.max_retries < 0:
            raise InputError(
                "--max-retries", f"must be >= 0, got {self.max_retries}", "pass e.g. 3"
            )

    def _connect(self, ray) -> bool:
        """Initialize Ray if needed; True when this call started it (and must shut it down)."""
        if ray.is_initialized():
            return False
        options = {"include_dashboard": False, "log_to_driver": True, **self.init_options}
        if self.address is not None:
            options["address"] = self.address
        elif self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        try:
            ray.init(**options)
        except ConnectionError as exc:
            raise TuringCTError(
                f"ray cluster {self.address}: cannot connect ({exc}); start "
                "it with `ray start --head` or check --address"
            ) from exc
        return True

    def _check_resources(self, ray, n_tasks: int) -> None:
        gpus = ray.cluster_resources().get("GPU", 0.0)
        if self.gpus_per_task > 0 and gpus < self.gpus_per_task:
            raise TuringCTError(
                f"ray cluster: tasks ask for {self.gpus_per_task} GPU but the "
                f"cluster has {gpus:g}; start GPU nodes (`ray start "
                "--address ... --num-gpus N`) or pass --gpus-per-task 0"
            )
        log.info("ray: %d tasks on %s", n_tasks, ray.cluster_resources())

    def run(
        self, tasks: list[BatchTask], config: BatchConfig, task_fn: TaskFn = run_task
    ) -> Iterator[TaskResult]:
        """Submit every task, then yield results in completion order. A task that still
        fails after ``max_retries`` system-level retries is yielded as an error."""
        ray = import_ray()
        started = self._connect(ray)
        try:
            self._check_resources(ray, len(tasks))
            remote = ray.remote(_call).options(
                num_gpus=self.gpus_per_task,
                num_cpus=self.cpus_per_task,
                max_retries=self.max_retries,
                retry_exceptions=False,
            )
            config_ref = ray.put(config)
            pending = {remote.remote(task_fn, task, config_ref): task for task in tasks}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                        yield TaskResult(
                            task.index,
                            f"{type(exc).__name__} after {self.max_retries} retries: {first}"[:500],
                        )
        finally:
            for ref in pending if "pending" in locals() else ():
                ray.cancel(ref)  # the driver stopped early (interrupt): free the cluster
            if started:
                ray.shutdown()

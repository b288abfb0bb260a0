"""One training loop for every network: resume, mixed precision, EMA, progress, loss curve.

The method-specific part is a ``step_fn(rng, generator) -> (loss, terms)`` closure that draws
its own batch with the numpy ``rng`` and its own noise with the torch ``generator``. Both are
derived from ``(seed, step)``, so a run interrupted and resumed from ``last.pt`` draws exactly
the batches and noise an uninterrupted run would have (no RNG state to save).

Ctrl-C (SIGINT) or a scheduler's SIGTERM does not kill a step halfway: the loop finishes the
current step, writes ``last.pt`` and raises :class:`TrainingInterrupted`, so no step is lost
and the optimizer state is never caught mid-update. A second signal stops at once.
"""

from __future__ import annotations

import csv
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from core.settings import code_version
from synth_backend.training.checkpoint import FINAL, LAST, CheckpointError, save_checkpoint

log = logging.getLogger(__name__)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT / SIGTERM after saving ``last.pt`` (re-run to resume)."""

    def __init__(self, step: int, path: Path):
        self.step, self.path = step, path
        super().__init__(
            f"interrupted at step {step}; saved {path}; re-run the same command to resume"
        )


class _DeferredStop:
    """Turns the first SIGINT / SIGTERM into a flag checked between steps; a second signal
    raises ``KeyboardInterrupt`` at once. Installed only in the main thread (Python delivers
    signals there) and never over an ignored signal (e.g. ``nohup``-style background runs)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "signal %d: stopping after this step and saving last.pt "
            "(send it again to stop at once)",
            signum,
        )

    def __enter__(self) -> _DeferredStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


StepFn = Callable[[np.random.Generator, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


def step_generators(
    seed: int, step: int, device: str
) -> tuple[np.random.Generator, torch.Generator]:
    """Independent numpy and torch generators for one (seed, step)."""
    rng = np.random.default_rng([int(seed), int(step)])
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.integers(2**62)))
    return rng, gen


def seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with the global torch RNG seeded from ``seed`` and restored afterwards.

    torch.nn layers draw their initial weights from the global generator; forking it keeps two
    runs of the same config identical (and a resumed run identical to an uninterrupted one)
    without leaving the caller's global RNG state changed.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


def autocast_context(device: str, enabled: bool):
    """bf16 autocast on CUDA (no loss scaling needed); plain fp32 on CPU."""
    if enabled and device.startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


class Trainer:
    """Trains ``model`` (all its parameters) and writes checkpoints into ``out_dir``.

    ``metadata`` (config, data hashes, embedded autoencoder, ...) goes into every checkpoint.
    ``cfg["train"]`` supplies steps, batch_size, grad_accum, lr, ema_decay, amp, save_every,
    log_every; ``cfg["seed"]`` the seed.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: dict[str, Any],
        out_dir: str | Path,
        device: str,
        metadata: dict[str, Any],
    ):
        self.model = model.to(device)
        self.cfg = cfg
        self.train_cfg = cfg["train"]
        self.out_dir = Path(out_dir)
        self.device = device
        self.metadata = metadata
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=float(self.train_cfg["lr"])
        )
        decay = float(self.train_cfg.get("ema_decay", 0.0))
        self.ema = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay)) if decay > 0 else None
        )
        self.step = 0
        self.seconds = 0.0  # training wall time, summed over resumed runs
        self.history: list[dict[str, float]] = []

    # -- checkpoint io -------------------------------------------------------------------------
    def _payload(self, final: bool) -> dict[str, Any]:
        weights = (self.ema.module if self.ema is not None else self.model).state_dict()
        payload = {
            **self.metadata,
            "method": self.cfg["method"],
            "config": self.cfg,
            "step": self.step,
            "train_seconds": round(self.seconds, 3),
            "code_version": code_version(),
            "state_dict": weights,
        }
        if not final:
            payload["train_state"] = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
            }
        return payload

    def resume(self) -> bool:
        """Load ``out_dir/last.pt`` when present; returns whether training resumed."""
        path = self.out_dir / LAST
        if not path.is_file():
            return False
        payload = torch.load(path, map_location=self.device, weights_only=False)
        if payload.get("method") != self.cfg["method"] or payload["config"].get(
            "model"
        ) != self.cfg.get("model"):
            raise CheckpointError(
                path,
                "was written by a different method or model config",
                "use a new --out directory or the same config to resume",
            )
        state = payload["train_state"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = int(payload["step"])
        self.seconds = float(payload.get("train_seconds", 0.0))
        self.history = [row for row in self._read_history() if row["step"] <= self.step]
        log.info("resumed %s from %s at step %d", self.cfg["method"], path, self.step)
        return True

    def _read_history(self) -> list[dict[str, float]]:
        path = self.out_dir / "loss.csv"
        if not path.is_file():
            return []
        with open(path, newline="") as handle:
            # a column added by a newer version is empty in rows written by an older one
            return [
                {k: float(v) for k, v in row.items() if v not in (None, "")}
                for row in csv.DictReader(handle)
            ]

    def _write_history(self) -> None:
        if not self.history:
            return
        keys = list(dict.fromkeys(k for row in self.history for k in row))
        path = self.out_dir / "loss.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys, restval="")
            writer.writeheader()
            writer.writerows(self.history)

    def save(self, final: bool = False) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._write_history()
        path = save_checkpoint(self._payload(final=False), self.out_dir / LAST)
        if final:
            path = save_checkpoint(self._payload(final=True), self.out_dir / FINAL)
        return path

    # -- loop ----------------------------------------------------------------------------------
    def _one_step(self, step_fn: StepFn, seed: int, accum: int, amp: bool) -> dict[str, float]:
        """One optimizer step (``accum`` micro-batches); returns the averaged loss terms."""
        self.optimizer.zero_grad(set_to_none=True)
        terms_sum: dict[str, float] = {}
        for micro in range(accum):
            rng, gen = step_generators(seed, self.step * accum + micro, self.device)
            with autocast_context(self.device, amp):
                loss, terms = step_fn(rng, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {self.step}; lower train.lr or disable amp"
                )
            (loss / accum).backward()
            for k, v in {"loss": float(loss.detach()), **terms}.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + v / accum
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.step += 1
        return terms_sum

    def run(self, step_fn: StepFn, *, progress: bool = True) -> Path:
        """Train until ``train.steps``; returns the path of ``final.pt``."""
        steps = int(self.train_cfg["steps"])
        accum = int(self.train_cfg.get("grad_accum", 1))
        amp = bool(self.train_cfg.get("amp", True))
        save_every = int(self.train_cfg.get("save_every", 1000))
        log_every = max(1, int(self.train_cfg.get("log_every", 10)))
        seed = int(self.cfg["seed"])
        self.model.train()
        bar = tqdm(
            total=steps,
            initial=self.step,
            disable=not progress,
            desc=f"train {self.cfg['method']}",
            dynamic_ncols=True,
        )
        with _DeferredStop() as stop:
            while self.step < steps:
                t0 = time.perf_counter()
                terms_sum = self._one_step(step_fn, seed, accum, amp)
                self.seconds += time.perf_counter() - t0
                if self.step % log_every == 0 or self.step == steps or self.step == 1:
                    self.history.append(
                        {"step": float(self.step), **terms_sum, "seconds": round(self.seconds, 3)}
                    )
                bar.update(1)
                bar.set_postfix(loss=f"{terms_sum['loss']:.4g}")
                if stop.requested and self.step < steps:
                    bar.close()
                    raise TrainingInterrupted(self.step, self.save())
                if self.step % save_every == 0 and self.step < steps:
                    self.save()
        bar.close()
        if not self.history or not math.isfinite(self.history[-1]["loss"]):
            raise FloatingPointError("training produced no finite loss")
        self.save(final=True)
        return self.out_dir / FINAL

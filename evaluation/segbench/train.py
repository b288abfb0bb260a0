"""Train the benchmark's MONAI UNet on sampled patches; checkpointed and resumable.

The checkpoint (``<out>/checkpoint.pt``, written atomically every ``checkpoint_every``
iterations and at the end) holds the model, optimizer and scheduler states, the sampler's
generator state and the loss history, so an interrupted run continues exactly where it stopped.
A checkpoint made under other settings (its ``run_key`` differs) is refused, never mixed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from evaluation.segbench.config import BenchConfig
from evaluation.segbench.data import PatchSampler

CHECKPOINT = "checkpoint.pt"


class BenchmarkStateError(InputError):
    """An output folder (``--out``) whose checkpoint belongs to another benchmark run."""


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_at: int = 0


def build_model(config: BenchConfig, seed: int):
    """UNet (1 input channel, 2 output classes: background / tumor), weights drawn from a
    seeded torch generator scope (``fork_rng``) so the global random state is left untouched."""
    import torch
    from monai.networks.nets import UNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=2,
            channels=config.channels,
            strides=config.strides,
            num_res_units=config.res_units,
            norm="instance",
        )


def _save(path: Path, state: dict) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    model,
    sampler: PatchSampler,
    config: BenchConfig,
    out_dir: str | Path,
    *,
    run_key: str,
    device: str = "cpu",
    progress: bool = True,
) -> TrainLog:
    """Run ``config.iterations`` optimizer steps (DiceCE, AdamW, warmup-cosine), resuming from
    ``<out_dir>/checkpoint.pt`` when it has the same ``run_key``. Returns the loss history
    (one mean batch loss per iteration) and the training seconds (summed over resumptions)."""
    import torch
    from monai.losses import DiceCELoss
    from monai.optimizers import WarmupCosineSchedule
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    model.to(device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    warmup = max(1, round(config.warmup_fraction * config.iterations))
    scheduler = WarmupCosineSchedule(optimizer, warmup_steps=warmup, t_total=config.iterations)
    log = TrainLog()
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        if state.get("run_key") != run_key:
            raise BenchmarkStateError(
                ckpt_path,
                "checkpoint of another benchmark run (different settings, data or seed)",
                "choose another --out or delete this folder",
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        log = TrainLog(list(state["losses"]), float(state["seconds"]), int(state["iteration"]))

    def checkpoint(iteration: int) -> None:
        _save(
            ckpt_path,
            {
                "run_key": run_key,
                "iteration": iteration,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "sampler_rng": sampler.rng.bit_generator.state,
                "losses": log.losses,
                "seconds": log.seconds,
            },
        )

    model.train()
    bar = tqdm(
        range(log.resumed_at, config.iterations),
        initial=log.resumed_at,
        total=config.iterations,
        desc=f"train {sampler.train_on}",
        unit="it",
        disable=not progress,
    )
    start = time.perf_counter()
    base_seconds = log.seconds
    for it in bar:
        image, label, _ = sampler.batch(config.batch_size)
        x = torch.from_numpy(image).to(device)
        y = torch.from_numpy(label).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        log.losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{log.losses[-1]:.4f}")
        log.seconds = base_seconds + time.perf_counter() - start
        if (it + 1) % config.checkpoint_every == 0 or it + 1 == config.iterations:
            checkpoint(it + 1)
    model.eval()
    return log

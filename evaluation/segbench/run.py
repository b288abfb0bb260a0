"""One benchmark run: split, train on real or on-the-fly synthetic tumors, test, write, store.

Outputs in ``out_dir``: ``benchmark.csv`` (the Table-2-style row) and ``per_case.csv`` with
``.conventions.txt`` sidecars, ``loss.csv``, ``model.pt``, ``checkpoint.pt`` (resume) and
``manifest.json`` (settings, case ids, versions, device, timings).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.segbench import evaluate
from evaluation.segbench.config import TRAIN_ON, BenchConfig
from evaluation.segbench.data import BenchCase, PatchSampler, split_cases
from evaluation.segbench.train import build_model, train
from evaluation.tables import EvaluationInputError, write_table
from synth_backend.io import atomic_write

ROW_COLUMNS = [
    "train_on",
    "organ",
    "preset",
    "n_train",
    "n_test_tumor",
    "n_test_healthy",
    "dsc_mean",
    "dsc_low",
    "dsc_high",
    "nsd_mean",
    "nsd_low",
    "nsd_high",
    "tolerance_mm",
    "sensitivity",
    "sensitivity_low",
    "sensitivity_high",
    "specificity",
    "specificity_low",
    "specificity_high",
    "test_tumor_kind",
    "iterations",
    "train_seconds",
    "seconds",
    "device",
    "seed",
]


@dataclass
class BenchmarkResult:
    row: dict
    per_case: pd.DataFrame
    losses: list[float]
    conventions: dict[str, str]
    params: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([self.row], columns=ROW_COLUMNS)


def _run_key(config: BenchConfig, train_on: str, organ: str, seed: int, split) -> str:
    ids = {
        "train": sorted(c.case_id for c in split.train_tumor + split.train_healthy),
        "test": [c.case_id for c in split.test],
    }
    text = json.dumps([config.fingerprint(), train_on, organ, seed, ids], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_benchmark(
    cases: Sequence[BenchCase],
    *,
    train_on: str,
    organ: str,
    config: BenchConfig,
    seed: int,
    out_dir: str | Path,
    device: str = "auto",
    source: str = "",
    synthesizer_options: dict | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Train on ``train_on`` (real tumors or a synthesis method) and test on held-out volumes.

    ``cases`` come from :func:`data.catalog_cases` / :func:`data.folder_cases`. The split is
    seeded and identical for every ``train_on``. Re-running with the same arguments resumes
    training from the checkpoint in ``out_dir`` and recomputes the test metrics.
    """
    from core.settings import code_version
    from synth_backend.base import resolve_device
    from synth_backend.registry import get_synthesizer

    if train_on not in TRAIN_ON:
        raise EvaluationInputError(
            "--train-on",
            f"must be one of {', '.join(TRAIN_ON)}, got {train_on!r}",
            "pick one of those",
        )
    started = time.perf_counter()
    device = resolve_device(device)
    split = split_cases(cases, seed=seed, test_fraction=config.test_fraction)
    if not any(c.has_tumor for c in split.test):
        n = sum(c.has_tumor for c in cases)
        raise EvaluationInputError(
            "benchmark cases",
            f"only {n} {organ} volume(s) with a real tumor or "
            "phantom lesion; the benchmark needs at least 2 (train + "
            "test)",
            "import more annotated volumes or generate a "
            "larger phantom cohort (turingct phantom --lesion-fraction)",
        )
    synthesizer = (
        None if train_on == "real" else get_synthesizer(train_on, **(synthesizer_options or {}))
    )
    sampler = PatchSampler(
        split, train_on, organ, config, np.random.default_rng([seed, 303]), synthesizer, device
    )
    out = Path(out_dir)
    run_key = _run_key(config, train_on, organ, seed, split)
    model = build_model(config, seed)
    log = train(model, sampler, config, out, run_key=run_key, device=device, progress=progress)

    import torch
    from tqdm import tqdm

    torch.save(model.state_dict(), out / "model.pt")
    rows = [
        evaluate.case_metrics(evaluate.predict(model, case, config, device), case, config)
        for case in tqdm(split.test, desc="test", unit="volume", disable=not progress)
    ]
    per_case = pd.DataFrame(rows)
    kinds = sorted({c.tumor_kind for c in split.test if c.has_tumor})
    row = {
        "train_on": train_on,
        "organ": organ,
        "preset": config.preset,
        "n_train": len(sampler.cases),
        **evaluate.summarize(per_case, config, seed),
        "tolerance_mm": config.tolerance_mm,
        "test_tumor_kind": ",".join(kinds),
        "iterations": config.iterations,
        "train_seconds": round(log.seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "device": device,
        "seed": seed,
    }
    conv = {
        "source": source,
        "train": (
            "training tumor volumes (real tumors / phantom lesions)"
            if train_on == "real"
            else f"training healthy volumes, a new {train_on} tumor synthesized into the "
            f"organ crop with p={config.p_tumor:g} each time a volume is drawn "
            f"(options {config.synth_options or 'method defaults'})"
        ),
        "test": "held-out volumes (same split for every train_on): "
        + (
            "PHANTOM LESIONS of the built-in phantom cohort, not patient tumors"
            if "phantom_lesion" in kinds
            else "real tumors"
        ),
        "model": f"MONAI UNet channels {list(config.channels)} strides {list(config.strides)} "
        f"res_units {config.res_units}; DiceCE, AdamW lr {config.lr:g}, warmup-cosine; "
        f"{config.iterations} iterations x batch {config.batch_size}, patches "
        f"{list(config.patch)}",
        **evaluate.conventions(config),
        "preset": f"{config.preset} (config {config.fingerprint()})",
        "seed": str(seed),
        "device": device,
        "code_version": code_version(),
    }
    result = BenchmarkResult(
        row,
        per_case,
        log.losses,
        conv,
        {
            "train_on": train_on,
            "organ": organ,
            "seed": seed,
            "config": config.to_dict(),
            "source": source,
        },
    )
    write_table(result.table(), out / "benchmark.csv", conv, "segmentation benchmark")
    write_table(per_case, out / "per_case.csv", conv, "segmentation benchmark per volume")
    pd.DataFrame({"iteration": np.arange(1, len(log.losses) + 1), "loss": log.losses}).to_csv(
        out / "loss.csv", index=False
    )
    manifest = {
        **result.params,
        "run_key": run_key,
        "device": device,
        "row": row,
        "train_cases": [c.case_id for c in sampler.cases],
        "test_cases": [c.case_id for c in split.test],
        "code_version": code_version(),
        "torch": torch.__version__,
    }
    text = json.dumps(manifest, indent=1, default=str)
    atomic_write(out / "manifest.json", lambda tmp: Path(tmp).write_text(text))
    return result


def store_benchmark(session, result: BenchmarkResult):
    """Record the run as an ``EvaluationResult`` (kind ``segbench``)."""
    from evaluation.store import store_result

    row = result.row
    return store_result(
        session,
        "segbench",
        f"segbench {row['train_on']} {row['organ']} {row['preset']}",
        tables={"benchmark": result.table(), "per_case": result.per_case},
        conventions=result.conventions,
        params=result.params,
        summary={k: row[k] for k in ("dsc_mean", "nsd_mean", "sensitivity", "specificity")},
    )

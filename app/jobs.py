"""Launch synthesis batches from the researcher page as detached ``turingct synth batch`` runs.

The batch runner (``synth_backend.batch``) owns the work and the ``SynthesisJob`` rows; this
module only starts it as a detached process (so a batch outlives the browser tab and the
Streamlit session). The rows are read back by ``catalog.jobs`` for the progress table.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError, TuringCTError
from core.vocabulary import SIZES

PROFILES = ("train", "vtt")  # hand-crafted only, as `turingct synth --profile`
# `turingct` with this interpreter (no reliance on PATH or the console script)
TURINGCT = [sys.executable, "-c", "import sys; from turingct.cli import main; sys.exit(main())"]


class LaunchError(InputError):
    """A choice of the launch form that cannot start a batch.

    ``where`` is the form field (its label on the page) or the checkpoint path.
    """


def batch_available() -> bool:
    """True when the batch runner module is installed."""
    return importlib.util.find_spec("synth_backend.batch") is not None


def batch_command(
    *,
    method: str,
    organ: str,
    dataset: str,
    count: int,
    size: str,
    device: str,
    seed: int,
    out_dir: Path,
    database_url: str,
    checkpoint: str | Path | None = None,
    n_tumors: int | None = None,
    profile: str | None = None,
) -> list[str]:
    """argv of ``turingct synth batch`` for these choices (validated here, one-line errors).

    ``checkpoint``: the weights file of a learning-based method (required for those, refused
    for the others); it must exist on this server. ``n_tumors`` (any method) and ``profile``
    (hand-crafted only): as the CLI's ``--n-tumors`` and ``--profile``; None = the method's
    default."""
    from core.vocabulary import ORGANS
    from synth_backend.registry import LEARNING_BASED, available_methods

    if method not in available_methods():
        raise LaunchError(
            "Method",
            f"must be one of {available_methods()}, got {method!r}",
            "pick one of them",
        )
    if organ not in ORGANS:
        raise LaunchError(
            "Organ", f"must be one of {list(ORGANS)}, got {organ!r}", "pick one of them"
        )
    if size not in SIZES:
        raise LaunchError("Tumor size", f"must be one of {SIZES}, got {size!r}", "pick one")
    if device not in ("auto", "cpu", "cuda"):
        raise LaunchError(
            "Device", f"must be auto, cpu or cuda, got {device!r}", "pick one of them"
        )
    if count < 1:
        raise LaunchError(
            "How many", f"number of volumes must be >= 1, got {count}", "ask for 1 or more"
        )
    if n_tumors is not None and int(n_tumors) < 1:
        raise LaunchError(
            "Number of tumors",
            f"must be >= 1, got {n_tumors}",
            "clear the field for the method's default",
        )
    if profile is not None and profile not in PROFILES:
        raise LaunchError(
            "Hand-crafted profile",
            f"profile must be one of {PROFILES}, got {profile!r}",
            "pick one of them or the default",
        )
    if profile is not None and method != "handcrafted":
        raise LaunchError(
            "Hand-crafted profile",
            f"profile is a hand-crafted option, not for {method}",
            "set it back to the default or pick the handcrafted method",
        )
    checkpoint = str(checkpoint).strip() if checkpoint else None
    if method in LEARNING_BASED and not checkpoint:
        raise LaunchError(
            "Checkpoint",
            f"must be given for {method} (a learning-based method)",
            "type the path of its trained weights (`turingct train ...` makes them)",
        )
    if checkpoint and method not in LEARNING_BASED:
        raise LaunchError(
            "Checkpoint",
            "is only for learning-based methods "
            f"({', '.join(sorted(LEARNING_BASED))}), not {method}",
            "clear the field",
        )
    if checkpoint and not Path(checkpoint).is_file():
        raise LaunchError(
            checkpoint, "checkpoint file does not exist on this server", "check the path"
        )
    argv = [
        *TURINGCT,
        "synth",
        "batch",
        "--method",
        method,
        "--organ",
        organ,
        "--from-catalog",
        "--dataset",
        dataset,
        "--n",
        str(int(count)),
        "--out",
        str(out_dir),
        "--seed",
        str(int(seed)),
        "--size",
        size,
        "--device",
        device,
        "--executor",
        "local",
        "--db",
        database_url,
    ]
    if checkpoint:
        argv += ["--checkpoint", str(Path(checkpoint).resolve())]
    if n_tumors is not None:
        argv += ["--n-tumors", str(int(n_tumors))]
    if profile is not None:
        argv += ["--profile", profile]
    return argv


@dataclass(frozen=True)
class Launched:
    """A started batch: its process id, output folder and log file."""

    pid: int
    out_dir: Path
    log: Path


def launch_batch(**choices: Any) -> Launched:
    """Start the batch as a detached process writing ``batch.log`` next to its outputs.

    The output folder is ``<data dir>/synthetic/<method>-<organ>-seed<S>`` (plus ``-ckpt<hash
    of the checkpoint path>`` for learning-based methods, ``-<profile>`` and ``-k<number of
    tumors>`` when given): launching the same choices again resumes that batch (finished items
    are skipped by the runner, so other options must never share a folder).
    """
    from core.settings import data_dir, database_url

    if not batch_available():
        # not a choice of the form: a missing module (the page disables Launch then)
        raise TuringCTError("the batch runner is not installed; update turingct")
    name = f"{choices['method']}-{choices['organ']}-seed{int(choices['seed'])}"
    if choices.get("checkpoint"):  # other weights, other outputs: never resume across them
        name += (
            "-ckpt"
            + hashlib.sha256(str(Path(choices["checkpoint"]).resolve()).encode()).hexdigest()[:8]
        )
    if choices.get("profile"):
        name += f"-{choices['profile']}"
    if choices.get("n_tumors") is not None:
        name += f"-k{int(choices['n_tumors'])}"
    out_dir = data_dir() / "synthetic" / name
    argv = batch_command(out_dir=out_dir, database_url=database_url(), **choices)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "batch.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    return Launched(proc.pid, out_dir, log_path)

"""Synthesis batches for the researcher page: read job rows, launch the batch CLI in background.

The batch runner (``synth_backend.batch``, CLI ``turingct synth batch``) owns the work and the
``SynthesisJob`` rows; this module only starts it as a detached process (so a batch outlives
the browser tab and the Streamlit session) and reads the rows back for ``st.progress``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from synth_backend.errors import TuringCTError

SIZES = ("tiny", "small", "medium", "large")
# `turingct` with this interpreter (no reliance on PATH or the console script)
TURINGCT = [sys.executable, "-c", "import sys; from turingct.cli import main; sys.exit(main())"]


class LaunchError(TuringCTError):
    """A batch could not be started (message says why and what to do)."""


def batch_available() -> bool:
    """True when the batch runner module is installed."""
    return importlib.util.find_spec("synth_backend.batch") is not None


def list_jobs(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Newest synthesis jobs first, as plain dicts (``progress`` in [0, 1])."""
    from db.models import SynthesisJob

    jobs = session.scalars(select(SynthesisJob).order_by(SynthesisJob.id.desc()).limit(limit))
    return [{"id": j.id, "method": j.method, "organ": j.organ, "status": j.status.value,
             "n_total": j.n_total, "n_done": j.n_done, "n_failed": j.n_failed,
             "progress": float(j.progress), "device": (j.config or {}).get("device", ""),
             "out_dir": j.out_dir, "created_at": j.created_at.isoformat(timespec="seconds"),
             "errors": len(j.errors or [])} for j in jobs]


def dataset_names(session: Session) -> list[str]:
    """Names of the imported datasets (sources of healthy volumes)."""
    from db.models import Dataset, DatasetFormat

    return list(session.scalars(select(Dataset.name)
                                .where(Dataset.format != DatasetFormat.SYNTHETIC)
                                .order_by(Dataset.name)))


def batch_command(*, method: str, organ: str, dataset: str, count: int, size: str,
                  device: str, seed: int, out_dir: Path, database_url: str) -> list[str]:
    """argv of ``turingct synth batch`` for these choices (validated here, one-line errors)."""
    if size not in SIZES:
        raise LaunchError(f"tumor size must be one of {SIZES}, got {size!r}; pick one")
    if device not in ("auto", "cpu", "cuda"):
        raise LaunchError(f"device must be auto, cpu or cuda, got {device!r}")
    if count < 1:
        raise LaunchError(f"number of volumes must be >= 1, got {count}")
    return [*TURINGCT, "synth", "batch", "--method", method,
            "--organ", organ, "--from-catalog", "--dataset", dataset, "--n", str(int(count)),
            "--out", str(out_dir), "--seed", str(int(seed)), "--size", size,
            "--device", device, "--executor", "local", "--db", database_url]


def launch_batch(**choices: Any) -> int:
    """Start the batch as a detached process writing a log next to its outputs; returns pid."""
    from turingct.config import data_dir, database_url

    if not batch_available():
        raise LaunchError("the batch runner is not installed; update turingct")
    out_dir = data_dir() / "synthetic" / (f"{choices['method']}-{choices['organ']}-"
                                          f"seed{int(choices['seed'])}")
    argv = batch_command(out_dir=out_dir, database_url=database_url(), **choices)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "batch.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc.pid

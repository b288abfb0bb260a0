"""Read-side of synthesis batches: the ``SynthesisJob`` rows and the datasets a batch can use.

The batch runner (:mod:`synth_backend.batch`) creates and updates the job rows while it works
(``n_total``, ``n_done``, ``n_failed``, ``status``, ``errors``); this module only reads them back
for the CLI and the app's progress table. The session is passed in and no role is checked here
(``synth_backend`` knows nothing of accounts): callers that serve users check the role first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

# Statuses of a job that can still change (the page keeps polling while one is shown).
ACTIVE_STATUSES = ("pending", "running")


@dataclass(frozen=True)
class JobRow:
    """One synthesis batch as the progress table shows it.

    ``progress`` is ``(n_done + n_failed) / n_total`` in [0, 1] (0 while ``n_total`` is 0, i.e.
    before the runner counted its items); ``errors`` holds the runner's failure records
    ``{"item", "case", "error"}``; times are ISO 8601 UTC strings (None when not reached yet).
    """

    id: int
    method: str
    organ: str
    status: str
    n_total: int
    n_done: int
    n_failed: int
    progress: float
    device: str
    seed: int
    out_dir: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    errors: tuple[dict, ...]

    @property
    def active(self) -> bool:
        """True while the batch may still make progress (pending or running)."""
        return self.status in ACTIVE_STATUSES

    @property
    def done_fraction(self) -> float:
        """Share of the items that produced a volume (a batch whose items all failed is 0, not
        the 100% that ``progress`` reports once every item was tried)."""
        return self.n_done / self.n_total if self.n_total else 0.0

    @property
    def reason(self) -> str | None:
        """One line saying why a failed or interrupted job failed: the most frequent item error
        (first line, at most 300 characters) and how many items it hit; None otherwise."""
        if self.status not in ("failed", "interrupted") or not self.errors:
            return (
                None
                if self.status != "interrupted"
                else "interrupted before finishing; launch the same choices again to resume"
            )
        messages = [
            str(e.get("error") or "unknown error").strip().splitlines()[0][:300]
            for e in self.errors
        ]
        top = max(set(messages), key=lambda m: (messages.count(m), m))
        n = messages.count(top)
        return top if n == len(messages) and n == 1 else f"{top} ({n} of {len(messages)} items)"

    def label(self) -> str:
        """One-line summary, e.g. ``#3 handcrafted · liver · running · 4 done, 1 failed of 10``."""
        return (
            f"#{self.id} {self.method} · {self.organ} · {self.status} · {self.n_done} done, "
            f"{self.n_failed} failed of {self.n_total}"
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def list_jobs(session: Session, limit: int = 50) -> list[JobRow]:
    """The ``limit`` newest synthesis jobs, newest first."""
    from db.models import SynthesisJob

    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    jobs = session.scalars(select(SynthesisJob).order_by(SynthesisJob.id.desc()).limit(limit))
    return [
        JobRow(
            id=j.id,
            method=j.method,
            organ=j.organ,
            status=j.status.value,
            n_total=int(j.n_total),
            n_done=int(j.n_done),
            n_failed=int(j.n_failed),
            progress=min(1.0, float(j.progress)),
            device=str((j.config or {}).get("device", "")),
            seed=int(j.seed),
            out_dir=j.out_dir,
            created_at=j.created_at.isoformat(timespec="seconds"),
            started_at=_iso(j.started_at),
            finished_at=_iso(j.finished_at),
            errors=tuple(j.errors or ()),
        )
        for j in jobs
    ]


def dataset_names(session: Session) -> list[str]:
    """Names of the imported datasets that hold healthy source volumes (synthetic ones excluded),
    sorted; a batch draws its inputs from one of them."""
    from db.models import Dataset, DatasetFormat

    return list(
        session.scalars(
            select(Dataset.name)
            .where(Dataset.format != DatasetFormat.SYNTHETIC)
            .order_by(Dataset.name)
        )
    )

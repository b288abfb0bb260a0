"""Batch synthesis over many healthy volumes: progress bar, resumable, failures recorded.

Items come from a folder (``items_from_dir``: ``<case>/ct.nii.gz`` +
``<case>/segmentations/<organ>.nii.gz``, the phantom-cohort / AbdomenAtlas layout; kidney =
kidney_left | kidney_right union) or from the catalog (:func:`catalog.batch.items_from_catalog`).
Output of item ``i`` goes to ``OUT/<case>`` with seed ``derive_seed(S, i)``, so a re-run is identical; an item
whose ``provenance.json`` exists is skipped; a failing item is logged in ``OUT/failures.jsonl``
(and, through a :class:`BatchRecorder`, the SynthesisJob row) and the batch carries on. Nothing
here touches the database.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import InputError
from synth_backend.io import atomic_write

log = logging.getLogger(__name__)
FAILURES_NAME = "failures.jsonl"


@dataclass(frozen=True)
class BatchItem:
    """One input: a case id (used as output folder name), CT and organ-mask paths."""

    case: str
    ct_path: Path
    mask_path: Path
    organ_label: int | None = None
    extra_masks: tuple[Path, ...] = ()  # unioned with mask_path (kidney left + right)
    mask_labels: tuple[int, ...] | None = None  # several labels of one multi-label file
    source_volume_id: int | None = None


@dataclass(frozen=True)
class BatchConfig:
    method: str
    organ: str
    out_dir: str | Path
    seed: int = 0
    n: int | None = None
    device: str = "auto"
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    register: bool = False
    db_url: str | None = None


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures_path: Path | None = None
    outputs: list[Path] = field(default_factory=list)


def derive_seed(seed: int, index: int) -> int:
    """Per-item seed from (batch seed, item index): independent streams, stable across runs."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def safe_case_name(name: str) -> str:
    """A case id usable as a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "case"


def items_from_dir(root: str | Path, organ: str) -> list[BatchItem]:
    """Cases ``<root>/<case>/ct.nii.gz`` with ``segmentations/<organ>.nii.gz`` (kidney: the
    union of ``kidney_left``/``kidney_right`` when there is no ``kidney``), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            root,
            "folder does not exist",
            "pass a folder of <case>/ct.nii.gz + <case>/segmentations/<organ>.nii.gz",
        )
    items = []
    for case in sorted(p for p in root.iterdir() if (p / "ct.nii.gz").is_file()):
        seg = case / "segmentations"
        masks = [seg / f"{organ}.nii.gz"]
        if organ == "kidney" and not masks[0].is_file():
            masks = [
                m for m in (seg / "kidney_left.nii.gz", seg / "kidney_right.nii.gz") if m.is_file()
            ]
        masks = [m for m in masks if m.is_file()]
        if masks:
            items.append(
                BatchItem(case.name, case / "ct.nii.gz", masks[0], extra_masks=tuple(masks[1:]))
            )
    if not items:
        raise InputError(
            root,
            f"no case with ct.nii.gz and segmentations/{organ}.nii.gz",
            "check the folder layout",
        )
    return items


def union_mask(item: BatchItem, work: Path) -> Path:
    """Write the union of an item's masks (kidney left + right) into ``work``; return it."""
    from synth_backend.io import load_volume, save_like

    def select(array: np.ndarray) -> np.ndarray:
        return np.isin(array, item.mask_labels) if item.mask_labels else array > 0

    ref = load_volume(item.mask_path, "mask")
    union = select(ref.array)
    for extra in item.extra_masks:
        union |= select(load_volume(extra, "mask").array)
    return save_like(ref, union.astype(np.uint8), work / "organ_mask.nii.gz", "mask")


def record_failure(path: Path, entry: dict) -> None:
    """Add (or replace, by case) one failure line in ``failures.jsonl``, atomically."""
    lines = path.read_text().splitlines() if path.is_file() else []
    lines = [ln for ln in lines if json.loads(ln).get("case") != entry["case"]] + [
        json.dumps(entry)
    ]
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


class BatchRecorder(Protocol):
    """Where the batch driver reports a job (the database side lives in :mod:`catalog.batch`).

    ``start`` returns the job's handle (its id), passed back to the other two calls.
    """

    def start(self, config: BatchConfig, n: int) -> int: ...

    def register(self, job: int, item: BatchItem, target: Path) -> None: ...

    def update(
        self, job: int, summary: BatchSummary, final: bool, interrupted: bool = False
    ) -> None: ...

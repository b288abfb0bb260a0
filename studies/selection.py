"""Choose a study's cases from the catalog.

Real arm: volumes (origin real or phantom) whose organ carries a real tumor or a phantom lesion
(phantom lesions are the "real" arm of demo studies and are marked ``phantom_lesion`` in the
key). Synthetic arm: volumes of origin synthetic; :class:`db.models.SyntheticProvenance` gives
their method and organ. The draw is seeded (same spec + catalog = same cases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Arm, Origin, SyntheticProvenance, TumorKind, Volume, VolumeOrgan
from studies.errors import SelectionError
from studies.spec import ANY_METHOD, StudySpec


@dataclass(frozen=True)
class Candidate:
    """One catalog volume eligible for an arm. ``tumor_kind`` is real / phantom_lesion /
    synthetic; ``source`` is '<dataset>/<case_id>' (for the key only, never shown to readers)."""

    volume_id: int
    organ_id: int
    arm: Arm
    organ: str
    method: str | None
    tumor_kind: str
    tumor_diameter_mm: float | None
    source: str


def _in_range(d: float | None, bounds: tuple[float | None, float | None]) -> bool:
    lo, hi = bounds
    if lo is None and hi is None:
        return True
    if d is None:  # unknown size cannot satisfy a size filter
        return False
    return (lo is None or d >= lo) and (hi is None or d <= hi)


def real_candidates(session: Session, organ: str) -> list[Candidate]:
    """Non-synthetic volumes whose ``organ`` has a real tumor or phantom lesion mask."""
    rows = session.scalars(
        select(VolumeOrgan).join(Volume)
        .where(VolumeOrgan.organ == organ,
               VolumeOrgan.tumor_kind.in_([TumorKind.REAL, TumorKind.PHANTOM_LESION]),
               Volume.origin != Origin.SYNTHETIC)
        .options(selectinload(VolumeOrgan.volume).selectinload(Volume.dataset))
        .order_by(Volume.id)).all()
    return [Candidate(vo.volume_id, vo.id, Arm.REAL, organ, None, TumorKind(vo.tumor_kind).value,
                      vo.tumor_diameter_mm,
                      f"{vo.volume.dataset.name}/{vo.volume.case_id}")
            for vo in rows if vo.tumor_paths]


def synthetic_candidates(session: Session, organ: str) -> list[Candidate]:
    """Synthetic volumes made for ``organ`` (by provenance) that have a tumor mask."""
    rows = session.execute(
        select(SyntheticProvenance, VolumeOrgan).join(Volume, SyntheticProvenance.volume_id
                                                      == Volume.id)
        .join(VolumeOrgan, (VolumeOrgan.volume_id == Volume.id)
              & (VolumeOrgan.organ == SyntheticProvenance.organ))
        .where(SyntheticProvenance.organ == organ, Volume.origin == Origin.SYNTHETIC)
        .options(selectinload(SyntheticProvenance.volume).selectinload(Volume.dataset))
        .order_by(Volume.id)).all()
    out = []
    for prov, vo in rows:
        if not vo.tumor_paths:
            continue
        diameter = vo.tumor_diameter_mm
        if diameter is None:
            diameter = (prov.tumor_stats or {}).get("diameter_mm")
        out.append(Candidate(prov.volume_id, vo.id, Arm.SYNTHETIC, organ, prov.method,
                             TumorKind.SYNTHETIC.value, diameter,
                             f"{prov.volume.dataset.name}/{prov.volume.case_id}"))
    return out


def _draw(pool: Sequence[Candidate], n: int, rng: np.random.Generator, what: str,
          spec: StudySpec, fix: str) -> list[Candidate]:
    if len(pool) < n:
        lo, hi = spec.tumor_diameter_mm
        size = "" if lo is None and hi is None else \
            f" with tumor diameter in [{lo if lo is not None else 0}, " \
            f"{hi if hi is not None else 'inf'}] mm"
        raise SelectionError(f"{spec.source or spec.name}: {what} asks for {n} cases but the "
                             f"catalog has {len(pool)} matching{size}; {fix}")
    idx = rng.choice(len(pool), size=n, replace=False) if n else []
    return [pool[i] for i in sorted(idx)]


def select_cases(session: Session, spec: StudySpec) -> list[Candidate]:
    """The cases of a study, per organ: ``spec.real`` real-arm cases and the synthetic counts
    (per method, or any method). Raises :class:`SelectionError` saying how many exist and what
    to change when the catalog has too few."""
    rng = np.random.default_rng([spec.seed, 1])
    chosen: list[Candidate] = []
    for organ in spec.organs:
        real = [c for c in real_candidates(session, organ)
                if _in_range(c.tumor_diameter_mm, spec.tumor_diameter_mm)]
        chosen += _draw(real, spec.real, rng, f"cases_per_organ.real ({organ})", spec,
                        "lower the count, widen selection.tumor_diameter_mm or import more "
                        "datasets with tumor masks (`turingct data import`)")
        synthetic = [c for c in synthetic_candidates(session, organ)
                     if _in_range(c.tumor_diameter_mm, spec.tumor_diameter_mm)]
        for method, n in sorted(spec.synthetic.items()):
            pool = synthetic if method == ANY_METHOD else \
                [c for c in synthetic if c.method == method]
            key = "cases_per_organ.synthetic" + ("" if method == ANY_METHOD else f".{method}")
            chosen += _draw(pool, n, rng, f"{key} ({organ})", spec,
                            "lower the count, widen selection.tumor_diameter_mm or synthesize "
                            "more (`turingct synth batch`)")
            picked = {c.volume_id for c in chosen}
            synthetic = [c for c in synthetic if c.volume_id not in picked]
    return chosen

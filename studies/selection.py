"""Choose a study's cases from the catalog.

Real arm: volumes (origin real or phantom) whose organ carries a real tumor or a phantom lesion
(phantom lesions are the "real" arm of demo studies and are marked ``phantom_lesion`` in the
key). Synthetic arm: volumes of origin synthetic; :class:`db.models.SyntheticProvenance` gives
their method and organ. The draw is seeded (same spec + catalog = same cases).

With ``selection.match: size`` (the default for Turing tests) the arms are size-matched
(:mod:`studies.matching`): the real arm is drawn from the diameters the synthetic pool also
covers (when enough real cases lie there), then every synthetic count is filled by an optimal
assignment to the real diameters; each synthetic :class:`Candidate` records the real case it
was paired with (``matched_to``) and :func:`size_match_report` summarizes the achieved match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Arm, Origin, SyntheticProvenance, TumorKind, Volume, VolumeOrgan
from studies import matching
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
    matched_to: int | None = None  # size matching: organ_id of the paired real-arm case


def _in_range(d: float | None, bounds: tuple[float | None, float | None]) -> bool:
    lo, hi = bounds
    if lo is None and hi is None:
        return True
    if d is None:  # unknown size cannot satisfy a size filter
        return False
    return (lo is None or d >= lo) and (hi is None or d <= hi)


def _mm(c: Candidate) -> float:
    # size matching only ever sees candidates whose diameter is known (filtered in select_cases)
    assert c.tumor_diameter_mm is not None
    return c.tumor_diameter_mm


def real_candidates(session: Session, organ: str) -> list[Candidate]:
    """Non-synthetic volumes whose ``organ`` has a real tumor or phantom lesion mask."""
    rows = session.scalars(
        select(VolumeOrgan)
        .join(Volume)
        .where(
            VolumeOrgan.organ == organ,
            VolumeOrgan.tumor_kind.in_([TumorKind.REAL, TumorKind.PHANTOM_LESION]),
            Volume.origin != Origin.SYNTHETIC,
        )
        .options(selectinload(VolumeOrgan.volume).selectinload(Volume.dataset))
        .order_by(Volume.id)
    ).all()
    return [
        Candidate(
            vo.volume_id,
            vo.id,
            Arm.REAL,
            organ,
            None,
            TumorKind(vo.tumor_kind).value,
            vo.tumor_diameter_mm,
            f"{vo.volume.dataset.name}/{vo.volume.case_id}",
        )
        for vo in rows
        if vo.tumor_paths
    ]


def synthetic_candidates(session: Session, organ: str) -> list[Candidate]:
    """Synthetic volumes made for ``organ`` (by provenance) that have a tumor mask."""
    rows = session.execute(
        select(SyntheticProvenance, VolumeOrgan)
        .join(Volume, SyntheticProvenance.volume_id == Volume.id)
        .join(
            VolumeOrgan,
            (VolumeOrgan.volume_id == Volume.id) & (VolumeOrgan.organ == SyntheticProvenance.organ),
        )
        .where(SyntheticProvenance.organ == organ, Volume.origin == Origin.SYNTHETIC)
        .options(selectinload(SyntheticProvenance.volume).selectinload(Volume.dataset))
        .order_by(Volume.id)
    ).all()
    out = []
    for prov, vo in rows:
        if not vo.tumor_paths:
            continue
        diameter = vo.tumor_diameter_mm
        if diameter is None:
            diameter = (prov.tumor_stats or {}).get("diameter_mm")
        out.append(
            Candidate(
                prov.volume_id,
                vo.id,
                Arm.SYNTHETIC,
                organ,
                prov.method,
                TumorKind.SYNTHETIC.value,
                diameter,
                f"{prov.volume.dataset.name}/{prov.volume.case_id}",
            )
        )
    return out


def _draw(
    pool: Sequence[Candidate],
    n: int,
    rng: np.random.Generator,
    what: str,
    spec: StudySpec,
    fix: str,
) -> list[Candidate]:
    _check_enough(pool, n, what, spec, fix)
    idx: np.ndarray | list[int] = rng.choice(len(pool), size=n, replace=False) if n else []
    return [pool[i] for i in sorted(idx)]


def _check_enough(pool: Sequence[Candidate], n: int, what: str, spec: StudySpec, fix: str) -> None:
    if len(pool) < n:
        lo, hi = spec.tumor_diameter_mm
        size = (
            ""
            if lo is None and hi is None
            else f" with tumor diameter in [{lo if lo is not None else 0}, "
            f"{hi if hi is not None else 'inf'}] mm"
        )
        raise SelectionError(
            spec.source or spec.name,
            f"{what} asks for {n} cases but the catalog has {len(pool)} matching{size}",
            fix,
        )


def _draw_matched(
    pool: Sequence[Candidate],
    real: Sequence[Candidate],
    n: int,
    rng: np.random.Generator,
    what: str,
    spec: StudySpec,
    fix: str,
) -> list[Candidate]:
    """``n`` synthetic candidates paired with the real arm's diameters (optimal assignment,
    seeded tie-break); each records its real partner in ``matched_to``."""
    _check_enough(pool, n, what, spec, fix)
    if n == 0:
        return []
    targets, partner = matching.target_diameters([_mm(c) for c in real], n)
    if targets.size == 0:  # no real arm to match (design organ_origin with real: 0)
        return _draw(pool, n, rng, what, spec, fix)
    shuffled = [pool[i] for i in rng.permutation(len(pool))]
    picked = matching.assign_nearest(targets, [_mm(c) for c in shuffled])
    return [
        replace(shuffled[j], matched_to=real[k].organ_id)
        for j, k in zip(picked, partner, strict=True)
    ]


def select_cases(session: Session, spec: StudySpec) -> list[Candidate]:
    """The cases of a study, per organ: ``spec.real`` real-arm cases and the synthetic counts
    (per method, or any method), size-matched when ``spec.match == 'size'``. Raises
    :class:`SelectionError` saying how many exist and what to change when the catalog has too
    few."""
    rng = np.random.default_rng([spec.seed, 1])
    by_size = spec.match == "size"
    chosen: list[Candidate] = []
    for organ in spec.organs:
        real = [
            c
            for c in real_candidates(session, organ)
            if _in_range(c.tumor_diameter_mm, spec.tumor_diameter_mm)
        ]
        synthetic = [
            c
            for c in synthetic_candidates(session, organ)
            if _in_range(c.tumor_diameter_mm, spec.tumor_diameter_mm)
        ]
        if by_size:
            real = [c for c in real if c.tumor_diameter_mm is not None]
            synthetic = [c for c in synthetic if c.tumor_diameter_mm is not None]
            wanted = [
                c for c in synthetic if ANY_METHOD in spec.synthetic or c.method in spec.synthetic
            ]
            inside = matching.common_support([_mm(c) for c in real], [_mm(c) for c in wanted])
            if inside.sum() >= spec.real:  # draw real cases the synthetic pool can match
                real = [c for c, ok in zip(real, inside, strict=True) if ok]
        real_arm = _draw(
            real,
            spec.real,
            rng,
            f"cases_per_organ.real ({organ})",
            spec,
            "lower the count, widen selection.tumor_diameter_mm or import more "
            "datasets with tumor masks (`turingct data import`)",
        )
        chosen += real_arm
        for method, n in sorted(spec.synthetic.items()):
            pool = (
                synthetic if method == ANY_METHOD else [c for c in synthetic if c.method == method]
            )
            key = "cases_per_organ.synthetic" + ("" if method == ANY_METHOD else f".{method}")
            fix = (
                "lower the count, widen selection.tumor_diameter_mm or synthesize more "
                "(`turingct synth batch`)"
            )
            if by_size:
                chosen += _draw_matched(pool, real_arm, n, rng, f"{key} ({organ})", spec, fix)
            else:
                chosen += _draw(pool, n, rng, f"{key} ({organ})", spec, fix)
            picked = {c.volume_id for c in chosen}
            synthetic = [c for c in synthetic if c.volume_id not in picked]
    return chosen


def size_match_report(chosen: Sequence[Candidate], codes: Mapping[int, str] | None = None) -> dict:
    """The achieved size match of a selection: :func:`studies.matching.balance` over the two
    arms' diameters plus one entry per synthetic case with its real partner's diameter.
    ``codes`` maps organ_id -> blinded case code (pairs then name codes, not catalog ids)."""
    codes = codes or {}
    by_organ_id = {c.organ_id: c for c in chosen}
    real = [
        c.tumor_diameter_mm for c in chosen if c.arm == Arm.REAL and c.tumor_diameter_mm is not None
    ]
    syn = [
        c.tumor_diameter_mm
        for c in chosen
        if c.arm == Arm.SYNTHETIC and c.tumor_diameter_mm is not None
    ]
    pairs: list[dict[str, Any]] = []
    for c in chosen:
        partner = by_organ_id.get(c.matched_to) if c.matched_to is not None else None
        if partner is None:
            continue
        pairs.append(
            {
                "organ": c.organ,
                "method": c.method,
                "real": codes.get(partner.organ_id, partner.source),
                "synthetic": codes.get(c.organ_id, c.source),
                "real_mm": round(float(_mm(partner)), 2),
                "synthetic_mm": round(float(_mm(c)), 2),
            }
        )
    report = matching.balance(real, syn, [(p["real_mm"], p["synthetic_mm"]) for p in pairs])
    report["pairs"] = pairs
    return report

"""Training cases from the catalog: the database side of ``turingct train --from-catalog``.

``synth_backend.training`` reads volumes, never the database; this module turns catalog rows
into its plain :class:`~synth_backend.training.data.Case` records.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Origin, Volume, VolumeOrgan
from db.session import open_engine
from synth_backend.training.data import Case, DataError


def training_cases(session: Session, organ: str) -> list[Case]:
    """Non-synthetic catalog volumes that have ``organ`` (with their tumor masks, if any), by
    volume id."""
    rows = session.scalars(
        select(VolumeOrgan)
        .join(Volume)
        .where(VolumeOrgan.organ == organ, Volume.origin != Origin.SYNTHETIC)
        .options(selectinload(VolumeOrgan.volume))
        .order_by(Volume.id)
    ).all()
    return [
        Case(
            f"{r.volume.dataset_id}/{r.volume.case_id}",
            Path(r.volume.ct_path),
            tuple(Path(p) for p in r.mask_paths),
            tuple(Path(p) for p in r.tumor_paths),
            tuple(r.mask_labels) if r.mask_labels else None,
            tuple(r.tumor_labels) if r.tumor_labels else None,
        )
        for r in rows
    ]


def cases_from_catalog(db_url: str | None, organ: str) -> list[Case]:
    """:func:`training_cases` of the catalog at ``db_url``; fails with the fix when none."""
    engine = open_engine(db_url)
    with Session(engine) as session:
        cases = training_cases(session, organ)
    engine.dispose()
    if not cases:
        raise DataError(
            "catalog",
            f"has no non-synthetic volume with a {organ} mask",
            "import a dataset first (`turingct data import ...`) or pass --data DIR",
        )
    return cases

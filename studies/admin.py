"""Researcher/admin services: build a blinded study, list/show/close it, progress, CSV rows.

Every function takes the acting user (``accounts.OPERATOR`` from the CLI) and requires the
researcher or admin role. :func:`create_study` selects cases, exports blinded copies into a
folder named only from the study's database id, runs the blinding audit, stores the truth
only in the database and assigns every listed reader a seeded order.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import statistics
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from core.settings import data_dir
from db.models import (
    Answer,
    Assignment,
    Role,
    Study,
    StudyCase,
    StudyDesign,
    StudyStatus,
    User,
    VolumeOrgan,
)
from studies import clock
from studies.accounts import LocalOperator, create_user, require_role
from studies.assignment import assign
from studies.audit import case_features, run_audit
from studies.blinding import export_case, extent_mm, load_case, new_code, target_shape
from studies.errors import StudyError
from studies.selection import select_cases, size_match_report
from studies.spec import StudySpec, load_spec, parse_spec
from synth_backend.io import atomic_write, sha256_file

log = logging.getLogger(__name__)
Actor = User | LocalOperator
STAFF = (Role.RESEARCHER, Role.ADMIN)


def _spec(spec: StudySpec | Mapping[str, Any] | str | Path) -> tuple[StudySpec, str]:
    if isinstance(spec, StudySpec):
        return spec, yaml.safe_dump(spec.to_dict(), sort_keys=False)
    if isinstance(spec, Mapping):
        return parse_spec(spec), yaml.safe_dump(dict(spec), sort_keys=False)
    path = Path(spec)
    parsed = load_spec(path)
    return parsed, path.read_text(encoding="utf-8")


def find_study(session: Session, study: int | str) -> Study | None:
    """A study by id (an int or a string of digits) or by name; None when there is none.
    No access check: callers check the role (see :func:`get_study`)."""
    found = None
    if isinstance(study, int) or str(study).isdigit():
        found = session.get(Study, int(study))
    if found is None:
        found = session.scalar(select(Study).where(Study.name == str(study)))
    return found


def get_study(session: Session, actor: Actor, study: int | str) -> Study:
    """A study by id or name (staff only); :class:`StudyError` lists what exists otherwise."""
    require_role(actor, *STAFF)
    found = find_study(session, study)
    if found is None:
        names = session.scalars(select(Study.name).order_by(Study.id)).all()
        raise StudyError(
            f"study {study!r}",
            f"no study {study!r}",
            f"existing studies: {', '.join(names) or 'none'} (`turingct study list`)",
        )
    return found


def create_study(
    session: Session,
    spec: StudySpec | Mapping[str, Any] | str | Path,
    *,
    actor: Actor,
    export_root: str | Path | None = None,
    progress: bool = True,
) -> Study:
    """Build a blinded study from a spec (object, mapping or YAML path); flushes, the caller
    commits (``session_scope``). Blinded files go to ``<export_root>/study-<id>/`` (default
    ``<data dir>/studies``), written in a temporary folder and renamed when complete, so a
    failure leaves no half-written export. Readers named in the spec are assigned (accounts
    without a password are created; give them an invite link)."""
    require_role(actor, *STAFF)
    spec, spec_text = _spec(spec)
    if session.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
        raise StudyError(
            spec.source or spec.name,
            f"a study named {spec.name!r} exists",
            "choose another name",
        )
    chosen = select_cases(session, spec)
    rng = np.random.default_rng([spec.seed, 2])
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]  # case ids must not reveal arm
    root = Path(export_root) if export_root is not None else data_dir() / "studies"
    study = Study(
        name=spec.name,
        design=StudyDesign(spec.design),
        status=StudyStatus.OPEN,
        spec=spec.to_dict(),
        spec_yaml=spec_text,
        seed=spec.seed,
        allow_changes=spec.allow_changes,
        educational=spec.educational,
        export_dir="",
        audit={},
    )
    session.add(study)
    session.flush()
    final = root / f"study-{study.id:05d}"
    if final.exists():
        raise StudyError(
            final,
            "export folder exists but the database has no such study (left from another database?)",
            "move it away or pick --export-root",
        )
    organs = {c.organ_id: session.get(VolumeOrgan, c.organ_id) for c in chosen}
    _check_files(organs.values())  # a file gone since import fails now, not at case 99
    shape = _shared_shape(spec, chosen, organs)  # size bounds checked before any export
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".study-{study.id:05d}.", dir=root))
    try:
        rows, features, lesions = _export(spec, chosen, organs, shape, tmp, final, progress)
        audit = run_audit(
            features,
            [c.arm.value == "synthetic" for c in chosen],
            seed=spec.seed,
            lesion_diameters_mm=[le.diameter_mm for le in lesions],
        )
        study.export_dir = str(final)
        study.audit = {
            **audit.to_dict(),
            "size_match": {
                "match": spec.match,
                **size_match_report(
                    chosen, {c.organ_id: r.code for c, r in zip(chosen, rows, strict=True)}
                ),
            },
        }
        for row in rows:
            row.study_id = study.id
        session.add_all(rows)
        session.flush()
        for username in spec.readers:
            reader = session.scalar(select(User).where(User.username == username)) or create_user(
                session, username, role=Role.READER
            )
            assign(session, study, reader)
        tmp.rename(final)  # last step: the export appears complete or not at all
    except BaseException:
        # nothing half-done survives: the caller's session rolls back the rows, and the
        # partial export (only ever in the hidden temporary folder) is removed
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("study %s: %d cases, %s", spec.name, len(rows), audit.summary())
    return study


def _check_files(organs) -> None:
    """Every CT and mask file of the chosen cases still exists (cheap: one stat each)."""
    missing = [
        p
        for vo in organs
        for p in (vo.volume.ct_path, *vo.mask_paths, *(vo.tumor_paths or ()))
        if not Path(p).is_file()
    ]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise StudyError(
            missing[0],
            f"file of a chosen case is missing{more}",
            "restore it or re-import the dataset (`turingct data import`), then create the "
            "study again",
        )


def _shared_shape(spec: StudySpec, chosen, organs) -> tuple[int, int, int]:
    pres = spec.presentation
    extents = None
    if pres.crop.size is None:  # organ-region crops: one shared size = largest organ box
        extents = []
        for c in chosen:
            case = load_case(organs[c.organ_id].volume, organs[c.organ_id])
            extents.append(extent_mm(case.organ, case.spacing))
    return target_shape(pres, extents)


def _export(
    spec: StudySpec, chosen, organs, shape, tmp: Path, final: Path, progress: bool
) -> tuple[list[StudyCase], list[dict], list]:
    pres = spec.presentation
    rows, features, lesions = [], [], []
    for cand in tqdm(chosen, desc=f"blinding {spec.name}", unit="case", disable=not progress):
        vo = organs[cand.organ_id]
        code = new_code()
        record, ct, tumor, image = export_case(load_case(vo.volume, vo), pres, shape, tmp, code)
        features.append(case_features(ct, tumor, pres.spacing_mm, image))
        lesions.append(record.lesion)
        rows.append(
            StudyCase(
                code=code,
                volume_id=cand.volume_id,
                arm=cand.arm,
                organ=cand.organ,
                method=cand.method,
                blinded_path=str(final / "images" / record.image_path.name),
                blinded_sha256=sha256_file(record.image_path),
                meta={
                    "tumor_kind": cand.tumor_kind,
                    "source": cand.source,
                    "tumor_diameter_mm": cand.tumor_diameter_mm,
                    "mask_path": str(final / "masks" / record.mask_path.name),
                    "blinded_tumor_voxels": int(tumor.sum()),
                    "shape": list(shape),
                    "lesion": record.lesion.to_dict(),
                    # where the viewer's crosshair opens: the lesion the crop was centred on
                    "lesion_voxel": list(record.lesion_voxel),
                },
            )
        )
    return rows, features, lesions


@dataclass(frozen=True)
class StudySummary:
    """One row of ``turingct study list``."""

    id: int
    name: str
    design: str
    status: str
    n_cases: int
    n_readers: int
    audit_auc: float | None
    created_at: str


def list_studies(session: Session, actor: Actor) -> list[StudySummary]:
    """All studies with case and reader counts (staff only)."""
    require_role(actor, *STAFF)
    out = []
    for s in session.scalars(select(Study).order_by(Study.id)):
        n_cases = session.execute(
            select(func.count(StudyCase.id)).where(StudyCase.study_id == s.id)
        ).scalar_one()
        n_readers = session.execute(
            select(func.count(func.distinct(Assignment.reader_id))).where(
                Assignment.study_id == s.id
            )
        ).scalar_one()
        out.append(
            StudySummary(
                s.id,
                s.name,
                s.design.value,
                s.status.value,
                int(n_cases),
                int(n_readers),
                (s.audit or {}).get("auc"),
                f"{clock.as_utc(s.created_at):%Y-%m-%d %H:%M}",
            )
        )
    return out


def show_study(session: Session, actor: Actor, study: int | str) -> dict[str, Any]:
    """Study details: spec, counts per arm/organ/method (``cases`` as 'arm/organ/method' ->
    n, ``case_table`` as rows), audit, size match, export folder, progress."""
    s = get_study(session, actor, study)
    counts: dict[str, int] = {}
    table = []
    for arm, organ, method, n in session.execute(
        select(StudyCase.arm, StudyCase.organ, StudyCase.method, func.count(StudyCase.id))
        .where(StudyCase.study_id == s.id)
        .group_by(StudyCase.arm, StudyCase.organ, StudyCase.method)
        .order_by(StudyCase.arm, StudyCase.organ, StudyCase.method)
    ):
        counts[f"{arm.value}/{organ}" + (f"/{method}" if method else "")] = int(n)
        table.append({"arm": arm.value, "organ": organ, "method": method or "", "cases": int(n)})
    return {
        "id": s.id,
        "name": s.name,
        "design": s.design.value,
        "status": s.status.value,
        "seed": s.seed,
        "allow_changes": s.allow_changes,
        "educational": s.educational,
        "export_dir": s.export_dir,
        "cases": counts,
        "case_table": table,
        "audit": s.audit,
        "size_match": (s.audit or {}).get("size_match"),
        "spec": s.spec,
        "progress": [p.__dict__ for p in progress(session, actor, s.id)],
    }


def close_study(session: Session, actor: Actor, study: int | str) -> Study:
    """Close a study: readers can no longer answer (answers so far are kept)."""
    s = get_study(session, actor, study)
    if s.status != StudyStatus.CLOSED:
        s.status, s.closed_at = StudyStatus.CLOSED, clock.now()
        session.flush()
    return s


def reopen_study(session: Session, actor: Actor, study: int | str) -> Study:
    """Reopen a closed study: its readers can answer again (answers so far are kept)."""
    s = get_study(session, actor, study)
    if s.status != StudyStatus.OPEN:
        s.status, s.closed_at = StudyStatus.OPEN, None
        session.flush()
    return s


@dataclass(frozen=True)
class RemovedReader:
    """What :func:`remove_reader` did: cases withdrawn from the reader, answers kept."""

    username: str
    study: str
    withdrawn: int
    answers_kept: int


def remove_reader(session: Session, actor: Actor, study: int | str, username: str) -> RemovedReader:
    """Take ``username`` off a study: their case order is deleted, so the study no longer
    appears for them. Their answers so far are kept (answers are the study's record and are
    never deleted); adding the reader again restores the same seeded order."""
    s = get_study(session, actor, study)
    user = session.scalar(select(User).where(User.username == username))
    rows = (
        []
        if user is None
        else session.scalars(
            select(Assignment).where(Assignment.study_id == s.id, Assignment.reader_id == user.id)
        ).all()
    )
    if user is None or not rows:
        readers = session.scalars(
            select(User.username)
            .join(Assignment, Assignment.reader_id == User.id)
            .where(Assignment.study_id == s.id)
            .distinct()
            .order_by(User.username)
        ).all()
        raise StudyError(
            f"study {s.name!r}",
            f"{username!r} is not one of its readers ({', '.join(readers) or 'none'})",
            "pick an assigned reader",
        )
    kept = session.execute(
        select(func.count(Answer.id)).where(Answer.study_id == s.id, Answer.reader_id == user.id)
    ).scalar_one()
    for row in rows:
        session.delete(row)
    session.flush()
    log.info(
        "study %s: reader %s removed (%d cases, %d answers kept)", s.name, username, len(rows), kept
    )
    return RemovedReader(username, s.name, len(rows), int(kept))


def import_dataset(session: Session, actor: Actor, fmt: str, path: str | Path, **options: Any):
    """Register a dataset in the catalog (staff only): the ``turingct data import`` service
    (:func:`catalog.volumes.import_dataset`, same formats and options), behind the role
    check the app needs. Returns its ``ImportReport``; the caller commits."""
    from catalog.volumes import import_dataset as register

    require_role(actor, *STAFF)
    return register(session, fmt, path, **options)


def assign_reader(session: Session, actor: Actor, study_id: int | str, reader: User) -> int:
    """Give ``reader`` a seeded order over the study's cases (idempotent); returns #cases."""
    s = get_study(session, actor, study_id)
    if s.status == StudyStatus.CLOSED:
        raise StudyError(
            f"study {s.name!r}",
            "is closed; readers cannot be added",
            "reopen it first (`turingct study reopen`)",
        )
    return len(assign(session, s, reader))


@dataclass(frozen=True)
class ReaderProgress:
    """A reader's progress: answered / total, median and total seconds per answered case."""

    username: str
    years_experience: int | None
    answered: int
    total: int
    median_seconds: float | None
    last_answer_at: str | None


def progress(session: Session, actor: Actor, study_id: int | str) -> list[ReaderProgress]:
    """Per-reader progress of a study (staff only)."""
    s = get_study(session, actor, study_id)
    out = []
    readers = session.scalars(
        select(User)
        .join(Assignment, Assignment.reader_id == User.id)
        .where(Assignment.study_id == s.id)
        .distinct()
        .order_by(User.username)
    ).all()
    for user in readers:
        total = session.execute(
            select(func.count(Assignment.id)).where(
                Assignment.study_id == s.id, Assignment.reader_id == user.id
            )
        ).scalar_one()
        answers = session.scalars(
            select(Answer).where(Answer.study_id == s.id, Answer.reader_id == user.id)
        ).all()
        secs = [a.seconds_on_case for a in answers]
        last = max((clock.as_utc(a.submitted_at) for a in answers), default=None)
        out.append(
            ReaderProgress(
                user.username,
                user.years_experience,
                len(answers),
                int(total),
                round(statistics.median(secs), 2) if secs else None,
                last.isoformat() if last else None,
            )
        )
    return out


KEY_COLUMNS = ("code", "arm", "tumor_kind", "organ", "method", "source", "tumor_diameter_mm")
RESULT_COLUMNS = (
    "reader",
    "years_experience",
    "code",
    "arm",
    "tumor_kind",
    "organ",
    "method",
    "question",
    "answer",
    "confidence",
    "seconds_on_case",
    "first_answer_seconds",
    "window_width",
    "window_level",
    "revision",
    "displayed_at",
    "submitted_at",
)


def key_rows(session: Session, actor: Actor, study: int | str) -> list[dict[str, Any]]:
    """Unblinding key, one row per case (staff only). Phantom lesions keep
    ``tumor_kind = phantom_lesion`` so a demo's 'real' arm is never mistaken for patients."""
    s = get_study(session, actor, study)
    return [
        {
            "code": c.code,
            "arm": c.arm.value,
            "tumor_kind": c.meta.get("tumor_kind"),
            "organ": c.organ,
            "method": c.method or "",
            "source": c.meta.get("source"),
            "tumor_diameter_mm": c.meta.get("tumor_diameter_mm"),
        }
        for c in session.scalars(
            select(StudyCase).where(StudyCase.study_id == s.id).order_by(StudyCase.code)
        )
    ]


def results_rows(session: Session, actor: Actor, study: int | str) -> list[dict[str, Any]]:
    """One row per answer with its truth, timing and window (staff only)."""
    s = get_study(session, actor, study)
    rows = session.execute(
        select(Answer, StudyCase, User)
        .join(StudyCase, Answer.case_id == StudyCase.id)
        .join(User, Answer.reader_id == User.id)
        .where(Answer.study_id == s.id)
        .order_by(User.username, Answer.submitted_at, Answer.id)
    ).all()
    return [
        {
            "reader": u.username,
            "years_experience": u.years_experience,
            "code": c.code,
            "arm": c.arm.value,
            "tumor_kind": c.meta.get("tumor_kind"),
            "organ": c.organ,
            "method": c.method or "",
            "question": a.question,
            "answer": a.value,
            "confidence": a.confidence,
            "seconds_on_case": round(a.seconds_on_case, 3),
            "first_answer_seconds": (
                None if a.first_answer_seconds is None else round(a.first_answer_seconds, 3)
            ),
            "window_width": a.window_width,
            "window_level": a.window_level,
            "revision": a.revision,
            "displayed_at": clock.as_utc(a.displayed_at).isoformat(),
            "submitted_at": clock.as_utc(a.submitted_at).isoformat(),
        }
        for a, c, u in rows
    ]


def rows_to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """CSV text with a header row (empty cells for None)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def write_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], path: str | Path) -> Path:
    """Write rows atomically as CSV (UTF-8)."""
    text = rows_to_csv(rows, columns)
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

"""The study database: catalog, synthesis provenance, studies, readers, answers, results.

SQLAlchemy 2.x typed models. Every schema change goes through an Alembic migration in
``db/migrations/versions``. Answers are protected: foreign keys to answers and their event log
are ``RESTRICT`` (deleting a study, case or reader that has answers fails loudly), and one answer
exists per reader x case x question.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.vocabulary import AnswerEventKind, Organ, Question, StudyDesign

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# Seeds are unsigned 32-bit (batch item seeds come from SeedSequence.generate_state): 64-bit on
# PostgreSQL (migration 0004); SQLite's INTEGER already holds 64 bits.
SEED = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings (no native PG enum types): adding a value needs no type migration.
    return Enum(
        cls,
        native_enum=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def _checked(cls: type[enum.Enum], name: str, length: int = 32) -> Enum:
    # A closed vocabulary the database itself enforces (CHECK ck_<table>_<name>, migration 0005):
    # answers and their log are the study's evidence, so no writer (a script, a psql session)
    # may store a word the analyses would not recognise.
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        create_constraint=True,
        name=name,
    )


class DatasetFormat(enum.StrEnum):
    MSD = "msd"
    KITS = "kits"
    ATLAS = "atlas"
    TOTALSEG = "totalseg"
    MANIFEST = "manifest"
    DICOM = "dicom"
    PHANTOM = "phantom"
    SYNTHETIC = "synthetic"


class Origin(enum.StrEnum):
    """Where a volume's tumor (if any) comes from."""

    REAL = "real"  # patient CT as acquired (tumor, if any, is a real tumor)
    PHANTOM = "phantom"  # built-in phantom (lesions are phantom lesions, never "real")
    SYNTHETIC = "synthetic"  # output of a synthesis method


class TumorKind(enum.StrEnum):
    NONE = "none"
    REAL = "real"
    PHANTOM_LESION = "phantom_lesion"
    SYNTHETIC = "synthetic"


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Role(enum.StrEnum):
    READER = "reader"
    RESEARCHER = "researcher"
    ADMIN = "admin"


class StudyStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Arm(enum.StrEnum):
    REAL = "real"
    SYNTHETIC = "synthetic"


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    format: Mapped[DatasetFormat] = mapped_column(_enum(DatasetFormat))
    root_path: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    volumes: Mapped[list[Volume]] = relationship(back_populates="dataset")


class Volume(Base):
    """One CT volume registered by path and hash (never copied)."""

    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("dataset_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    case_id: Mapped[str] = mapped_column(String(200))
    origin: Mapped[Origin] = mapped_column(_enum(Origin))
    ct_path: Mapped[str] = mapped_column(Text)
    ct_sha256: Mapped[str] = mapped_column(String(64), index=True)
    shape: Mapped[list[Any]] = mapped_column()  # (x, y, z) in RAS voxel order
    spacing: Mapped[list[Any]] = mapped_column()  # mm
    affine: Mapped[list[Any]] = mapped_column()  # 4x4, RAS (canonical) voxel -> mm
    axcodes: Mapped[str] = mapped_column(String(3))  # orientation of the file as stored
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="volumes")
    organs: Mapped[list[VolumeOrgan]] = relationship(
        back_populates="volume", cascade="all, delete-orphan"
    )
    provenance: Mapped[SyntheticProvenance | None] = relationship(
        back_populates="volume", foreign_keys="SyntheticProvenance.volume_id"
    )

    def organ(self, name: str) -> VolumeOrgan | None:
        return next((o for o in self.organs if o.organ == name), None)


class VolumeOrgan(Base):
    """An organ present in a volume: its mask and, when there is one, its tumor mask.

    A mask may be the union of several files (kidney_left + kidney_right, two IRCAD tumor
    files), hence path lists; ``*_labels`` select values in a multi-label file (None: any
    nonzero voxel). Use ``catalog.volumes.load_organ_mask`` / ``load_tumor_mask`` to read
    them. ``healthy`` is True when the organ has no tumor of any kind annotated.
    """

    __tablename__ = "volume_organs"
    __table_args__ = (UniqueConstraint("volume_id", "organ"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    volume_id: Mapped[int] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    organ: Mapped[Organ] = mapped_column(_checked(Organ, "organ"))
    mask_paths: Mapped[list[Any]] = mapped_column()
    mask_sha256: Mapped[str] = mapped_column(String(64))  # of the files' hashes, in order
    mask_labels: Mapped[list[Any] | None] = mapped_column(default=None)
    organ_voxels: Mapped[int] = mapped_column(Integer)
    tumor_kind: Mapped[TumorKind] = mapped_column(_enum(TumorKind), default=TumorKind.NONE)
    tumor_paths: Mapped[list[Any]] = mapped_column(default=list)
    tumor_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    tumor_labels: Mapped[list[Any] | None] = mapped_column(default=None)
    tumor_voxels: Mapped[int] = mapped_column(Integer, default=0)
    tumor_diameter_mm: Mapped[float | None] = mapped_column(Float, default=None)

    volume: Mapped[Volume] = relationship(back_populates="organs")

    @property
    def healthy(self) -> bool:
        return self.tumor_kind == TumorKind.NONE


class SynthesisJob(Base):
    __tablename__ = "synthesis_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # an open set (the registry grows): catalog/ checks it against registered_methods()
    method: Mapped[str] = mapped_column(String(32))
    organ: Mapped[Organ] = mapped_column(_checked(Organ, "organ"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(SEED)
    out_dir: Mapped[str] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(String(16), default="local")
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.PENDING)
    n_total: Mapped[int] = mapped_column(Integer, default=0)
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)  # [{item, case, error}]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def progress(self) -> float:
        return (self.n_done + self.n_failed) / self.n_total if self.n_total else 0.0


class SyntheticProvenance(Base):
    """How a synthetic volume was made: enough to reproduce it bit for bit on the same device."""

    __tablename__ = "synthetic_provenance"

    id: Mapped[int] = mapped_column(primary_key=True)
    volume_id: Mapped[int] = mapped_column(
        ForeignKey("volumes.id", ondelete="CASCADE"), unique=True
    )
    source_volume_id: Mapped[int | None] = mapped_column(
        ForeignKey("volumes.id", ondelete="SET NULL"), default=None, index=True
    )
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("synthesis_jobs.id", ondelete="SET NULL"), default=None
    )
    # an open set (the registry grows): catalog/ checks it against registered_methods()
    method: Mapped[str] = mapped_column(String(32))
    organ: Mapped[Organ] = mapped_column(_checked(Organ, "organ"))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(SEED)
    device: Mapped[str] = mapped_column(String(32))
    checkpoint_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    code_version: Mapped[str] = mapped_column(String(64))
    tumor_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest_path: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    volume: Mapped[Volume] = relationship(back_populates="provenance", foreign_keys=[volume_id])
    source_volume: Mapped[Volume | None] = relationship(foreign_keys=[source_volume_id])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.READER)
    years_experience: Mapped[int | None] = mapped_column(Integer, default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Invite(Base):
    """Single-use, time-limited sign-up link; only the token's hash is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # set when a newer invite for the same account is issued, or a researcher revokes it
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class LoginThrottle(Base):
    """Failed logins per (username as typed, source address); usernames that do not exist are
    counted the same way, so the answers never tell which accounts exist. ``lockouts`` drives
    the back-off (each lockout lasts twice the previous one)."""

    __tablename__ = "login_throttle"
    __table_args__ = (UniqueConstraint("username", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_failure_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class LoginSession(Base):
    """A browser login that survives a reload: the browser keeps a random token (cookie), the
    database only its SHA-256. Logging out revokes it, which ends every tab sharing it."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    design: Mapped[StudyDesign] = mapped_column(_enum(StudyDesign))
    status: Mapped[StudyStatus] = mapped_column(_enum(StudyStatus), default=StudyStatus.OPEN)
    spec: Mapped[dict[str, Any]] = mapped_column()  # the validated spec, as loaded
    spec_yaml: Mapped[str] = mapped_column(Text, default="")
    seed: Mapped[int] = mapped_column(SEED)
    allow_changes: Mapped[bool] = mapped_column(Boolean, default=False)
    educational: Mapped[bool] = mapped_column(Boolean, default=False)
    export_dir: Mapped[str] = mapped_column(Text)
    audit: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    cases: Mapped[list[StudyCase]] = relationship(back_populates="study")


class StudyCase(Base):
    """A blinded case: readers see only ``code`` and the blinded file; truth stays here."""

    __tablename__ = "study_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    volume_id: Mapped[int] = mapped_column(ForeignKey("volumes.id", ondelete="RESTRICT"))
    arm: Mapped[Arm] = mapped_column(_enum(Arm))
    organ: Mapped[Organ] = mapped_column(_checked(Organ, "organ"))
    method: Mapped[str | None] = mapped_column(String(32), default=None)
    blinded_path: Mapped[str] = mapped_column(Text)
    blinded_sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)

    study: Mapped[Study] = relationship(back_populates="cases")
    volume: Mapped[Volume] = relationship()


class Assignment(Base):
    """A reader's seeded, stable case order in a study (one row per case)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("reader_id", "case_id"),
        UniqueConstraint("study_id", "reader_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="RESTRICT"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("study_cases.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)  # 0-based
    first_displayed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    case: Mapped[StudyCase] = relationship()
    reader: Mapped[User] = relationship()


class Answer(Base):
    """One reader's answer to one question about one case (unique), with its timing context."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("reader_id", "case_id", "question"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="RESTRICT"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("study_cases.id", ondelete="RESTRICT"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    question: Mapped[Question] = mapped_column(_checked(Question, "question"))
    value: Mapped[str] = mapped_column(String(32))  # real / synthetic / unsure / organ
    confidence: Mapped[int | None] = mapped_column(Integer, default=None)  # 1..5
    seconds_on_case: Mapped[float] = mapped_column(Float)  # first display -> latest submit
    # first display -> first submit; unchanged when the answer is later changed
    first_answer_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    window_width: Mapped[float | None] = mapped_column(Float, default=None)
    window_level: Mapped[float | None] = mapped_column(Float, default=None)
    displayed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)

    case: Mapped[StudyCase] = relationship()
    reader: Mapped[User] = relationship()


class AnswerEvent(Base):
    """Append-only log of every submission attempt (created, changed, duplicate, rejected)."""

    __tablename__ = "answer_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[int | None] = mapped_column(
        ForeignKey("answers.id", ondelete="RESTRICT"), default=None, index=True
    )
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="RESTRICT"))
    case_id: Mapped[int] = mapped_column(ForeignKey("study_cases.id", ondelete="RESTRICT"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    event: Mapped[AnswerEventKind] = mapped_column(_checked(AnswerEventKind, "event", 16))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvaluationResult(Base):
    """A stored evaluation (reader table, FID, DSC/NSD, radiomics, benchmark row)."""

    __tablename__ = "evaluation_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="SET NULL"), default=None, index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

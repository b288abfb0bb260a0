"""A study's answers in the database become the same votes table as the CSV path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evaluation.readers import reader_table
from evaluation.study_data import study_votes
from evaluation.tables import EvaluationInputError


@pytest.fixture
def session():
    from sqlalchemy.orm import Session

    from db.models import Base
    from db.session import make_engine

    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def _study(session):
    from db.models import (
        Answer,
        Arm,
        Dataset,
        DatasetFormat,
        Origin,
        Study,
        StudyCase,
        StudyDesign,
        User,
        Volume,
    )

    ds = Dataset(name="d", format=DatasetFormat.PHANTOM, root_path="/x")
    vol = Volume(
        dataset=ds,
        case_id="v",
        origin=Origin.REAL,
        ct_path="/x/ct.nii.gz",
        ct_sha256="0" * 64,
        shape=[1, 1, 1],
        spacing=[1, 1, 1],
        affine=[],
        axcodes="RAS",
    )
    study = Study(name="demo", design=StudyDesign.TURING, spec={}, seed=1, export_dir="/x")
    readers = [User(username="alice"), User(username="bob")]
    session.add_all([ds, vol, study, *readers])
    session.flush()
    cases = []
    for i, (arm, method) in enumerate(
        [(Arm.REAL, None), (Arm.REAL, None), (Arm.SYNTHETIC, "p2c"), (Arm.SYNTHETIC, "p2c")]
    ):
        cases.append(
            StudyCase(
                study=study,
                code=f"K{i}",
                volume_id=vol.id,
                arm=arm,
                organ="liver",
                method=method,
                blinded_path="/b",
                blinded_sha256="0" * 64,
            )
        )
    session.add_all(cases)
    session.flush()
    answers = {
        "alice": ["real", "unsure", "real", "synthetic"],
        "bob": ["real", "synthetic", "synthetic", "synthetic"],
    }
    for user in readers:
        for case, value in zip(cases, answers[user.username], strict=True):
            session.add(
                Answer(
                    study_id=study.id,
                    case_id=case.id,
                    reader_id=user.id,
                    question="truth",
                    value=value,
                    confidence=3,
                    seconds_on_case=5.0,
                    displayed_at=datetime.now(UTC),
                    idempotency_key=f"{user.username}{case.code}",
                )
            )
    session.flush()


def test_study_votes_to_reader_table(session):
    _study(session)
    votes = study_votes(session, "demo")
    assert len(votes) == 8 and set(votes.method) == {"", "p2c"}
    table = reader_table(votes).set_index(["reader", "organ"])
    alice = table.loc[("alice", "liver")]
    assert (alice.tp, alice.fn, alice.tn, alice.fp, alice.n_unsure_real) == (1, 0, 1, 1, 1)
    bob = table.loc[("bob", "liver")]
    assert (bob.tp, bob.fn, bob.tn, bob.fp) == (1, 1, 2, 0)
    assert table.loc[("bob", "liver"), "method"] == "p2c"
    with pytest.raises(EvaluationInputError, match="does not exist"):
        study_votes(session, "nope")

"""Schema guarantees: migrations match the models, answers are unique and protected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, inspect, text
from sqlalchemy.exc import IntegrityError

from db.models import (
    Answer,
    Arm,
    Base,
    Dataset,
    DatasetFormat,
    Origin,
    Role,
    Study,
    StudyCase,
    StudyDesign,
    User,
    Volume,
)
from db.session import alembic_config, session_scope, upgrade


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_round_trips(db_url, engine):
    upgrade(db_url)  # second run: nothing to do
    command.downgrade(alembic_config(db_url), "base")
    assert "answers" not in inspect(engine).get_table_names()
    upgrade(db_url)
    assert "answers" in inspect(engine).get_table_names()


def test_sqlite_runs_in_wal_mode(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("WAL is a SQLite setting")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def _study_with_answer(session):
    ds = Dataset(name="d", format=DatasetFormat.PHANTOM, root_path="/x")
    vol = Volume(
        dataset=ds,
        case_id="c",
        origin=Origin.PHANTOM,
        ct_path="/x/ct.nii.gz",
        ct_sha256="0" * 64,
        shape=[1, 1, 1],
        spacing=[1, 1, 1],
        affine=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        axcodes="RAS",
    )
    study = Study(name="s", design=StudyDesign.TURING, spec={}, seed=0, export_dir="/e")
    case = StudyCase(
        study=study,
        code="abc",
        volume=vol,
        arm=Arm.REAL,
        organ="liver",
        blinded_path="/e/abc.nii.gz",
        blinded_sha256="1" * 64,
    )
    reader = User(username="r", role=Role.READER)
    session.add_all([ds, vol, study, case, reader])
    session.flush()
    now = datetime.now(UTC)
    answer = Answer(
        study_id=study.id,
        case_id=case.id,
        reader_id=reader.id,
        question="truth",
        value="real",
        seconds_on_case=3.0,
        displayed_at=now,
        idempotency_key="k1",
    )
    session.add(answer)
    session.flush()
    return study, case, reader


def test_one_answer_per_reader_case_question(engine):
    with session_scope(engine) as s:
        study, case, reader = _study_with_answer(s)
        ids = (study.id, case.id, reader.id)
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(
            Answer(
                study_id=ids[0],
                case_id=ids[1],
                reader_id=ids[2],
                question="truth",
                value="synthetic",
                seconds_on_case=1.0,
                displayed_at=datetime.now(UTC),
                idempotency_key="k2",
            )
        )


def test_seeds_take_every_unsigned_32_bit_value(engine):
    """A batch item's seed is a uint32 from SeedSequence.generate_state; values >= 2**31
    overflowed PostgreSQL's INTEGER and the item's registration failed (migration 0004)."""
    from db.models import SynthesisJob, SyntheticProvenance

    seed = 2**32 - 1
    with session_scope(engine) as s:
        study, case, _ = _study_with_answer(s)
        study.seed = seed
        job = SynthesisJob(method="handcrafted", organ="liver", config={}, seed=seed, out_dir="/o")
        s.add(job)
        s.flush()
        s.add(
            SyntheticProvenance(
                volume_id=case.volume_id,
                job_id=job.id,
                method="handcrafted",
                organ="liver",
                params={},
                seed=seed,
                device="cpu",
                code_version="test",
                tumor_stats={},
                manifest_path="/m",
            )
        )
    with session_scope(engine) as s:
        assert s.get(Study, study.id).seed == seed
        assert s.get(SynthesisJob, job.id).seed == seed
        assert s.query(SyntheticProvenance).one().seed == seed


def test_answers_block_deleting_their_case_and_reader(engine):
    with session_scope(engine) as s:
        _, case, reader = _study_with_answer(s)
        case_id, reader_id = case.id, reader.id
    for stmt in (
        delete(StudyCase).where(StudyCase.id == case_id),
        delete(User).where(User.id == reader_id),
    ):
        with pytest.raises(IntegrityError), session_scope(engine) as s:
            s.execute(stmt)
    with session_scope(engine) as s:
        assert s.get(Answer, 1) is not None


def test_backup_is_a_usable_copy(db_url, engine, tmp_path):
    from db.backup import backup

    with session_scope(engine) as s:
        _study_with_answer(s)
    if engine.dialect.name != "sqlite":
        pytest.importorskip("shutil").which("pg_dump") or pytest.skip("pg_dump not installed")
    out = backup(db_url, tmp_path / "copy.bak")
    assert out.is_file() and out.stat().st_size > 0
    if engine.dialect.name == "sqlite":
        from db.session import make_engine

        copy = make_engine(f"sqlite:///{out}")
        with session_scope(copy) as s:
            assert s.get(Answer, 1).value == "real"
        copy.dispose()


def _insert_dataset_and_volume(conn, now) -> None:
    """Dataset 1 with volume 1, as raw SQL that every schema revision accepts."""
    conn.execute(
        text(
            "INSERT INTO datasets (id, name, format, root_path, meta, created_at) "
            "VALUES (1, 'd', 'phantom', '/x', '{}', :t)"
        ),
        {"t": now},
    )
    conn.execute(
        text(
            "INSERT INTO volumes (id, dataset_id, case_id, origin, ct_path, ct_sha256, shape, "
            "spacing, affine, axcodes, meta, created_at) VALUES (1, 1, 'c', 'phantom', '/x', "
            ":h, '[1,1,1]', '[1,1,1]', '[]', 'RAS', '{}', :t)"
        ),
        {"h": "0" * 64, "t": now},
    )


def test_upgrade_from_0001_keeps_answers_and_backfills_first_answer_time(db_url, engine):
    """An old schema with data in it is migrated without losing anything; the new column is
    filled from the data (unchanged answers) and from the answer event log (changed ones)."""
    import json

    command.downgrade(alembic_config(db_url), "0001")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        _insert_dataset_and_volume(conn, now)
        conn.execute(
            text(
                "INSERT INTO studies (id, name, design, status, spec, spec_yaml, seed, "
                "allow_changes, educational, export_dir, audit, created_at) VALUES (1, 's', "
                "'turing', 'open', '{}', '', 0, true, false, '/e', '{}', :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, role, is_active, failed_logins, "
                "created_at) VALUES (1, 'r', 'reader', true, 0, :t)"
            ),
            {"t": now},
        )
        for case in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO study_cases (id, study_id, code, volume_id, arm, organ, "
                    "blinded_path, blinded_sha256, meta) VALUES (:i, 1, :c, 1, 'real', 'liver', "
                    "'/e/x', :h, '{}')"
                ),
                {"i": case, "c": f"code{case}", "h": "1" * 64},
            )
        for answer, case, seconds, revision in ((1, 1, 4.0, 1), (2, 2, 30.0, 2)):
            conn.execute(
                text(
                    "INSERT INTO answers (id, study_id, case_id, reader_id, question, value, "
                    "seconds_on_case, displayed_at, submitted_at, revision, idempotency_key) VALUES "
                    "(:a, 1, :c, 1, 'truth', 'real', :s, :t, :t, :r, :k)"
                ),
                {"a": answer, "c": case, "s": seconds, "t": now, "r": revision, "k": f"k{answer}"},
            )
        conn.execute(
            text(
                "INSERT INTO answer_events (answer_id, study_id, case_id, reader_id, event, payload, "
                "idempotency_key, created_at) VALUES (2, 1, 2, 1, 'created', :p, 'k0', :t)"
            ),
            {"p": json.dumps({"seconds_on_case": 7.5}), "t": now},
        )
    upgrade(db_url)
    with session_scope(engine) as s:
        answers = {a.id: a for a in s.query(Answer).all()}
        assert (answers[1].value, answers[1].seconds_on_case) == ("real", 4.0)
        assert answers[1].first_answer_seconds == 4.0
        assert (answers[2].seconds_on_case, answers[2].first_answer_seconds) == (30.0, 7.5)


def _populate_0004(engine, organ="liver", question="truth", event="created"):
    """A 0004 schema holding one of everything migration 0005 checks, written as raw SQL (the
    models already carry the constraints). The provenance row points at its job, which a SQLite
    table rebuild with foreign keys on would have set to NULL."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        _insert_dataset_and_volume(conn, now)
        conn.execute(
            text(
                "INSERT INTO volume_organs (id, volume_id, organ, mask_paths, mask_sha256, "
                "organ_voxels, tumor_kind, tumor_paths, tumor_voxels) VALUES (1, 1, :o, '[]', :h, 1, "
                "'none', '[]', 0)"
            ),
            {"o": organ, "h": "0" * 64},
        )
        conn.execute(
            text(
                "INSERT INTO synthesis_jobs (id, method, organ, config, seed, out_dir, executor, "
                "status, n_total, n_done, n_failed, errors, created_at) VALUES (1, 'handcrafted', "
                "'liver', '{}', 0, '/o', 'local', 'done', 1, 1, 0, '[]', :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO synthetic_provenance (id, volume_id, job_id, method, organ, params, seed, "
                "device, code_version, tumor_stats, created_at) VALUES (1, 1, 1, 'handcrafted', "
                "'liver', '{}', 0, 'cpu', 'v', '{}', :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO studies (id, name, design, status, spec, spec_yaml, seed, "
                "allow_changes, educational, export_dir, audit, created_at) VALUES (1, 's', "
                "'turing', 'open', '{}', '', 0, true, false, '/e', '{}', :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, role, is_active, failed_logins, "
                "created_at) VALUES (1, 'r', 'reader', true, 0, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO study_cases (id, study_id, code, volume_id, arm, organ, blinded_path, "
                "blinded_sha256, meta) VALUES (1, 1, 'code1', 1, 'real', 'liver', '/e/x', :h, '{}')"
            ),
            {"h": "1" * 64},
        )
        conn.execute(
            text(
                "INSERT INTO answers (id, study_id, case_id, reader_id, question, value, "
                "seconds_on_case, first_answer_seconds, displayed_at, submitted_at, revision, "
                "idempotency_key) VALUES (1, 1, 1, 1, :q, 'real', 4.0, 4.0, :t, :t, 1, 'k1')"
            ),
            {"q": question, "t": now},
        )
        conn.execute(
            text(
                "INSERT INTO answer_events (id, answer_id, study_id, case_id, reader_id, event, "
                "payload, idempotency_key, created_at) VALUES (1, 1, 1, 1, 1, :e, '{}', 'k1', :t)"
            ),
            {"e": event, "t": now},
        )


def _snapshot(engine):
    tables = (
        "volume_organs",
        "synthesis_jobs",
        "synthetic_provenance",
        "study_cases",
        "answers",
        "answer_events",
    )
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
            for t in tables
        }


def _revision(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_upgrade_to_0005_keeps_every_row_and_the_database_then_checks_the_vocabulary(
    db_url, engine
):
    command.downgrade(alembic_config(db_url), "0004_seeds_64bit")
    _populate_0004(engine)
    before = _snapshot(engine)
    upgrade(db_url)
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT job_id FROM synthetic_provenance")).scalar() == 1
    with session_scope(engine) as s:
        answer = s.get(Answer, 1)
        # typed now, and still equal to the plain strings the analyses and CLI print
        assert answer.question == "truth" and answer.case.organ == "liver"
    bad_rows = (
        "UPDATE volume_organs SET organ = 'lung'",
        "UPDATE study_cases SET organ = 'Liver'",
        "UPDATE answers SET question = 'real'",
        "UPDATE answer_events SET event = 'deleted'",
    )
    for stmt in bad_rows:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(stmt))
    command.downgrade(alembic_config(db_url), "0004_seeds_64bit")
    assert _snapshot(engine) == before
    with engine.begin() as conn:  # the constraints are gone again
        conn.execute(text("UPDATE answer_events SET event = 'deleted'"))


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"organ": "lung"}, "volume_organs.organ holds 'lung'"),
        (
            {"question": "Truth", "event": "imported"},
            "answers.question holds 'Truth' (allowed: truth, origin); answer_events.event holds "
            "'imported'",
        ),
    ],
)
def test_upgrade_to_0005_refuses_values_outside_the_vocabulary_and_changes_nothing(
    db_url, engine, bad, named
):
    from db.session import DatabaseError

    command.downgrade(alembic_config(db_url), "0004_seeds_64bit")
    _populate_0004(engine, **bad)
    before = _snapshot(engine)
    with pytest.raises(DatabaseError, match="nothing was changed") as err:
        upgrade(db_url)
    message = str(err.value)
    assert named in message and "\n" not in message and "turingct db upgrade" in message
    assert _revision(engine) == "0004_seeds_64bit"
    assert _snapshot(engine) == before


def test_the_database_checks_exactly_the_models_closed_vocabularies(engine):
    """Autogenerate does not compare CHECK constraints: a word added to core.vocabulary needs a
    migration of its own, and this is what notices a missing one."""
    import re

    from sqlalchemy import Enum

    checked = [
        (table.name, col.name, col.type)
        for table in Base.metadata.sorted_tables
        for col in table.columns
        if isinstance(col.type, Enum) and col.type.create_constraint
    ]
    assert {(t, c) for t, c, _ in checked} >= {
        ("answers", "question"),
        ("answer_events", "event"),
        ("volume_organs", "organ"),
        ("study_cases", "organ"),
    }
    inspector = inspect(engine)
    for table, column, type_ in checked:
        found = {ck["name"]: ck["sqltext"] for ck in inspector.get_check_constraints(table)}
        name = f"ck_{table}_{column}"
        assert name in found, f"{name} missing from the database"
        assert set(re.findall(r"'([^']*)'", found[name])) == set(type_.enums), name

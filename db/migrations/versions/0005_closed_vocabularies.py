"""closed vocabularies checked by the database: organ, answers.question, answer_events.event

Revision ID: 0005_closed_vocabularies
Revises: 0004_seeds_64bit
Create Date: 2026-12-01

The organ columns, ``answers.question`` and ``answer_events.event`` were free strings; a value
outside ``core.vocabulary`` (a typo in a script, a hand edit) would be stored and then silently
dropped or miscounted by the analyses. Each now carries a CHECK constraint. A database already
holding such a value is refused before anything is changed: the rows are reader evidence, so
the migration never rewrites or deletes them; whoever owns the data corrects them and reruns.
The values are written out here (not imported) because they are the vocabulary of this
revision; a later change to the vocabulary is a later migration.
"""

import sqlalchemy as sa
from alembic import op

from db.session import DatabaseError

revision = "0005_closed_vocabularies"
down_revision = "0004_seeds_64bit"
branch_labels = None
depends_on = None

ORGANS = ("liver", "pancreas", "kidney")
QUESTIONS = ("truth", "origin")
EVENTS = ("displayed", "created", "changed", "duplicate", "rejected")

# (table, column, allowed values); the constraint is ck_<table>_<column> (the models' name)
CHECKS = (
    ("volume_organs", "organ", ORGANS),
    ("synthesis_jobs", "organ", ORGANS),
    ("synthetic_provenance", "organ", ORGANS),
    ("study_cases", "organ", ORGANS),
    ("answers", "question", QUESTIONS),
    ("answer_events", "event", EVENTS),
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _refuse_unknown_values() -> None:
    bind = op.get_bind()
    found = []
    for table, column, values in CHECKS:
        bad = list(
            bind.execute(
                sa.text(
                    f"SELECT DISTINCT {column} FROM {table} "
                    f"WHERE NOT ({_in(column, values)}) ORDER BY 1"
                )
            ).scalars()
        )
        if bad:
            found.append(
                f"{table}.{column} holds {', '.join(map(repr, bad))} (allowed: {', '.join(values)})"
            )
    if found:
        raise DatabaseError(
            f"migration 0005 (closed vocabularies): {'; '.join(found)}; nothing was changed: "
            "correct those rows yourself (they may be reader answers, which a migration never "
            "rewrites), then run `turingct db upgrade` again"
        )


def upgrade() -> None:
    _refuse_unknown_values()
    for table, column, values in CHECKS:
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(batch.f(f"ck_{table}_{column}"), _in(column, values))


def downgrade() -> None:
    for table, column, _ in reversed(CHECKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(batch.f(f"ck_{table}_{column}"), type_="check")

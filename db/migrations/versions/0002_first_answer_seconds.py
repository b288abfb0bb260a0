"""answers.first_answer_seconds: time to the first answer, kept when an answer is changed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

``seconds_on_case`` is first display -> latest submit, so a changed answer loses the time of
the original decision. Existing rows are backfilled: unchanged answers from
``seconds_on_case``, changed ones from the seconds recorded in their 'created' event.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("first_answer_seconds", sa.Float(), nullable=True))
    bind = op.get_bind()
    bind.execute(
        sa.text("UPDATE answers SET first_answer_seconds = seconds_on_case WHERE revision = 1")
    )
    changed = bind.execute(
        sa.text(
            "SELECT a.id, e.payload FROM answers a JOIN answer_events e ON e.answer_id = a.id "
            "WHERE a.revision > 1 AND e.event = 'created'"
        )
    ).all()
    for answer_id, payload in changed:
        data = json.loads(payload) if isinstance(payload, str) else payload
        seconds = (data or {}).get("seconds_on_case")
        if seconds is not None:
            bind.execute(
                sa.text("UPDATE answers SET first_answer_seconds = :s WHERE id = :i"),
                {"s": float(seconds), "i": answer_id},
            )


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("first_answer_seconds")

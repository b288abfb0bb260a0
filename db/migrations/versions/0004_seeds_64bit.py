"""seed columns 64-bit: synthesis_jobs.seed, synthetic_provenance.seed, studies.seed

Revision ID: 0004_seeds_64bit
Revises: 0003_login_security
Create Date: 2026-12-01

A batch item's seed is ``SeedSequence([seed, index]).generate_state(1)[0]``, an unsigned 32-bit
value; about half of them are >= 2**31 and overflowed PostgreSQL's 32-bit INTEGER (the
registration of those outputs failed). SQLite stores 64-bit integers either way (no change
there); existing values are kept as they are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_seeds_64bit"
down_revision = "0003_login_security"
branch_labels = None
depends_on = None

TABLES = ("synthesis_jobs", "synthetic_provenance", "studies")


def _sqlite() -> bool:
    # SQLite's INTEGER already holds 64 bits; a batch rebuild of `studies` would also trip
    # over the foreign keys of its populated child tables, so there is nothing to do there.
    return op.get_bind().dialect.name == "sqlite"


def _retype(old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's INTEGER already holds 64 bits; a batch rebuild of `studies` would also trip
        # over the foreign keys of its populated child tables, so there is nothing to do there.
        return
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("seed", existing_type=old, type_=new, existing_nullable=False)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())

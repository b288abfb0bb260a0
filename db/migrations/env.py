"""Alembic environment: URL from the config (set by db.session.upgrade) or settings."""

from alembic import context
from sqlalchemy import pool

from core.errors import TuringCTError
from core.settings import database_url
from db import models  # registers every table on Base.metadata
from db.session import make_engine

config = context.config
target_metadata = models.Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or database_url()


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a SQLite table (copy, drop, rename); with foreign keys on, the
            # drop would run the children's ON DELETE actions (SET NULL, CASCADE) or fail their
            # RESTRICT. They are off while migrating (the pragma only works outside a
            # transaction, hence the commit) and every reference is checked at the end.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        # batch mode: SQLite cannot ALTER most things in place
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            connection.rollback()
            if broken:
                raise TuringCTError(
                    f"{_url()}: {len(broken)} rows reference missing rows after "
                    f"migrating (first: {tuple(broken[0])}); restore the backup"
                )
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

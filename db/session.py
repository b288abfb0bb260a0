"""Engine factory, sessions and migrations. Nothing is created at import time.

SQLite (the default, a file under the data directory) runs in WAL mode with a busy timeout and
foreign keys on; every write goes through a short transaction (``session_scope``). For more than
about 20 readers answering at the same time, use PostgreSQL (``TURINGCT_DATABASE_URL``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.errors import TuringCTError
from core.settings import database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseError(TuringCTError):
    """The database is missing, unreachable or not migrated."""


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """Create an engine for ``url`` (default: settings); SQLite gets WAL + busy timeout + FKs."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault(
            "connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    kwargs.setdefault("pool_pre_ping", True)
    try:
        return create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"{url}: database driver missing ({exc.name}); install it with "
            "`pip install 'turingct[postgres]'`"
        ) from exc


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    # FULL: an acknowledged answer survives an OS crash or power loss too (NORMAL with WAL may
    # roll back the last commits then); costs ~1 ms per commit.
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> str:
    """Create or migrate the database to ``revision``; returns the URL used."""
    from alembic import command

    url = database_url(url)
    engine = make_engine(url)  # creates the SQLite parent folder, sets WAL
    with engine.connect():
        pass
    engine.dispose()
    command.upgrade(alembic_config(url), revision)
    return url


def require_schema(engine: Engine) -> None:
    """Fail with the fix when the database has not been created/migrated yet."""
    try:
        tables = set(inspect(engine).get_table_names())
    except Exception as exc:
        raise DatabaseError(
            f"{engine.url.render_as_string(hide_password=True)}: cannot connect "
            f"({exc.__class__.__name__}); check the URL and that the server "
            "runs"
        ) from exc
    if "volumes" not in tables:
        raise DatabaseError(
            f"{engine.url.render_as_string(hide_password=True)}: database has "
            "no schema; run `turingct db upgrade` first"
        )


def open_engine(url: str | None = None) -> Engine:
    """Engine for CLI/app use: the schema must exist."""
    engine = make_engine(url)
    require_schema(engine)
    return engine

"""Online backups: SQLite's backup API (consistent while readers keep answering) or pg_dump."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from core.errors import InputError
from core.settings import database_url
from db.session import DatabaseError


def backup(url: str | None, out: str | os.PathLike | None = None) -> Path:
    """Write a consistent copy of the database and return its path.

    SQLite: a new SQLite file made with the online backup API (safe during a running study).
    PostgreSQL: a custom-format ``pg_dump`` archive (restore with ``pg_restore``).
    """
    url = database_url(url)
    parsed = make_url(url)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if parsed.get_backend_name() == "sqlite":
        src = Path(parsed.database or "")
        if not src.is_file():
            # the --db value names no file: an input, unlike the server and tool failures below
            raise InputError(src, "database file not found", "check --db")
        dest = Path(out) if out else src.with_name(f"{src.stem}-backup-{stamp}.db")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        with sqlite3.connect(src) as source, sqlite3.connect(tmp) as target:
            source.backup(target)
        tmp.replace(dest)
        return dest
    if parsed.get_backend_name() == "postgresql":
        if not shutil.which("pg_dump"):
            raise DatabaseError(
                "pg_dump not found; install the PostgreSQL client "
                "(Debian: apt-get install postgresql-client)"
            )
        dest = Path(out) if out else Path(f"turingct-backup-{stamp}.dump")
        libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        tmp = dest.with_suffix(dest.suffix + ".part")
        result = subprocess.run(
            ["pg_dump", "--format=custom", f"--file={tmp}", libpq], capture_output=True, text=True
        )
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise DatabaseError(
                f"pg_dump failed: {result.stderr.strip().splitlines()[-1:]}; "
                "check the URL and server"
            )
        tmp.replace(dest)
        return dest
    raise InputError(
        parsed.render_as_string(hide_password=True),
        f"backup supports SQLite and PostgreSQL, got {parsed.get_backend_name()}",
        "pass a SQLite or PostgreSQL --db URL",
    )

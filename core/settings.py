"""Where things live: data directory and database URL, from environment or defaults; and the
code version every synthetic volume and result records.

Nothing here touches the disk at import time; callers ask for paths when they need them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
from pathlib import Path

ENV_DATA_DIR = "TURINGCT_DATA_DIR"
ENV_DATABASE_URL = "TURINGCT_DATABASE_URL"
DISTRIBUTION = "turingct"


def data_dir() -> Path:
    """Directory for the default database, phantom cohorts, synthetic volumes and studies."""
    return Path(os.environ.get(ENV_DATA_DIR, "data")).expanduser().resolve()


def database_url(explicit: str | None = None) -> str:
    """Database URL: explicit argument, else $TURINGCT_DATABASE_URL, else a SQLite file.

    A bare file path (no ``://``) is taken as a SQLite file.
    """
    url = explicit or os.environ.get(ENV_DATABASE_URL)
    if not url:
        return f"sqlite:///{data_dir() / 'turingct.db'}"
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), '0+unknown' when not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


@functools.cache
def code_version() -> str:
    """Package version plus the git commit (and '+dirty') when run from a checkout."""
    root = Path(__file__).resolve().parent.parent
    version = package_version()
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}"

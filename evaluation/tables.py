"""Writing result tables with their conventions, and the evaluation layer's input error.

Every table the evaluation layer writes is a plain CSV (``table.csv``) plus a sidecar text file
``table.conventions.txt`` next to it stating how the numbers were made (positive class, unsure
handling, tolerance, feature extractor, seed, versions). A sidecar rather than a commented header
keeps the CSV readable by every tool (pandas, R, Excel) without options.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from core.errors import InputError
from synth_backend.io import atomic_write


class EvaluationInputError(InputError):
    """A table or folder given to an evaluation command that cannot be used as given.

    Message shape: ``<file>: <what is wrong>; <what to do>``.
    """

    placeholder = "<table>"

    def __init__(self, path: Path | str | None, problem: str, fix: str):
        self.path = Path(path) if path is not None else None
        super().__init__(self.path, problem, fix)


def conventions_path(csv_path: str | Path) -> Path:
    """``out/table.csv`` -> ``out/table.conventions.txt``."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + ".conventions.txt")


def format_conventions(conventions: Mapping[str, object], title: str = "") -> str:
    """Render ``{key: value}`` as ``key: value`` lines (stable order as given)."""
    lines = [f"# {title}"] if title else []
    lines += [f"{key}: {value}" for key, value in conventions.items()]
    return "\n".join(lines) + "\n"


def table_slug(text: str) -> str:
    """A table name safe as a file name (report CSVs are written under it)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "table"


def write_table(
    df: pd.DataFrame, path: str | Path, conventions: Mapping[str, object], title: str = ""
) -> tuple[Path, Path]:
    """Write ``df`` as CSV (no index) and its conventions sidecar, both atomically.

    Returns ``(csv_path, conventions_path)``. A ``written`` timestamp (UTC) is appended to the
    conventions so a sidecar can be matched to its table.
    """
    path = Path(path)
    meta = dict(conventions)
    meta.setdefault("written", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    # full precision (shortest repr that round-trips): rounding is for display only, and a
    # rounded CSV cannot reproduce derived numbers (FRD from features.csv, t-SNE)
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    side = conventions_path(path)
    text = format_conventions(meta, title)
    atomic_write(side, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path, side

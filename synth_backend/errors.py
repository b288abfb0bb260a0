"""One error shape for bad inputs: '<file>: <what is wrong>; <what to do>'."""

from __future__ import annotations

from pathlib import Path


class TuringCTError(Exception):
    """Base for errors the CLI reports as one line (no traceback) and exits non-zero."""


class VolumeError(TuringCTError, ValueError):
    """A volume or mask file that cannot be used as given."""

    def __init__(self, path: Path | str | None, problem: str, fix: str):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        self.fix = fix
        where = str(self.path) if self.path is not None else "<array>"
        super().__init__(f"{where}: {problem}; {fix}")

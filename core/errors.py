"""One error shape for bad inputs: '<where>: <what is wrong>; <what to do>'."""

from __future__ import annotations

from pathlib import Path


class TuringCTError(Exception):
    """Base for errors the CLI reports as one line (no traceback) and exits non-zero."""


class InputError(TuringCTError, ValueError):
    """An input (file, table, case, value) that cannot be used as given.

    ``where`` names the input (a path, a case, an option); ``None`` prints as ``placeholder``,
    which subclasses set to what their anonymous input is (an array, a table).
    """

    placeholder = "<input>"

    def __init__(self, where: Path | str | None, problem: str, fix: str):
        self.where = where
        self.problem = problem
        self.fix = fix
        super().__init__(f"{where if where is not None else self.placeholder}: {problem}; {fix}")

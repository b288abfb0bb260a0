"""The volume error; the error types themselves live on the ground floor (:mod:`core.errors`).

``TuringCTError`` is re-exported here for the modules that imported it from this place.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError, TuringCTError

__all__ = ["TuringCTError", "VolumeError"]


class VolumeError(InputError):
    """A volume or mask file that cannot be used as given: '<file>: <problem>; <fix>'."""

    placeholder = "<array>"

    def __init__(self, path: Path | str | None, problem: str, fix: str):
        self.path = Path(path) if path is not None else None
        super().__init__(self.path, problem, fix)

"""The errors of volume files and of synthesis inputs; the base types live on the ground floor
(:mod:`core.errors`).

``TuringCTError`` is re-exported here for the modules that imported it from this place.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError, TuringCTError

__all__ = [
    "EmptyOrganError",
    "NoTumorError",
    "OrganTooSmallError",
    "SynthesisInputError",
    "TuringCTError",
    "VolumeError",
]


class VolumeError(InputError):
    """A volume or mask file that cannot be used as given: '<file>: <problem>; <fix>'."""

    placeholder = "<array>"

    def __init__(self, path: Path | str | None, problem: str, fix: str):
        self.path = Path(path) if path is not None else None
        super().__init__(self.path, problem, fix)


class SynthesisInputError(InputError):
    """Inputs that cannot be synthesized on: '<case>: <what is wrong>; <what to do>'.

    Built like every :class:`InputError`, ``(where, problem, fix)``; the synthesizers raise it
    before they know the file name, so ``where`` is then None (printed ``<array>``) and
    ``for_case`` names the case later. ``case`` is ``where``, kept for older readers.
    """

    placeholder = "<array>"

    @property
    def case(self) -> str | Path | None:
        return self.where

    def for_case(self, case: str | Path) -> SynthesisInputError:
        """The same error, naming the case (the synthesizers do not know file names)."""
        return type(self)(case, self.problem, self.fix)


class OrganTooSmallError(SynthesisInputError):
    """The organ mask cannot hold a tumor of the requested size."""


class EmptyOrganError(SynthesisInputError):
    """The organ mask (or the selected label) has no voxel."""


class NoTumorError(SynthesisInputError):
    """The method ran but left no tumor voxel (a learned mask decoder can do that, e.g. an
    undertrained TumorGen); such a volume is never written, since it would enter the catalog
    and a study as 'synthetic' while showing no tumor."""

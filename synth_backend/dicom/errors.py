"""The DICOM layer's error type: one line, '<file, UID or URL>: <problem>; <fix>'."""

from __future__ import annotations

from core.errors import InputError


class DicomError(InputError):
    """A DICOM file, series or PACS that cannot be used as given.

    Built like every :class:`InputError`, ``(where, problem, fix)``: ``where`` is the file,
    series or PACS address, so a PACS that cannot be reached names the ``--pacs`` the user gave.
    """

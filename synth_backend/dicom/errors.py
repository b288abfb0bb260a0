"""The DICOM layer's error type: one line, '<file, UID or URL>: <problem>; <fix>'."""

from __future__ import annotations

from core.errors import TuringCTError


class DicomError(TuringCTError, ValueError):
    """A DICOM file, series or PACS that cannot be used as given."""

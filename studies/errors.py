"""Error kinds of the study layer; all print as one line in the CLI (TuringCTError)."""

from __future__ import annotations

from core.errors import TuringCTError


class StudyError(TuringCTError, ValueError):
    """A study cannot be built or used as asked (message says what to change)."""


class SpecError(StudyError):
    """A study spec YAML is malformed: '<file>: <key> must be <constraint>, got <value>; <fix>'."""


class SelectionError(StudyError):
    """The catalog cannot satisfy the spec (too few matching cases)."""


class AuthError(TuringCTError):
    """Login or invite failure. The message is safe to show on the login page."""


class AccessDenied(TuringCTError, PermissionError):
    """The acting user may not read or change this object."""

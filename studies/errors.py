"""Error kinds of the study layer; all print as one line in the CLI (TuringCTError).

The input errors (:class:`StudyError` and its kinds) are :class:`~core.errors.InputError`:
built as ``(where, problem, fix)`` and printed ``'<where>: <problem>; <fix>'``, where
``where`` names the study, user, case, file or spec key the user gave. Login and access
failures are not about an input and stay plain :class:`TuringCTError`.
"""

from __future__ import annotations

from core.errors import InputError, TuringCTError


class StudyError(InputError):
    """A study cannot be built or used as asked: '<study|user|case|file>: <problem>; <fix>'."""


class SpecError(StudyError):
    """A study spec YAML is malformed: '<file>: <key> must be <constraint>, got <value>; <fix>'."""


class SelectionError(StudyError):
    """The catalog cannot satisfy the spec (too few matching cases): '<spec>: ...; <fix>'."""


class AuthError(TuringCTError):
    """Login or invite failure. The message is safe to show on the login page."""


class AccessDenied(TuringCTError, PermissionError):
    """The acting user may not read or change this object."""

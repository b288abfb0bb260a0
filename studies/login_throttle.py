"""Failed-login throttling per (username, source) with exponential back-off.

Why per pair and not per account: a per-account lock lets anyone lock a reader out of a study by
typing the reader's name five times. Here five wrong passwords for one name *from one source
address* lock only that pair; the reader at another address still logs in. Names that do not
exist are counted exactly like real ones, so neither the message nor its timing tells which
accounts exist. Each further lockout of the same pair lasts twice as long as the previous one
(5, 10, 20, 40, 60, 60 ... minutes); a successful login or a researcher's unlock clears it, and
rows without a failure for :data:`FORGET_AFTER` are deleted. Policy: docs/operations.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from db.models import LoginThrottle
from studies import clock

MAX_FAILURES = 5
BASE_LOCKOUT = timedelta(minutes=5)
MAX_LOCKOUT = timedelta(hours=1)
FORGET_AFTER = timedelta(days=1)
_MAX_NAME = 100
_MAX_SOURCE = 64


@dataclass(frozen=True)
class Lock:
    """An active lock: until when (aware UTC)."""

    until: datetime

    def message(self, now: datetime) -> str:
        minutes = max(1, math.ceil((self.until - now).total_seconds() / 60))
        return (
            f"Too many failed logins; try again in {minutes} minute"
            f"{'s' if minutes > 1 else ''} (after {self.until:%H:%M} UTC)."
        )


def lockout_duration(lockouts: int) -> timedelta:
    """How long the ``lockouts``-th lock (1-based) of a pair lasts: doubling, capped."""
    return min(BASE_LOCKOUT * (2 ** max(0, lockouts - 1)), MAX_LOCKOUT)


def _key(username: str, source: str) -> tuple[str, str]:
    return str(username)[:_MAX_NAME], str(source or "unknown")[:_MAX_SOURCE]


def _row(session: Session, username: str, source: str) -> LoginThrottle | None:
    name, src = _key(username, source)
    return session.scalar(
        select(LoginThrottle).where(LoginThrottle.username == name, LoginThrottle.source == src)
    )


def active_lock(
    session: Session, username: str, source: str, now: datetime | None = None
) -> Lock | None:
    """The lock on (username, source), if one is in force."""
    now = now or clock.now()
    row = _row(session, username, source)
    until = clock.as_utc(row.locked_until) if row is not None else None
    return Lock(until) if until is not None and until > now else None


def record_failure(
    session: Session, username: str, source: str, now: datetime | None = None
) -> Lock | None:
    """Count one wrong password for the pair; returns the lock it triggers, if any. Flushes only:
    the caller commits (so a later rollback cannot erase the count)."""
    now = now or clock.now()
    session.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at < now - FORGET_AFTER))
    row = _row(session, username, source)
    if row is None:
        name, src = _key(username, source)
        row = LoginThrottle(username=name, source=src, failures=0, lockouts=0)
        session.add(row)
    row.failures = (row.failures or 0) + 1
    row.last_failure_at = now
    lock = None
    if row.failures >= MAX_FAILURES:
        row.lockouts = (row.lockouts or 0) + 1
        row.failures = 0
        row.locked_until = now + lockout_duration(row.lockouts)
        lock = Lock(row.locked_until)
    session.flush()
    return lock


def clear(session: Session, username: str, source: str | None = None) -> int:
    """Forget the failures of ``username`` (from ``source``, or from every source); returns the
    number of pairs cleared."""
    name = str(username)[:_MAX_NAME]
    stmt = delete(LoginThrottle).where(LoginThrottle.username == name)
    if source is not None:
        stmt = stmt.where(LoginThrottle.source == _key(name, source)[1])
    # DML statements yield a CursorResult; Session.execute is only typed as Result
    return cast(CursorResult[Any], session.execute(stmt)).rowcount or 0


def locked_usernames(session: Session, now: datetime | None = None) -> set[str]:
    """Names with a lock in force from at least one source (for the staff account list)."""
    now = now or clock.now()
    return {
        r.username
        for r in session.scalars(
            select(LoginThrottle).where(LoginThrottle.locked_until.is_not(None))
        )
        if r.locked_until is not None and clock.as_utc(r.locked_until) > now
    }


__all__ = [
    "BASE_LOCKOUT",
    "MAX_FAILURES",
    "MAX_LOCKOUT",
    "Lock",
    "active_lock",
    "clear",
    "lockout_duration",
    "locked_usernames",
    "record_failure",
]

"""User accounts: argon2id password hashes, login rate limiting, single-use invites, roles.

Passwords are never logged or stored in clear; invite tokens are shown once and only their
SHA-256 is stored. Role checks (:func:`require_role`) run inside the service functions that
read or write data, so a page that forgets a check still cannot leak anything.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Invite, Role, User
from studies import clock
from studies.errors import AccessDenied, AuthError, StudyError

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 8
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,100}$")
WRONG_CREDENTIALS = "Wrong username or password."

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    # verified against when the username does not exist, so both paths cost one argon2 verify
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class LocalOperator:
    """The person at the command line (shell access to the database = full trust).

    Passed as the acting user by the CLI; it has the admin role but no database row, so it
    can never log in through the app.
    """

    username: str = "local-cli"
    role: Role = Role.ADMIN
    id: int | None = None


OPERATOR = LocalOperator()


def require_role(user: User | LocalOperator | None, *roles: Role | str) -> None:
    """Raise :class:`AccessDenied` unless ``user`` is active and has one of ``roles``."""
    if user is None or not getattr(user, "is_active", True):
        raise AccessDenied("Not logged in or account disabled; log in again.")
    allowed = {Role(r) for r in roles}
    if Role(user.role) not in allowed:
        raise AccessDenied(f"user {user.username!r} (role {Role(user.role).value}) may not do "
                           f"this; it needs role {' or '.join(sorted(r.value for r in allowed))}")


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise StudyError(f"password must have at least {MIN_PASSWORD_LENGTH} characters; "
                         "choose a longer one")


def create_user(session: Session, username: str, password: str | None = None,
                role: Role | str = Role.READER, years_experience: int | None = None) -> User:
    """Create an account. Without a password the user can only log in after redeeming an
    invite (:func:`create_invite`). Raises :class:`StudyError` for a taken or malformed name."""
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise StudyError(f"username must be 1-100 letters, digits or _ . @ -, got {username!r}; "
                         "choose another")
    try:
        role = Role(role)
    except ValueError:
        raise StudyError(f"role must be one of reader, researcher, admin, got {role!r}; "
                         "pick one of those") from None
    if years_experience is not None and (isinstance(years_experience, bool)
                                         or not isinstance(years_experience, int)
                                         or not 0 <= years_experience <= 80):
        raise StudyError(f"years of experience must be an integer in [0, 80], got "
                         f"{years_experience!r}; fix the number")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise StudyError(f"username {username!r} already exists; choose another or use the "
                         "existing account")
    user = User(username=username, role=role, years_experience=years_experience,
                is_active=True, failed_logins=0)
    if password is not None:
        _check_password(password)
        user.password_hash = _hasher.hash(password)
    session.add(user)
    session.flush()
    log.info("created user %s (role %s)", username, role.value)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Replace a user's password (hash only) and clear any lockout."""
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    session.flush()


def authenticate(session: Session, username: str, password: str) -> User:
    """Return the active user whose password matches, or raise :class:`AuthError`.

    After :data:`MAX_FAILURES` consecutive failures the account is locked for
    :data:`LOCKOUT`; the error then says when to retry. Failure counters are committed here
    (before raising), so a caller's rollback cannot erase them.
    """
    now = clock.now()
    user = session.scalar(select(User).where(User.username == str(username)))
    if user is None or user.password_hash is None:
        # same cost as a real check: no username oracle through timing
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), str(password))
        raise AuthError(WRONG_CREDENTIALS)
    locked = clock.as_utc(user.locked_until)
    if locked is not None and locked > now:
        minutes = max(1, int((locked - now).total_seconds() // 60 + 1))
        raise AuthError(f"Too many failed logins; try again in {minutes} minute"
                        f"{'s' if minutes > 1 else ''} (after {locked:%H:%M} UTC).")
    try:
        _hasher.verify(user.password_hash, str(password))
    except (VerificationError, InvalidHashError):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            log.warning("login locked for user %s after %d failures", username, MAX_FAILURES)
        session.commit()
        raise AuthError(WRONG_CREDENTIALS) from None
    if not user.is_active:
        raise AuthError("This account is disabled; ask the study administrator.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(str(password))
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_invite(session: Session, user: User, ttl_hours: float = 72) -> str:
    """Create a single-use invite for ``user`` valid ``ttl_hours``; returns the token (shown
    once: only its SHA-256 is stored)."""
    if not ttl_hours > 0:
        raise StudyError(f"invite lifetime must be > 0 hours, got {ttl_hours!r}; pass e.g. 72")
    token = secrets.token_urlsafe(32)
    session.add(Invite(token_sha256=_token_hash(token), user_id=user.id,
                       expires_at=clock.now() + timedelta(hours=ttl_hours)))
    session.flush()
    return token


def invite_link(token: str, base_url: str = "http://localhost:8501") -> str:
    """The URL a new reader opens to set a password."""
    return f"{base_url.rstrip('/')}/?invite={token}"


def redeem_invite(session: Session, token: str, password: str) -> User:
    """Set the password of the invite's user; the invite is consumed atomically (two tabs
    redeeming the same link: exactly one wins). Raises :class:`AuthError` when the link is
    unknown, used or expired."""
    _check_password(password)
    invite = session.scalar(select(Invite).where(Invite.token_sha256 == _token_hash(str(token))))
    if invite is None:
        raise AuthError("This invite link is not valid; ask the study administrator for a new one.")
    now = clock.now()
    if invite.used_at is not None:
        raise AuthError("This invite link was already used; log in with your password or ask "
                        "for a new link.")
    if clock.as_utc(invite.expires_at) <= now:
        raise AuthError("This invite link has expired; ask the study administrator for a new one.")
    # compare-and-set: only one concurrent redemption can flip used_at from NULL
    claimed = session.execute(update(Invite).where(Invite.id == invite.id,
                                                   Invite.used_at.is_(None))
                              .values(used_at=now)).rowcount
    if claimed != 1:
        raise AuthError("This invite link was already used; log in with your password.")
    user = session.get(User, invite.user_id)
    set_password(session, user, password)
    return user


def require_user(session: Session, username: str) -> User:
    """The user called ``username`` or a :class:`StudyError` saying how to create it."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise StudyError(f"no user {username!r}; create it with `turingct reader add --username "
                         f"{username} ...`")
    return user


@dataclass(frozen=True)
class UserSummary:
    """What staff pages list about an account (never the password hash)."""

    username: str
    role: str
    years_experience: int | None
    has_password: bool
    locked: bool


def list_users(session: Session, actor: User | LocalOperator) -> list[UserSummary]:
    """All accounts, for researchers and admins only."""
    require_role(actor, Role.RESEARCHER, Role.ADMIN)
    now = clock.now()
    return [UserSummary(u.username, u.role.value, u.years_experience, u.password_hash is not None,
                        bool(u.locked_until and clock.as_utc(u.locked_until) > now))
            for u in session.scalars(select(User).order_by(User.username))]


__all__ = ["OPERATOR", "AccessDenied", "AuthError", "LocalOperator", "UserSummary",
           "authenticate", "create_invite", "create_user", "invite_link", "list_users",
           "redeem_invite", "require_role", "require_user", "set_password"]

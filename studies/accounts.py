"""User accounts: argon2id password hashes, login rate limiting, single-use invites, roles.

Passwords are never logged or stored in clear; invite tokens are shown once and only their
SHA-256 is stored. Role checks (:func:`require_role`, :func:`require_can_manage`) run inside
the service functions that read or write data, so a page that forgets a check still cannot
leak anything. An invite sets a password, so it is a password reset: only a role strictly
above the account's may issue one (admins for staff, researchers or admins for readers).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from db.models import Invite, Role, User
from studies import clock, login_throttle
from studies.errors import AccessDenied, AuthError, StudyError

log = logging.getLogger(__name__)

MAX_FAILURES = login_throttle.MAX_FAILURES
LOCKOUT = login_throttle.BASE_LOCKOUT
MIN_PASSWORD_LENGTH = 8
PASSWORD_RULE = f"At least {MIN_PASSWORD_LENGTH} characters."
DEFAULT_INVITE_HOURS = 72
MAX_INVITE_HOURS = 24 * 30
INVITE_INVALID = (
    "This invite link is no longer valid (already used, replaced by a newer "
    "link, or expired); ask the study administrator for a new one."
)
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
        raise AccessDenied(
            f"user {user.username!r} (role {Role(user.role).value}) may not do "
            f"this; it needs role {' or '.join(sorted(r.value for r in allowed))}"
        )


ROLE_RANK = {Role.READER: 0, Role.RESEARCHER: 1, Role.ADMIN: 2}


class HasRole(Protocol):
    """Anything that names a role: a user row, :data:`OPERATOR`, the app's login record."""

    @property
    def role(self) -> Role | str: ...


def can_manage(actor: HasRole | None, target_role: Role | str) -> bool:
    """Whether ``actor`` may invite, reset, lock/unlock or deactivate an account of
    ``target_role``: only a role strictly above the target's, i.e. researchers and admins for
    readers, admins for researchers and admins (an admin is the top role, so admins manage
    each other). The command-line operator manages everyone."""
    if actor is None or not getattr(actor, "is_active", True):
        return False
    actor_role, target = Role(actor.role), Role(target_role)
    return actor_role is Role.ADMIN or ROLE_RANK[actor_role] > ROLE_RANK[target]


def require_can_manage(actor: User | LocalOperator | None, target: User) -> None:
    """Raise :class:`AccessDenied` unless ``actor`` may manage ``target`` (:func:`can_manage`)."""
    require_role(actor, Role.RESEARCHER, Role.ADMIN)
    assert actor is not None  # require_role raised otherwise
    if not can_manage(actor, target.role):
        raise AccessDenied(
            f"{Role(actor.role).value} accounts may not manage "
            f"{Role(target.role).value} accounts; ask an admin"
        )


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise StudyError(
            "new password",
            f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            "choose a longer one",
        )


def create_user(
    session: Session,
    username: str,
    password: str | None = None,
    role: Role | str = Role.READER,
    years_experience: int | None = None,
    *,
    actor: User | LocalOperator | None = None,
) -> User:
    """Create an account. Without a password the user can only log in after redeeming an
    invite (:func:`create_invite`). Raises :class:`StudyError` for a taken or malformed name.
    With ``actor`` (the app's pages pass it) the new role must be one ``actor`` may manage
    (:func:`can_manage`): researchers create readers, admins any role."""
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise StudyError(
            "new account",
            f"username must be 1-100 letters, digits or _ . @ -, got {username!r}",
            "choose another",
        )
    try:
        role = Role(role)
    except ValueError:
        raise StudyError(
            f"user {username!r}",
            f"role must be one of reader, researcher, admin, got {role!r}",
            "pick one of those",
        ) from None
    if actor is not None:
        require_role(actor, Role.RESEARCHER, Role.ADMIN)
        if not can_manage(actor, role):
            raise AccessDenied(
                f"{Role(actor.role).value} accounts may not create "
                f"{role.value} accounts; ask an admin"
            )
    if years_experience is not None and (
        isinstance(years_experience, bool)
        or not isinstance(years_experience, int)
        or not 0 <= years_experience <= 80
    ):
        raise StudyError(
            f"user {username!r}",
            f"years of experience must be an integer in [0, 80], got {years_experience!r}",
            "fix the number",
        )
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise StudyError(
            "new account",
            f"username {username!r} already exists",
            "choose another or use the existing account",
        )
    user = User(
        username=username,
        role=role,
        years_experience=years_experience,
        is_active=True,
        failed_logins=0,
    )
    if password is not None:
        _check_password(password)
        user.password_hash = _hasher.hash(password)
    session.add(user)
    session.flush()
    log.info("created user %s (role %s)", username, role.value)
    return user


def _store_password(session: Session, user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    login_throttle.clear(session, user.username)
    session.flush()


def set_password(
    session: Session, user: User, password: str, *, actor: User | LocalOperator
) -> None:
    """Reset ``user``'s password (hash only) and clear its lockouts; ``actor`` must outrank the
    account (:func:`require_can_manage`). Every login session of the account ends."""
    require_can_manage(actor, user)
    _store_password(session, user, password)
    _end_sessions(session, user)


def change_own_password(session: Session, user: User, current: str, new: str) -> None:
    """The logged-in ``user`` replaces their password; ``current`` must match. Raises
    :class:`AuthError` for a wrong current password, :class:`StudyError` for a short new one."""
    require_role(user, *Role)
    try:
        _hasher.verify(user.password_hash or _dummy_hash(), str(current))
    except (VerificationError, InvalidHashError):
        raise AuthError("The current password is wrong; type your present password.") from None
    _store_password(session, user, new)


def authenticate(session: Session, username: str, password: str, source: str = "unknown") -> User:
    """Return the active user whose password matches, or raise :class:`AuthError`.

    Failures are counted per (username, ``source``) in :mod:`studies.login_throttle` (names
    that do not exist too, so the answers never reveal which accounts exist); after
    :data:`MAX_FAILURES` the pair is locked with back-off and the error says when to retry.
    ``source`` is the client address (``app.state.client_source``). Failure counters are
    committed here (before raising), so a caller's rollback cannot erase them.
    """
    now = clock.now()
    username = str(username)
    lock = login_throttle.active_lock(session, username, source, now)
    if lock is not None:  # no password check at all while locked, known name or not
        raise AuthError(lock.message(now))
    user = session.scalar(select(User).where(User.username == username))
    try:
        if user is None or user.password_hash is None:
            # same cost as a real check: no username oracle through timing
            _hasher.verify(_dummy_hash(), str(password))
            raise VerificationError("no such account")
        _hasher.verify(user.password_hash, str(password))
    except (VerificationError, InvalidHashError):
        lock = login_throttle.record_failure(session, username, source, now)
        if lock is not None:
            log.warning(
                "login locked for username %r from %s until %s",
                username[:100],
                source,
                lock.until.isoformat(timespec="minutes"),
            )
        session.commit()
        raise AuthError(WRONG_CREDENTIALS) from None
    if not user.is_active:
        raise AuthError("This account is disabled; ask the study administrator.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(str(password))
    login_throttle.clear(session, username, source)
    session.flush()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_invite(
    session: Session,
    user: User,
    ttl_hours: float = DEFAULT_INVITE_HOURS,
    *,
    actor: User | LocalOperator,
) -> str:
    """Create a single-use invite for ``user`` valid ``ttl_hours``; returns the token (shown
    once: only its SHA-256 is stored). Redeeming it sets the account's password, so it is a
    password reset: ``actor`` must outrank the account (:func:`require_can_manage`). Earlier
    unused invites of the account are revoked (only the newest link works)."""
    require_can_manage(actor, user)
    if (
        isinstance(ttl_hours, bool)
        or not isinstance(ttl_hours, int | float)
        or not 0 < ttl_hours <= MAX_INVITE_HOURS
    ):
        raise StudyError(
            f"user {user.username!r}",
            f"invite lifetime must be > 0 and <= {MAX_INVITE_HOURS} hours, got {ttl_hours!r}",
            f"pass e.g. {DEFAULT_INVITE_HOURS}",
        )
    now = clock.now()
    revoke_invites(session, user, actor=actor, now=now)
    token = secrets.token_urlsafe(32)
    session.add(
        Invite(
            token_sha256=_token_hash(token),
            user_id=user.id,
            expires_at=now + timedelta(hours=ttl_hours),
        )
    )
    session.flush()
    log.info("invite for %s issued by %s (valid %s h)", user.username, actor.username, ttl_hours)
    return token


def revoke_invites(
    session: Session, user: User, *, actor: User | LocalOperator, now: datetime | None = None
) -> int:
    """Revoke every unused invite of ``user``; returns how many were open."""
    require_can_manage(actor, user)
    # DML statements yield a CursorResult; Session.execute is only typed as Result
    return (
        cast(
            CursorResult[Any],
            session.execute(
                update(Invite)
                .where(
                    Invite.user_id == user.id, Invite.used_at.is_(None), Invite.revoked_at.is_(None)
                )
                .values(revoked_at=now or clock.now())
            ),
        ).rowcount
        or 0
    )


def invite_link(token: str, base_url: str = "http://localhost:8501") -> str:
    """The URL a new reader opens to set a password."""
    return f"{base_url.rstrip('/')}/?invite={token}"


def redeem_invite(session: Session, token: str, password: str) -> User:
    """Set the password of the invite's user; the invite is consumed atomically (two tabs
    redeeming the same link: exactly one wins). Raises :class:`AuthError` with one message
    (:data:`INVITE_INVALID`) when the link is unknown, used, revoked, expired or its account
    disabled."""
    _check_password(password)
    invite = session.scalar(select(Invite).where(Invite.token_sha256 == _token_hash(str(token))))
    now = clock.now()
    if (
        invite is None
        or invite.used_at is not None
        or invite.revoked_at is not None
        or clock.as_utc(invite.expires_at) <= now
    ):
        raise AuthError(INVITE_INVALID)
    user = session.get(User, invite.user_id)
    if user is None or not user.is_active:
        raise AuthError(INVITE_INVALID)
    # compare-and-set: only one concurrent redemption can flip used_at from NULL
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(Invite)
            .where(Invite.id == invite.id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
            .values(used_at=now)
        ),
    ).rowcount
    if claimed != 1:
        raise AuthError(INVITE_INVALID)
    _store_password(session, user, password)
    _end_sessions(session, user)
    return user


def set_active(session: Session, user: User, active: bool, *, actor: User | LocalOperator) -> None:
    """Deactivate (or reactivate) an account; ``actor`` must outrank it. Deactivating revokes
    its open invites and ends its login sessions; its answers stay."""
    require_can_manage(actor, user)
    if actor.id is not None and actor.id == user.id and not active:
        raise StudyError(
            f"user {user.username!r}",
            "you cannot deactivate your own account",
            "ask another admin",
        )
    user.is_active = bool(active)
    if not active:
        revoke_invites(session, user, actor=actor)
        _end_sessions(session, user)
    session.flush()
    log.info(
        "account %s %s by %s",
        user.username,
        "reactivated" if active else "deactivated",
        actor.username,
    )


def unlock(session: Session, user: User, *, actor: User | LocalOperator) -> int:
    """Lift every login lock of ``user`` (from all sources); returns the pairs cleared."""
    require_can_manage(actor, user)
    user.failed_logins = 0
    user.locked_until = None
    n = login_throttle.clear(session, user.username)
    session.flush()
    return n


def _end_sessions(session: Session, user: User) -> None:
    from studies import sessions  # sessions imports this module

    sessions.end_all(session, user.id)


def require_user(session: Session, username: str) -> User:
    """The user called ``username`` or a :class:`StudyError` saying how to create it."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise StudyError(
            f"user {username!r}",
            f"no user {username!r}",
            f"create it with `turingct reader add --username {username} ...`",
        )
    return user


@dataclass(frozen=True)
class UserSummary:
    """What staff pages list about an account (never the password hash)."""

    username: str
    role: str
    years_experience: int | None
    has_password: bool
    locked: bool
    active: bool = True
    invite_expires_at: datetime | None = None  # an open (unused, unrevoked) invite


def list_users(session: Session, actor: User | LocalOperator) -> list[UserSummary]:
    """All accounts, for researchers and admins only."""
    require_role(actor, Role.RESEARCHER, Role.ADMIN)
    now = clock.now()
    locked = login_throttle.locked_usernames(session, now)
    open_invites: dict[int, datetime] = {}
    for inv in session.scalars(
        select(Invite).where(Invite.used_at.is_(None), Invite.revoked_at.is_(None))
    ):
        expires = clock.as_utc(inv.expires_at)
        if expires > now:
            open_invites[inv.user_id] = max(expires, open_invites.get(inv.user_id, expires))
    return [
        UserSummary(
            u.username,
            u.role.value,
            u.years_experience,
            u.password_hash is not None,
            u.username in locked,
            bool(u.is_active),
            open_invites.get(u.id),
        )
        for u in session.scalars(select(User).order_by(User.username))
    ]


def manageable_users(session: Session, actor: User | LocalOperator) -> list[UserSummary]:
    """The accounts ``actor`` may invite, reset, unlock or deactivate (:func:`can_manage`)."""
    return [u for u in list_users(session, actor) if can_manage(actor, u.role)]


__all__ = [
    "INVITE_INVALID",
    "OPERATOR",
    "PASSWORD_RULE",
    "AccessDenied",
    "AuthError",
    "HasRole",
    "LocalOperator",
    "UserSummary",
    "authenticate",
    "can_manage",
    "change_own_password",
    "create_invite",
    "create_user",
    "invite_link",
    "list_users",
    "manageable_users",
    "redeem_invite",
    "require_can_manage",
    "require_role",
    "require_user",
    "revoke_invites",
    "set_active",
    "set_password",
    "unlock",
]

"""`turingct reader add|invite|revoke|unlock|deactivate|reactivate`: accounts, passwords,
one-time invite links and the account actions of the Readers page (as the local operator)."""

from __future__ import annotations

import sys

from turingct.cli import add_db_option, group


def register(sub) -> None:
    reader = group(sub, "reader", "create reader accounts and invite links")
    add = reader.add_parser(
        "add",
        help="create an account (or reuse it) and assign it to a study",
        description="Without --password-stdin, prints a single-use invite link where the "
        "reader sets a password. Passwords are stored only as argon2 hashes.",
    )
    add.add_argument("--study", help="study name or id to assign the reader to")
    add.add_argument("--username", required=True)
    add.add_argument("--years", type=int, default=None, help="years of reading experience")
    add.add_argument("--role", choices=("reader", "researcher", "admin"), default="reader")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add.add_argument("--ttl-hours", type=float, default=72.0, help="invite validity (hours)")
    add.add_argument(
        "--base-url", default="http://localhost:8501", help="app URL used in the invite link"
    )
    add_db_option(add)
    add.set_defaults(func=_add)

    inv = reader.add_parser(
        "invite",
        help="print a fresh invite link for an existing user",
        description="The new link revokes the account's earlier unused ones.",
    )
    inv.add_argument("--username", required=True)
    inv.add_argument("--ttl-hours", type=float, default=72.0)
    inv.add_argument("--base-url", default="http://localhost:8501")
    add_db_option(inv)
    inv.set_defaults(func=_invite)

    for name, helptext in ACTIONS.items():
        action = reader.add_parser(name, help=helptext)
        action.add_argument("--username", required=True)
        add_db_option(action)
        action.set_defaults(func=_account_action, action=name)


ACTIONS = {
    "revoke": "revoke the account's open invite links",
    "unlock": "lift the account's login locks (from every address)",
    "deactivate": "disable the account: logged out everywhere, invites revoked, answers kept",
    "reactivate": "enable a deactivated account again",
}


def _account_action(args) -> int:
    from db.session import open_engine, session_scope
    from studies import accounts

    with session_scope(open_engine(args.db)) as session:
        user = accounts.require_user(session, args.username)
        if args.action == "revoke":
            n = accounts.revoke_invites(session, user, actor=accounts.OPERATOR)
            print(f"{args.username}: {n} open invite link(s) revoked")
        elif args.action == "unlock":
            n = accounts.unlock(session, user, actor=accounts.OPERATOR)
            print(f"{args.username}: login locks lifted ({n} address(es))")
        else:
            accounts.set_active(session, user, args.action == "reactivate", actor=accounts.OPERATOR)
            print(f"{args.username}: {args.action}d")
    return 0


def _add(args) -> int:
    from sqlalchemy import select

    from db.models import User
    from db.session import open_engine, session_scope
    from studies.accounts import OPERATOR, create_invite, create_user, invite_link, set_password
    from studies.admin import assign_reader

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    with session_scope(open_engine(args.db)) as session:
        user = session.scalar(select(User).where(User.username == args.username))
        created = user is None
        if user is None:
            user = create_user(
                session, args.username, password, role=args.role, years_experience=args.years
            )
        elif password is not None:
            set_password(session, user, password, actor=OPERATOR)
        n_cases = assign_reader(session, OPERATOR, args.study, user) if args.study else 0
        link = None
        if user.password_hash is None:
            link = invite_link(
                create_invite(session, user, args.ttl_hours, actor=OPERATOR), args.base_url
            )
    print(
        f"{'created' if created else 'existing'} {args.role if created else 'user'} "
        f"{args.username!r}"
        + (f"; assigned {n_cases} cases of study {args.study!r}" if args.study else "")
    )
    if link:
        print(f"invite link (single use, {args.ttl_hours:g} h): {link}")
    return 0


def _invite(args) -> int:
    from db.session import open_engine, session_scope
    from studies.accounts import OPERATOR, create_invite, invite_link, require_user

    with session_scope(open_engine(args.db)) as session:
        token = create_invite(
            session, require_user(session, args.username), args.ttl_hours, actor=OPERATOR
        )
    print(f"invite link (single use, {args.ttl_hours:g} h): {invite_link(token, args.base_url)}")
    return 0

"""`turingct db upgrade|backup`."""

from __future__ import annotations

from turingct.cli import add_db_option, group


def register(sub) -> None:
    db = group(sub, "db", "create, migrate and back up the study database")
    up = db.add_parser("upgrade", help="create or migrate the database to the latest schema")
    add_db_option(up)
    up.add_argument("--revision", default="head", help="target Alembic revision (default head)")
    up.set_defaults(func=_upgrade)

    bk = db.add_parser(
        "backup", help="consistent online copy of the database (SQLite backup API or pg_dump)"
    )
    add_db_option(bk)
    bk.add_argument("--out", help="backup file (default: next to the database / current dir)")
    bk.set_defaults(func=_backup)


def _upgrade(args) -> int:
    from db.session import upgrade

    url = upgrade(args.db, args.revision)
    print(f"database ready: {_redact(url)}")
    return 0


def _backup(args) -> int:
    from db.backup import backup

    print(f"backup written: {backup(args.db, args.out)}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

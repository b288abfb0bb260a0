"""`turingct db upgrade|backup`."""

from __future__ import annotations

from turingct.cli import add_db_option, group


def register(sub) -> None:
    db = group(sub, "db", "create, migrate and back up the study database")
    up = db.add_parser("upgrade", help="create or migrate the database to the latest schema")
    add_db_option(up)
    up.add_argument("--revision", default="head", help="target Alembic revision (default head)")
    up.set_defaults(func=_upgrade)


def _upgrade(args) -> int:
    from db.session import upgrade

    url = upgrade(args.db, args.revision)
    print(f"database ready: {_redact(url)}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

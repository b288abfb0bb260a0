"""`turingct serve [--port P] [--address A] [--db URL]`: start the reader/researcher web app."""

from __future__ import annotations

from turingct.cli import add_db_option


def register(sub) -> None:
    parser = sub.add_parser(
        "serve",
        help="start the web app (readers and researchers)",
        description="Start the Streamlit web app: reader login and case "
        "viewer, researcher pages, dashboards.",
    )
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--address",
        default="localhost",
        help="interface to listen on (default localhost; 0.0.0.0 for all)",
    )
    add_db_option(parser)
    parser.set_defaults(func=_serve)


def _serve(args) -> int:
    import os

    from app.server import streamlit_command
    from core.settings import database_url
    from db.session import open_engine

    url = database_url(args.db)
    open_engine(url).dispose()  # fail now, with the fix, if the schema is missing
    # a bad --port raises InputError, which the CLI prints as one line
    argv, env = streamlit_command(args.port, args.address, url)
    print(f"serving on http://{args.address}:{args.port}  (Ctrl+C to stop)", flush=True)
    # exec: the server *is* this process, so stopping `turingct serve` stops Streamlit.
    os.execve(argv[0], argv, env)
    return 0  # pragma: no cover - execve does not return

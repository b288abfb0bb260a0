"""The `turingct` command line. Each ``*_cmd`` module in this package registers subcommands.

A command module defines ``register(subparsers)`` and sets ``func`` on its parsers; it imports
heavy libraries (torch, monai, streamlit) inside the command functions so `--help` is instant.
The CLI only parses and prints: the work is done by functions in the library packages.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from core.errors import TuringCTError
from turingct import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turingct",
        description="Visual Turing tests and evaluation of synthetic tumors in CT.",
    )
    parser.add_argument("--version", action="version", version=f"turingct {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        # a group without a subcommand (e.g. `turingct db`) prints its own help
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        result = args.func(args)
    except TuringCTError as exc:
        # file names may not be UTF-8: escape rather than crash while reporting the error
        message = f"error: {exc}".encode("utf-8", "backslashreplace").decode("utf-8")
        print(" ".join(message.splitlines()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return int(result or 0)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL_OR_FILE",
        default=None,
        help="database URL or SQLite file (default: $TURINGCT_DATABASE_URL, else data/turingct.db)",
    )


def group(sub, name: str, help_text: str) -> argparse._SubParsersAction:
    """A command group such as `turingct data ...`; returns its subparsers."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(_parser=parser)
    return parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")


if __name__ == "__main__":
    sys.exit(main())

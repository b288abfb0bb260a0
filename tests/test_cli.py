"""The command line: every subcommand has --help, and building the parser imports no heavy
library (so `turingct --help` is instant)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from turingct.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommands(sub, (*prefix, name))


COMMANDS = sorted(set(_subcommands(build_parser())))


def test_expected_commands_exist():
    for command in [("db", "upgrade"), ("data", "import"), ("data", "list")]:
        assert command in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: turingct" in capsys.readouterr().out


def test_parser_imports_no_heavy_library():
    code = (
        "import sys; from turingct.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'monai', 'streamlit', 'sklearn', 'radiomics') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_schema_is_a_one_line_error(tmp_path, capsys):
    rc = main(["data", "list", "--db", str(tmp_path / "empty.db")])
    assert rc == 2
    assert "run `turingct db upgrade` first" in capsys.readouterr().err

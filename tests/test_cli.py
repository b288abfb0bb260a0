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


SYNTH = ["synth", "--organ", "liver", "--ct", "ct.nii.gz", "--organ-mask", "m.nii.gz"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [*SYNTH, "--method", "pixel2cancer", "--out", "o", "--vessel-mask", "v.nii.gz"],
            "--vessel-mask: is a handcrafted option, got --method pixel2cancer; "
            "drop it or use --method handcrafted --profile vtt",
        ),
        (
            [*SYNTH, "--method", "handcrafted", "--out", "o", "--n-tumors", "0"],
            "--n-tumors: must be >= 1, got 0; pass a positive count or leave it out",
        ),
        (
            [*SYNTH, "--method", "pixel2cancer", "--out", "o", "--profile", "vtt"],
            "--profile: is a handcrafted option, got --method pixel2cancer; "
            "drop --profile or use --method handcrafted",
        ),
        (
            ["train", "autoencoder", "--data", "d", "--out", "o", "--device", "tpu"],
            "--device: device must be auto, cpu or cuda[:N], got 'tpu'; "
            "pass --device auto, cpu or cuda[:N]",
        ),
    ],
)
def test_a_bad_option_is_an_input_error(argv, message, tmp_path, monkeypatch, capsys):
    from core.errors import InputError

    monkeypatch.chdir(tmp_path)  # nothing is read or written before the check refuses
    args = build_parser().parse_args(argv)
    with pytest.raises(InputError) as err:
        args.func(args)
    assert err.value.where and err.value.problem and err.value.fix
    assert str(err.value) == message
    assert main(argv) == 2 and capsys.readouterr().err.strip() == f"error: {message}"

"""The long-running commands agree on their options: the same names, the same `--quiet`, one-line errors."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from kit.commands.args import QUIET_HELP

LONG_RUNNING = ("train", "tune", "blend", "predict", "package")


def options(name: str) -> dict[str, object]:
    parser = importlib.import_module(f"kit.commands.{name}").build_parser()
    return {s: a for a in parser._actions for s in a.option_strings}  # argparse keeps no public list of them


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_command_takes_quiet(name):
    quiet = options(name)["--quiet"]
    assert quiet.const is True and quiet.default is False and quiet.help.startswith(QUIET_HELP)


@pytest.mark.parametrize("option", ["--comp", "--data-dir", "--runs", "--out", "--threads", "--seed", "--folds",
                                    "--set", "--model", "--run"])
def test_an_option_means_the_same_in_every_command_that_has_it(option):
    found = {name: options(name)[option] for name in LONG_RUNNING if option in options(name)}
    assert found
    dests = {a.dest for a in found.values()}
    kinds = {(type(a).__name__, a.type, a.required) for a in found.values()}
    assert len(dests) == 1 and len(kinds) == 1, found


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_an_unknown_competition_is_one_line_exit_2(name, capsys, tmp_path):
    main = importlib.import_module(f"kit.commands.{name}").main
    assert main(["--comp", "no-such-comp", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown competition 'no-such-comp'"), err


def test_commands_that_read_runs_start_without_torch():
    # torch and fastai took ~4.5 s to import: a blend, a submission or a tree's run need neither
    code = ("import sys; from kit import registry; registry.get('titanic'); import kit.ensemble.blend, kit.run, "
            "kit.package, kit.commands.submit, kit.commands.board, kit.families.trees; "
            "print(sorted(m for m in ('torch', 'fastai', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]", out.stdout

"""Argument groups shared by the commands, so `--comp`, `--data-dir`, `--seed`... mean the same everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.errors import KitError


def add_comp(p: argparse.ArgumentParser) -> None:
    """`--comp NAME` (required)."""
    p.add_argument("--comp", required=True, help="competition name (a folder under competitions/)")


def add_data_dir(p: argparse.ArgumentParser, what: str = "the competition files") -> None:
    """`--data-dir DIR` (default data/<comp>)."""
    p.add_argument("--data-dir", type=Path, default=None, help=f"folder with {what} (default data/<comp>)")


def add_cv(p: argparse.ArgumentParser) -> None:
    """`--folds K` and `--seed S`."""
    p.add_argument("--folds", type=int, default=None, help="number of CV folds (competition default)")
    p.add_argument("--seed", type=int, default=42, help="seed of the folds, the models and shuffling (default 42)")


def add_outputs(p: argparse.ArgumentParser) -> None:
    """`--out DIR` (submissions) and `--runs DIR` (run folders, studies, caches)."""
    p.add_argument("--out", type=Path, default=Path("submissions"), help="where submissions are written")
    p.add_argument("--runs", type=Path, default=Path("runs"),
                   help="where run folders, studies, OOF predictions and plots go")


def add_threads(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--threads N` (torch CPU threads)."""
    p.add_argument("--threads", type=int, default=None,
                   help=help or "torch CPU threads (default: the competition's declared threads, else torch's own)")


QUIET_HELP = "no progress bars or progress lines: results, warnings and errors only"


def add_quiet(p: argparse.ArgumentParser, extra: str = "") -> None:
    """`--quiet`, the same on every long-running command (`extra`: what else it leaves out there)."""
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP + (f" ({extra})" if extra else ""))


def add_overrides(p: argparse.ArgumentParser, help: str = "override a hyper-parameter (repeatable)") -> None:
    """`--set KEY=VALUE` (repeatable)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def data_dir(args: argparse.Namespace, comp_name: str) -> Path:
    """`--data-dir` or data/<comp>."""
    return args.data_dir if getattr(args, "data_dir", None) is not None else Path("data") / comp_name


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads when given (checked)."""
    if threads is None:
        return
    if threads < 1:
        raise KitError(f"--threads must be at least 1 (got {threads})")
    import torch

    torch.set_num_threads(threads)

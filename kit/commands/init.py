"""`kit init --comp NAME`: a competition folder written from Kaggle's files (and Kaggle's metric) in one command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from kit.commands import args as cargs


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit init`."""
    p = argparse.ArgumentParser(
        prog="kit init",
        description="Write competitions/NAME/__init__.py from Kaggle's train / test / sample submission files: id, "
                    "target, task, metric and column roles inferred, each with a comment saying why.")
    p.add_argument("--comp", required=True, help="the new competition's name (its folder's name)")
    cargs.add_data_dir(p, "Kaggle's files (train, test, sample submission)")
    p.add_argument("--slug", default=None, help="Kaggle's competition slug (default: the name)")
    p.add_argument("--target", nargs="+", default=None, metavar="COL",
                   help="the target column (default: the sample submission's other column)")
    p.add_argument("--metric", default=None,
                   help="kit's metric name (default: Kaggle's evaluation metric when credentials are there, else "
                        "the task's default)")
    p.add_argument("--task", default=None, help="binary | multiclass | multilabel | regression (default: inferred)")
    p.add_argument("--id", dest="id_col", default=None, help="the id column (default: the sample's first column)")
    p.add_argument("--group", default=None, metavar="COL", help="a column whose rows stay in one fold (GroupKFold)")
    p.add_argument("--to", type=Path, default=None, metavar="DIR",
                   help="write DIR/NAME/ instead of competitions/NAME/ (put DIR on KIT_COMPETITIONS_PATH)")
    p.add_argument("--force", action="store_true", help="overwrite an existing folder's __init__.py")
    return p


def _main(argv: Sequence[str] | None) -> int:
    a = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.errors import KitError
    from kit.scaffold import destination, scaffold, write
    data_dir = cargs.data_dir(a, a.comp)
    folder = destination(a.comp, a.to)
    existing = registry.location(a.comp)
    if existing is not None and existing.resolve() != folder.resolve():
        raise KitError(f"a competition {a.comp!r} already exists in {existing}: kit would never find a second one "
                       f"in {folder}; choose another --comp")
    result = scaffold(a.comp, data_dir, slug=a.slug, targets=a.target, metric=a.metric, task=a.task,
                      id_col=a.id_col, group=a.group)
    path = write(result, folder, force=a.force)
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {path}: {result.summary}")
    on_path = a.to is None or Path(a.to).resolve() in [Path(d).resolve() for d in
                                                         os.environ.get(registry.PATH_ENV, "").split(os.pathsep) if d]
    hint = "" if on_path else f"KIT_COMPETITIONS_PATH={a.to} "
    print(f"next: {hint}kit train --comp {a.comp} --data-dir {data_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit init`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

"""`kit download --comp NAME [--data-dir DIR] [--force] [--quiet]`: the competition's files from Kaggle."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kit.commands.args import add_comp, add_data_dir, add_quiet, data_dir


def main(argv: Sequence[str] | None = None) -> int:
    """`kit download`: one-line errors and exit codes through `kit.cli.run`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="kit download", description="Download a competition's files from Kaggle.")
    add_comp(p)
    add_data_dir(p, "the downloaded files")
    p.add_argument("--force", action="store_true", help="download even if the files are up to date")
    add_quiet(p)
    a = p.parse_args(argv)
    # after parsing: `--help` and usage errors need no library
    from kit import registry
    from kit.kaggle.download import download
    comp = registry.get(a.comp)
    got = download(comp, data_dir(a, comp.name), force=a.force, quiet=a.quiet)
    if got.up_to_date:
        print(f"{got.data_dir} is up to date with Kaggle's {got.slug} ({len(got.remote)} file(s)); nothing downloaded")
        return 0
    print(f"downloaded {got.slug}: {len(got.files)} file(s), {got.bytes / 1e6:.1f} MB into {got.data_dir}")
    if got.missing:
        print(f"warning: expected file(s) not in the download: {', '.join(got.missing)}", file=sys.stderr)
    return 0

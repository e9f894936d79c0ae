"""`kit package --comp NAME [--run RUN]`: a run's fold models, kit's wheel and an offline inference script as a
Kaggle dataset + kernel folder, for code competitions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kit.commands import args as cargs


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit package`."""
    p = argparse.ArgumentParser(prog="kit package", description=__doc__.splitlines()[0].split(": ", 1)[1])
    cargs.add_comp(p)
    p.add_argument("--run", default=None, help="run folder or its name under runs/<comp>/ (default: the newest "
                                               "that saved its models)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where run folders are (default runs)")
    p.add_argument("--out", type=Path, default=Path("packages"),
                   help="where packages go: <out>/<comp>/<run>/ (default packages)")
    p.add_argument("--owner", default=None,
                   help="Kaggle username in the dataset and kernel ids (default: the Kaggle credentials' user, "
                        "else the placeholder USERNAME)")
    cargs.add_quiet(p, "the package folder only")
    return p


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.cli import setup_logging
    from kit.package import build_package
    from kit.runs import resolve
    setup_logging(quiet=args.quiet)
    comp = registry.get(args.comp)
    run_dir = resolve(args.run, args.runs, comp.name)
    pkg = build_package(comp, run_dir, args.out, owner=args.owner)
    if not args.quiet:
        print(f"dataset {pkg.dataset_id}: {pkg.dataset_dir} ({_human(pkg.dataset_bytes)}; wheels: "
              f"{', '.join(pkg.wheels)})")
        print(f"kernel {pkg.kernel_id}: {pkg.kernel_dir} (offline script; owner from {pkg.owner_source})")
    print(pkg.path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit package`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

"""`kit board --comp NAME`: runs and submissions in one table, CV vs leaderboard, and the two to select."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kit.commands import args as cargs


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit board`."""
    p = argparse.ArgumentParser(
        prog="kit board",
        description="Every run and submission of a competition: CV, OOF, public and private scores (ledger), "
                    "board.png, and the two submissions to select.",
    )
    cargs.add_comp(p)
    cargs.add_data_dir(p, "the competition files (runs trained on another train file are marked)")
    cargs.add_outputs(p)
    p.add_argument("--offline", action="store_true", help="do not ask Kaggle for new scores; use the ledger as is")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.ensemble import board
    from kit.kaggle.ledger import LEDGER_NAME, Ledger
    comp = registry.get(args.comp)
    ledger = Ledger(args.out / LEDGER_NAME)
    board.check_ledger(ledger)
    status = board.refresh(comp, ledger, offline=args.offline)
    rows, notes = board.build(comp, args.runs, args.out, ledger, cargs.data_dir(args, comp.name))
    print(status)
    for note in notes:
        print(note)
    if not rows:
        print(f"no runs under {args.runs / comp.name}/ and no submissions in {ledger.path}; "
              f"run `kit train --comp {comp.name}` first")
        return 0
    metric = str(comp.metric)
    print(board.format_table(rows, metric))
    print(board.selection_line(rows, metric))
    png = board.plot(rows, metric, f"{comp.name}: CV vs public score", args.runs / comp.name / "board.png")
    print(f"board: {png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit board`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

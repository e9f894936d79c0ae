"""`kit submissions --comp NAME [--json]`: your Kaggle submissions with status and scores (ledger reconciled)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from kit.commands.args import add_comp


def main(argv: Sequence[str] | None = None) -> int:
    """`kit submissions`: one-line errors and exit codes through `kit.cli.run`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="kit submissions", description="List your Kaggle submissions and scores.")
    add_comp(p)
    p.add_argument("--root", type=Path, default=None,
                   help="submissions folder, holds ledger.jsonl (default submissions/)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = p.parse_args(argv)
    # after parsing: `--help` and usage errors need no library
    from kit import registry
    from kit.kaggle.client import Kaggle
    from kit.kaggle.ledger import LEDGER_NAME, Ledger
    from kit.kaggle.submissions import format_table, reconcile
    from kit.submission import SUBMISSIONS_DIR
    a.root = SUBMISSIONS_DIR if a.root is None else a.root
    comp = registry.get(a.comp)
    ledger = Ledger(a.root / LEDGER_NAME)
    kg = Kaggle(comp.slug)
    remote = reconcile(kg, comp, ledger)
    refs = ledger.refs(comp.name)
    if a.json:
        kernels = {e.ref: e.kernel for e in ledger.entries(comp.name) if e.ref is not None and e.kernel}
        print(json.dumps([{**s.as_dict(), "in_ledger": s.ref in refs, "kernel": kernels.get(s.ref)} for s in remote],
                         indent=2))
    elif not remote:
        print(f"no submissions to {comp.slug} yet")
    else:
        kernels = {e.ref: e.kernel for e in ledger.entries(comp.name) if e.ref is not None and e.kernel}
        print(format_table(remote, refs, kernels))
    return 0

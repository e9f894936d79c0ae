"""`kit submit --comp NAME [--file F | --kernel USER/SLUG [--version N]] [-m MSG] [--wait] [--force]`: validate a
submission file and send it to Kaggle, or submit a notebook version to a code competition.

Nothing is sent or recorded unless the file passes validation against the sample submission (exit 4), or the
kernel version is one Kaggle would take (a code competition, internet off, its run complete); every submission
goes through the ledger (`submissions/ledger.jsonl`, see `kit.kaggle.ledger`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from kit.commands.args import add_comp, add_data_dir, data_dir


def main(argv: Sequence[str] | None = None) -> int:
    """`kit submit`: one-line errors and exit codes through `kit.cli.run`."""
    from kit.cli import run

    return run(_main, argv)


def default_message(path: Path) -> str:
    """A leaderboard description from the file's sidecar record (CV score, folds, seed); "" without one."""
    try:
        rec = json.loads(path.with_suffix(".json").read_text())
        cv = rec["cv"]
        return (f"kit {path.stem}: cv {cv['metric']} {cv['mean']:.4f}±{cv['std']:.4f} "
                f"({cv['n_folds']} folds, seed {rec.get('seed')})")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def padded_value(path: Path) -> str | None:
    """`row N, column C: value ' 1'` for the first header or value with whitespace around it, else None."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header: list[str] = []
        for n, row in enumerate((r for r in csv.reader(f) if r), 1):
            header = header or row
            for j, v in enumerate(row):
                if v != v.strip():
                    col = header[j].strip() if j < len(header) else f"#{j + 1}"
                    return f"row {n}, column {col}: {'column name' if n == 1 else 'value'} {v!r}"
    return None


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="kit submit", description="Validate a submission file and submit it to Kaggle, "
                                                               "or submit a notebook version to a code competition.")
    add_comp(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--file", type=Path, default=None,
                      help="CSV to submit (default: the newest in submissions/<comp>/)")
    what.add_argument("--kernel", default=None, metavar="USER/SLUG",
                      help="code competitions: submit this notebook (its newest version, or --version)")
    p.add_argument("--version", type=int, default=None, help="with --kernel: the notebook version to submit")
    p.add_argument("-m", "--message", default=None, help="submission description (default: from the file's record)")
    p.add_argument("--wait", action="store_true", help="wait until Kaggle has scored it and print the score")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds --wait waits (default 1800)")
    p.add_argument("--force", action="store_true", help="submit even if this exact file was submitted before")
    add_data_dir(p, "the sample submission")
    p.add_argument("--root", type=Path, default=None,
                   help="submissions folder, holds ledger.jsonl (default submissions/)")
    a = p.parse_args(argv)
    # after parsing: `--help` and usage errors need no library
    from kit import registry
    from kit.errors import SubmissionError
    from kit.kaggle.client import Kaggle
    from kit.kaggle.ledger import LEDGER_NAME, Ledger
    from kit.kaggle.submissions import submit_file
    from kit.submission import SUBMISSIONS_DIR, check_file, latest_submission
    a.root = SUBMISSIONS_DIR if a.root is None else a.root
    comp = registry.get(a.comp)
    if a.version is not None and a.kernel is None:
        p.error("--version goes with --kernel USER/SLUG")
    if a.kernel is not None:
        return _submit_kernel(comp, a)
    if a.file is not None and not a.file.is_file():
        raise SubmissionError(f"--file {a.file}: file not found")
    path = a.file if a.file is not None else latest_submission(comp.name, a.root)
    check_file(comp, path, data_dir(a, comp.name))  # nothing is sent, nothing recorded, unless this passes
    padded = padded_value(path)
    if padded is not None:  # kit reads `892 ` as 892, Kaggle's scorer may not: refused rather than a lost slot
        raise SubmissionError(f"{path}: {padded} has whitespace around it, which Kaggle may fail to score; "
                              "remove it and submit again")
    message = a.message if a.message is not None else default_message(path)
    ledger = Ledger(a.root / LEDGER_NAME)
    kg = Kaggle(comp.slug)
    sent = submit_file(kg, comp, path, message, ledger, force=a.force)
    print(f"submitted {path} to {comp.slug} as ref {sent.ref} ({sent.remaining} submission(s) left today)",
          flush=True)
    return _await(kg, comp, ledger, sent, a)


def _await(kg, comp, ledger, sent, a: argparse.Namespace) -> int:
    from kit.kaggle.submissions import await_score

    if a.wait:
        s = await_score(kg, comp, ledger, sent.entry, a.timeout)
        private = f" (private {s.private_score:.5f})" if s.private_score is not None else ""
        print(f"public score: {s.public_score:.5f}{private}" if s.public_score is not None
              else "scored; Kaggle shows no public score", flush=True)
    return 0


def _submit_kernel(comp, a: argparse.Namespace) -> int:
    from kit.kaggle.client import Kaggle
    from kit.kaggle.kernels import KernelRef
    from kit.kaggle.ledger import LEDGER_NAME, Ledger
    from kit.kaggle.submissions import check_kernel_version, submit_kernel

    kg = Kaggle(comp.slug)
    ref = check_kernel_version(kg, comp, KernelRef.parse(a.kernel, a.version))
    message = a.message if a.message is not None else f"kit kernel {ref}"
    ledger = Ledger(a.root / LEDGER_NAME)
    sent = submit_kernel(kg, comp, ref, message, ledger, force=a.force)
    print(f"submitted kernel {ref} to {comp.slug} as ref {sent.ref} ({sent.remaining} submission(s) left today); "
          "Kaggle reruns the notebook on the test set, then scores it", flush=True)
    return _await(kg, comp, ledger, sent, a)

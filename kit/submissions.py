"""`kit submissions --comp NAME`: past Kaggle submissions with status and public score (≡ python -m kit.submissions).

Also the ledger's reconciliation with Kaggle's list and the wait for a score, shared with `kit submit`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from kit.kaggle_api import Kaggle, RemoteSubmission, StillPending, env_float
from kit.ledger import LEDGER_NAME, Ledger, parse_iso
from kit.spec import Competition


def reconcile(kg: Kaggle, comp: Competition, ledger: Ledger,
              remote: list[RemoteSubmission] | None = None) -> list[RemoteSubmission]:
    """Settle the ledger against Kaggle: adopt submissions a killed submit made, record new scores.

    A `pending` entry whose process is gone becomes `submitted` when Kaggle lists a submission of the same
    uploaded file name and message made after it (and not already in the ledger), else `abandoned`.
    Returns Kaggle's list (fetched unless given).
    """
    entries = ledger.entries(comp.name)
    if remote is None:
        remote = kg.submissions(comp.slug)
    known = ledger.refs(comp.name)
    by_ref = {s.ref: s for s in remote}
    for e in entries:
        if e.state == "pending":
            if e.process_alive():
                continue  # another `kit submit` is running right now
            since = parse_iso(e.time) - timedelta(minutes=2)
            hits = sorted((s for s in remote if s.ref not in known and s.file_name == e.uploaded_as
                           and s.description == e.message and (s.date is None or s.date >= since)),
                          key=lambda s: s.ref)
            if hits:
                ledger.submitted(e, hits[0].ref, reconciled=True)
                known.add(hits[0].ref)
                print(f"ledger: reconciled an interrupted submit of {e.file} with Kaggle submission {hits[0].ref}",
                      file=sys.stderr)
            else:
                ledger.abandoned(e, "interrupted before Kaggle created a submission")
                print(f"ledger: an interrupted submit of {e.file} never reached Kaggle; marked abandoned",
                      file=sys.stderr)
        if e.state == "submitted" and e.status in (None, "pending") and e.ref in by_ref:
            s = by_ref[e.ref]
            if s.status != "pending":
                ledger.scored(e, s.status, s.public_score, s.private_score, s.error)
    return remote


def wait_for_score(kg: Kaggle, comp: Competition, ref: int, timeout: float) -> RemoteSubmission:
    """Poll Kaggle until submission `ref` is scored (or errored); StillPending after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    interval = env_float("KIT_KAGGLE_POLL_S", 2.0)
    told = False
    while True:
        s = next((s for s in kg.submissions(comp.slug, pages=1) if s.ref == ref), None)
        if s is not None and s.status != "pending":
            return s
        if time.monotonic() + interval > deadline:
            raise StillPending(f"submission {ref} still not scored after {timeout:g}s; "
                               f"check later with `kit submissions --comp {comp.name}`")
        if not told:
            print(f"waiting for Kaggle to score submission {ref} ...", file=sys.stderr)
            told = True
        time.sleep(interval)
        interval = min(30.0, interval * 1.5)


def _fmt(v: float | None) -> str:
    return f"{v:.5f}" if v is not None else "-"


def format_table(remote: list[RemoteSubmission], ledger_refs: set[int]) -> str:
    """Kaggle's submissions as an aligned text table (`*`: recorded in the ledger)."""
    rows = [("ref", "date (UTC)", "status", "public", "private", "file", "message")]
    for s in remote:
        rows.append((f"{s.ref}{'*' if s.ref in ledger_refs else ''}",
                     s.date.strftime("%Y-%m-%d %H:%M:%S") if s.date else "-", s.status,
                     _fmt(s.public_score), _fmt(s.private_score), s.file_name,
                     s.error if s.status == "error" and s.error else s.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
                     for r in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """`kit submissions --comp NAME`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    from kit import registry

    p = argparse.ArgumentParser(prog="kit submissions", description="List your Kaggle submissions and scores.")
    p.add_argument("--comp", required=True, help="competition name (a folder under competitions/)")
    p.add_argument("--root", type=Path, default=Path("submissions"), help="submissions folder (holds ledger.jsonl)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = p.parse_args(argv)
    comp = registry.get(a.comp)
    ledger = Ledger(a.root / LEDGER_NAME)
    kg = Kaggle(comp.slug)
    remote = reconcile(kg, comp, ledger)
    refs = ledger.refs(comp.name)
    if a.json:
        print(json.dumps([{**s.as_dict(), "in_ledger": s.ref in refs} for s in remote], indent=2))
    elif not remote:
        print(f"no submissions to {comp.slug} yet")
    else:
        print(format_table(remote, refs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Submitting to Kaggle with the ledger: the upload itself, reconciliation of interrupted submits with Kaggle's
list, the wait for a score, and the listing table (the library behind `kit submit` and `kit submissions`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kit.io import sha256_file
from kit.kaggle.client import Kaggle, RemoteSubmission, polls
from kit.kaggle.errors import Duplicate, KaggleError, LimitReached, ScoringFailed, StillPending
from kit.kaggle.kernels import KernelRef
from kit.kaggle.ledger import Entry, Ledger, parse_iso

if TYPE_CHECKING:
    from kit.spec import Competition


def reconcile(kg: Kaggle, comp: Competition, ledger: Ledger,
              remote: list[RemoteSubmission] | None = None) -> list[RemoteSubmission]:
    """Settle the ledger against Kaggle: adopt submissions a killed submit made, record new scores.

    A `pending` entry whose process is gone becomes `submitted` when Kaggle lists a submission of the same
    uploaded file name and message made after it (and not already in the ledger), else `abandoned`.
    Returns Kaggle's list (fetched unless given).
    """
    with ledger.lock():  # two reconciling processes must not both adopt or abandon the same entry
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
    trouble: KaggleError | None = None
    for i, _ in enumerate(polls(timeout)):
        if i == 1:  # a second poll: say what we wait for
            print(f"waiting for Kaggle to score submission {ref} ...", file=sys.stderr)
        try:
            s = next((s for s in kg.submissions(comp.slug, pages=1) if s.ref == ref), None)
            trouble = None
        except KaggleError as e:
            if not e.retriable:
                raise
            # the submission is in; a 5xx / 429 / dropped connection while polling is no reason to give up
            if trouble is None:
                print(f"warning: polling for the score: {e}; still waiting", file=sys.stderr)
            s, trouble = None, e
        if s is not None and s.status != "pending":
            return s
    why = f" (last poll: {trouble})" if trouble is not None else ""
    raise StillPending(f"submission {ref} still not scored after {timeout:g}s{why}; "
                       f"check later with `kit submissions --comp {comp.name}`")


def _fmt(v: float | None) -> str:
    return f"{v:.5f}" if v is not None else "-"


def format_table(remote: list[RemoteSubmission], ledger_refs: set[int],
                 kernels: Mapping[int, str] | None = None) -> str:
    """Kaggle's submissions as an aligned text table (`*`: recorded in the ledger; a code submission's file column
    names its kernel version, from `kernels`: ref -> owner/slug/N)."""
    kernels = kernels or {}
    rows = [("ref", "date (UTC)", "status", "public", "private", "file", "message")]
    for s in remote:
        rows.append((f"{s.ref}{'*' if s.ref in ledger_refs else ''}",
                     s.date.strftime("%Y-%m-%d %H:%M:%S") if s.date else "-", s.status,
                     _fmt(s.public_score), _fmt(s.private_score),
                     f"kernel {kernels[s.ref]}" if s.ref in kernels else s.file_name,
                     s.error if s.status == "error" and s.error else s.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
                     for r in rows)


@dataclass
class Sent:
    """A submission Kaggle accepted: its ledger entry, Kaggle's ref, and how many more are allowed today."""

    entry: Entry
    ref: int
    remaining: int


def _send(kg: Kaggle, comp: Competition, ledger: Ledger, what: str, previous: Callable[[], Entry | None],
          begin: Callable[[], Entry], send: Callable[[], int], force: bool) -> Sent:
    """The ledger's protocol around one submission: reconcile, refuse a duplicate, check the limit, record, send."""
    # check-then-record under the ledger lock: a concurrent submit of the same thing finds this one's pending
    # entry (Duplicate) instead of sending it a second time
    with ledger.lock():
        if any(e.state == "pending" for e in ledger.entries(comp.name)):
            reconcile(kg, comp, ledger)
        prev = previous()
        if prev is not None and not force:
            if prev.state == "pending":
                raise Duplicate(f"{what} is being submitted to {comp.slug} right now by process {prev.pid} on "
                                f"{prev.host} (since {prev.time[:19]}Z); add --force to submit it again")
            score = f", public score {prev.public_score:.5f}" if prev.public_score is not None else ""
            raise Duplicate(f"{what} was already submitted to {comp.slug} on {prev.time[:19]}Z as ref {prev.ref}"
                            f"{score}; add --force to submit it again")
        limits = kg.limits(comp.slug)
        if limits["remaining"] <= 0:
            cap = "lifetime" if limits["limited_by_total"] else "daily"
            raise LimitReached(f"{cap} submission limit reached for {comp.slug}: {limits['today']} submitted "
                               "today, 0 remaining; try again after 00:00 UTC")
        entry = begin()
    try:
        ref = send()
    except KaggleError as e:
        if not e.retriable:  # refused outright: nothing was created; otherwise the next run reconciles
            ledger.failed(entry, str(e))
        raise
    ledger.submitted(entry, ref)
    return Sent(entry, ref, limits["remaining"] - 1)


def submit_file(kg: Kaggle, comp: Competition, path: Path, message: str, ledger: Ledger,
                force: bool = False) -> Sent:
    """Upload an already validated file, recorded in the ledger before and after.

    Pending entries are reconciled first; a file whose SHA-256 is already submitted raises Duplicate unless
    `force`; the daily limit is checked before anything is uploaded. A refusal is recorded as `failed`; a
    failure Kaggle may have acted on (5xx, network) stays `pending` for the next reconciliation.
    """
    path = Path(path)
    sha = sha256_file(path)
    return _send(kg, comp, ledger, f"{path} (sha256 {sha[:12]})", lambda: ledger.find_sha(comp.name, sha),
                 lambda: ledger.begin(comp.name, comp.slug, sha, path, message),
                 lambda: kg.submit(path, message, comp.slug, exclude=ledger.refs(comp.name)), force)


def check_kernel_version(kg: Kaggle, comp: Competition, ref: KernelRef) -> KernelRef:
    """`ref` at a definite version, checked submittable: a code competition, a version of a kernel on its data,
    internet off, run to completion. Each refusal is one line, before anything is spent."""
    from kit.kaggle import kernels

    code = kg.is_code_competition(comp.slug)
    if code is None:
        print(f"warning: Kaggle's competition list does not show {comp.slug}; cannot tell whether it takes "
              "notebooks (Kaggle will refuse the submission if not)", file=sys.stderr)
    if code is False:
        raise KaggleError(f"{comp.slug} is not a code competition: Kaggle takes a CSV file there, not a notebook; "
                          f"submit one with `kit submit --comp {comp.name} --file FILE`")
    meta = kernels.info(kg, ref)
    version = ref.version if ref.version is not None else int(meta.current_version_number)
    ref = ref.at(version)
    if comp.slug not in (meta.competition_data_sources or []):
        raise KaggleError(f"kernel {ref} does not use {comp.slug}'s data (its competition_sources: "
                          f"{', '.join(meta.competition_data_sources or []) or 'none'}); Kaggle would refuse it")
    if meta.enable_internet:
        raise KaggleError(f"kernel {ref} has internet enabled; code competitions take notebooks with internet off "
                          "(set enable_internet: false in kernel-metadata.json and push again)")
    st = kernels.status(kg, ref)
    if st.status != "complete":
        why = f": {st.failure}" if st.failure else ""
        raise KaggleError(f"kernel {ref} is {st.status}{why}; only a version that ran to completion can be "
                          f"submitted (see `kit kernel status {ref}` and `kit kernel output {ref}`)")
    return ref


def submit_kernel(kg: Kaggle, comp: Competition, ref: KernelRef, message: str, ledger: Ledger,
                  output_file: str = "submission.csv", force: bool = False) -> Sent:
    """Submit a checked kernel version (`check_kernel_version`) to a code competition, through the ledger: the
    same version is not submitted twice unless `force`."""
    if ref.version is None:
        raise ValueError("submit_kernel needs a version (check_kernel_version gives one)")
    since = datetime.now(UTC).replace(tzinfo=None)

    def send() -> int:
        def attempt() -> int:
            resp = kg.api.competition_submit_code(output_file, message, comp.slug, kernel=ref.name,
                                                  kernel_version=ref.version, quiet=True)
            if not resp.ref:
                raise KaggleError(f"Kaggle did not take kernel {ref}: {resp.message or 'no reference'}")
            return int(resp.ref)

        def already_there() -> int | None:
            found = kg.find_submission(comp.slug, output_file, message, since, ledger.refs(comp.name))
            return found.ref if found else None

        return kg.call("submitting the kernel", attempt, before_retry=already_there)

    return _send(kg, comp, ledger, f"kernel {ref}", lambda: ledger.find_kernel(comp.name, str(ref)),
                 lambda: ledger.begin(comp.name, comp.slug, "", Path(output_file), message, kernel=str(ref)),
                 send, force)


def await_score(kg: Kaggle, comp: Competition, ledger: Ledger, entry: Entry, timeout: float) -> RemoteSubmission:
    """Wait for Kaggle to score a submitted entry and record the result; ScoringFailed when Kaggle could not."""
    if entry.ref is None:
        raise ValueError("await_score needs a submitted entry (with a Kaggle ref)")
    s = wait_for_score(kg, comp, entry.ref, timeout)
    ledger.scored(entry, s.status, s.public_score, s.private_score, s.error)
    if s.status == "error":
        raise ScoringFailed(f"Kaggle could not score submission {entry.ref}: {s.error or 'no reason given'}")
    return s

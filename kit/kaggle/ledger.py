"""`submissions/ledger.jsonl`: every Kaggle submission's file SHA-256 (or, for a code competition, the kernel
version `owner/slug/N` it submitted), competition, message, time, Kaggle reference and, once known, score.

Append-only events (one JSON line each, single write + fsync), folded per submission id: `pending`
(written before the upload), then `submitted` (Kaggle's ref), `scored`, or `failed` / `abandoned`. A submit
killed after the upload leaves a `pending` entry that the next `kit submit` / `kit submissions` reconciles
against Kaggle's list. Never holds credentials.

Every read and write happens under an exclusive `fcntl.flock` on `ledger.jsonl.lock`, and `Ledger.lock()`
lets a caller hold it across check-then-record (two submits of one file: the second sees the first's
`pending` entry). A last line without its newline (a crash mid-write) is moved to `ledger.jsonl.torn`
(kept, reported once) before anything else is read or appended, so new entries always start a line.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kit import devices

LEDGER_NAME = "ledger.jsonl"
OPEN_STATES = ("pending", "submitted")  # a file in one of these counts as submitted (needs --force)


def now_iso() -> str:
    """UTC time as ISO text with a Z."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> _dt.datetime:
    """ISO text (as written by `now_iso`) -> naive UTC datetime."""
    return _dt.datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=None)


@dataclass
class Entry:
    """One submission, folded from its events."""

    id: str
    competition: str
    slug: str
    sha256: str
    file: str
    message: str
    time: str
    state: str = "pending"  # pending | submitted | failed | abandoned
    ref: int | None = None
    status: str | None = None  # Kaggle's: pending | complete | error
    public_score: float | None = None
    private_score: float | None = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    reconciled: bool = False
    kernel: str | None = None  # owner/slug/version of a code submission (sha256 is then empty)

    @property
    def uploaded_as(self) -> str:
        """The file name Kaggle records for it."""
        return Path(self.file).name

    def process_alive(self) -> bool:
        """Whether the process that wrote the pending entry still runs (same host only)."""
        if self.pid is None or self.host != socket.gethostname() or self.pid == os.getpid():
            return False  # unknown, elsewhere, or this very process (which is not submitting right now)
        return devices.process_alive(self.pid)


class Ledger:
    """The ledger file and the operations on it (each under the ledger's file lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._depth = 0  # re-entrancy: flock on a second descriptor of this process would wait for itself
        self._lock_fd: int | None = None

    @property
    def lock_path(self) -> Path:
        """The lock file beside the ledger (a separate file, so the ledger itself is only ever appended to)."""
        return self.path.with_name(self.path.name + ".lock")

    @property
    def torn_path(self) -> Path:
        """Where torn last lines are set aside."""
        return self.path.with_name(self.path.name + ".torn")

    @contextlib.contextmanager
    def lock(self) -> Iterator[Ledger]:
        """Hold the exclusive ledger lock (re-entrant within this object); the kernel drops it if we die."""
        # plain fcntl.flock rather than a lock library: released by the kernel when the process dies, so a
        # killed submit can never leave a stale lock behind, and no dependency is needed
        if self._depth == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._depth += 1
        try:
            if self._depth == 1:
                self._repair()
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0 and self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def _repair(self) -> None:
        """Move a last line that lacks its newline to the .torn file (or end it, when it is complete JSON)."""
        if not self.path.is_file():
            return
        with open(self.path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return
            back = min(size, 1 << 20)
            f.seek(size - back)
            chunk = f.read(back)
            cut = size - back + chunk.rfind(b"\n") + 1 if b"\n" in chunk else 0
            f.seek(cut)
            tail = f.read()
            try:
                json.loads(tail)
                complete = True
            except ValueError:
                complete = False
            if complete:  # a whole record whose newline never made it: keep it in place
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            else:
                with open(self.torn_path, "ab") as t:
                    t.write(tail + b"\n")
                    t.flush()
                    os.fsync(t.fileno())
                f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        if not complete:
            print(f"warning: {self.path}: its last line was cut off mid-write (a crash?); moved to "
                  f"{self.torn_path} and left out", file=sys.stderr)

    def _write(self, record: dict[str, Any]) -> None:
        """Append one JSON line (one write, newline-terminated, fsync'd) under the lock."""
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
        with self.lock():
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """All events in order (a line that is not JSON is skipped with a warning)."""
        with self.lock():
            if not self.path.is_file():
                return []
            text = self.path.read_text()
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                print(f"warning: {self.path}: line {i} is not JSON; ignored", file=sys.stderr)
        return out

    def entries(self, competition: str | None = None) -> list[Entry]:
        """Submissions folded from the events, oldest first (optionally of one competition)."""
        names = {f.name for f in fields(Entry)}
        by_id: dict[str, Entry] = {}
        for ev in self.events():
            kind, eid = ev.get("event"), ev.get("id")
            if kind == "pending":
                by_id[eid] = Entry(**{k: v for k, v in ev.items() if k in names})
                continue
            e = by_id.get(eid)
            if e is None:
                continue
            for k, v in ev.items():
                if k in names and k not in ("id", "time"):
                    setattr(e, k, v)
            if kind in ("submitted", "failed", "abandoned"):
                e.state = kind
        return [e for e in by_id.values() if competition is None or e.competition == competition]

    def _append(self, event: str, entry: Entry, **fields_: Any) -> None:
        self._write({"event": event, "id": entry.id, "time": now_iso(), **fields_})

    def begin(self, competition: str, slug: str, sha256: str, file: Path, message: str,
              kernel: str | None = None) -> Entry:
        """Record the intent to submit (before anything is uploaded or a kernel version is submitted)."""
        e = Entry(id=uuid.uuid4().hex, competition=competition, slug=slug, sha256=sha256, file=str(file),
                  message=message, time=now_iso(), pid=os.getpid(), host=socket.gethostname(), kernel=kernel)
        later = ("state", "ref", "status", "public_score", "private_score", "error", "reconciled")
        self._write({"event": "pending", **{f.name: getattr(e, f.name) for f in fields(Entry) if f.name not in later}})
        return e

    def submitted(self, entry: Entry, ref: int, reconciled: bool = False) -> None:
        """Kaggle accepted it as `ref` (the line repeats the file's details so it reads on its own)."""
        entry.ref, entry.state, entry.reconciled = int(ref), "submitted", reconciled
        self._append("submitted", entry, ref=int(ref), competition=entry.competition, sha256=entry.sha256,
                     message=entry.message, file=entry.file, reconciled=reconciled)

    def scored(self, entry: Entry, status: str, public: float | None, private: float | None,
               error: str | None = None) -> None:
        """Kaggle finished scoring it (complete with scores, or error with Kaggle's description)."""
        entry.status, entry.public_score, entry.private_score, entry.error = status, public, private, error
        self._append("scored", entry, ref=entry.ref, status=status, public_score=public, private_score=private,
                     error=error)

    def failed(self, entry: Entry, error: str) -> None:
        """Kaggle refused it before creating a submission."""
        entry.state, entry.error = "failed", error
        self._append("failed", entry, error=error)

    def abandoned(self, entry: Entry, why: str) -> None:
        """A pending entry Kaggle never received (its process died before the submission was created)."""
        entry.state, entry.error = "abandoned", why
        self._append("abandoned", entry, error=why)

    def find_sha(self, competition: str, sha256: str) -> Entry | None:
        """The newest open (pending or submitted) entry of this file for this competition."""
        hits = [e for e in self.entries(competition) if e.sha256 == sha256 and e.state in OPEN_STATES]
        return hits[-1] if hits else None

    def find_kernel(self, competition: str, kernel: str) -> Entry | None:
        """The newest open (pending or submitted) entry of this kernel version (`owner/slug/N`)."""
        hits = [e for e in self.entries(competition) if e.kernel == kernel and e.state in OPEN_STATES]
        return hits[-1] if hits else None

    def refs(self, competition: str) -> set[int]:
        """Kaggle refs already recorded for the competition."""
        return {e.ref for e in self.entries(competition) if e.ref is not None}

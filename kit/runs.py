"""The run folder, `runs/<comp>/<UTC stamp>/`: its layout, the one reader of its record, the SHA-256 of every file
it saved (kept in the record, checked before a file is used) and how it is written (staged in a hidden temp folder
beside it and renamed into place complete, so a crash never leaves a half-written run folder in view).

Layout: `record.json`, `folds.csv`, `oof.csv`, `test_probs.csv`, `decoding.json`, `models/fold-k.pt`, plots.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kit import devices
from kit.errors import DataError, KitError, OutputError
from kit.io import read_json_object, sha256_file, writing

RECORD = "record.json"
FOLDS = "folds.csv"
OOF = "oof.csv"
TEST_PROBS = "test_probs.csv"
DECODING = "decoding.json"
MODELS_DIR = "models"
HASHES = "files_sha256"  # the record's {relative path: SHA-256} of the files saved beside it
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")
_warned: set[str] = set()


def model_file(k: int) -> str:
    """Fold `k`'s model file, relative to the run folder."""
    return f"{MODELS_DIR}/fold-{k}.pt"


def read_record(run_dir: Path) -> dict[str, Any]:
    """A run's record.json as a dict; a DataError (exit 3) when it is missing, not a JSON object, or its CV
    summary or file hashes are malformed."""
    path = Path(run_dir) / RECORD
    if not path.is_file():
        raise DataError(f"{run_dir}: not a finished run (no {RECORD})")
    try:
        rec = read_json_object(path, "")
    except (KitError, OSError) as e:
        raise DataError(f"{path}: corrupt record ({str(e).removeprefix(f'{path}: ')})") from None
    cv = rec.get("cv")
    if cv is not None:
        numbers = all(cv.get(k) is None or _is_number(cv.get(k)) for k in ("mean", "std")) if isinstance(
            cv, dict) else False
        if not (numbers and isinstance(cv.get("fold_scores", []), list)):
            raise DataError(f"{path}: corrupt record (cv is not a CV summary: {cv!r:.80})")
    hashes = rec.get(HASHES)
    if hashes is not None and not (isinstance(hashes, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in hashes.items())):
        raise DataError(f"{path}: corrupt record ({HASHES} is not a map of file names to SHA-256 digests)")
    return rec


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def file_hashes(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every file a run folder holds besides its record and plots (relative paths, sorted)."""
    run_dir = Path(run_dir)
    files = [run_dir / f for f in (FOLDS, OOF, TEST_PROBS, DECODING)]
    files += sorted((run_dir / MODELS_DIR).glob("*.pt"))
    return {p.relative_to(run_dir).as_posix(): sha256_file(p) for p in files if p.is_file()}


def verify(run_dir: Path, record: dict[str, Any], files: Iterable[str]) -> None:
    """Check `files` (relative paths) against the record's SHA-256s: a DataError naming the first that is missing
    or differs; a record without hashes (written before kit kept them) is trusted, with one warning line."""
    run_dir = Path(run_dir)
    hashes = record.get(HASHES)
    if hashes is None:
        if str(run_dir) not in _warned:
            _warned.add(str(run_dir))
            print(f"warning: {run_dir / RECORD} has no file hashes (a run from before kit kept them): its files "
                  "are used unverified", file=sys.stderr)
        return
    for rel in files:
        path = run_dir / rel
        if not path.is_file():
            raise DataError(f"{path}: missing (the run folder is incomplete)")
        want = hashes.get(rel)
        if want is None:
            raise DataError(f"{path}: not among the files its record hashed; it does not belong to this run")
        got = sha256_file(path)
        if got != want:
            raise DataError(f"{path}: SHA-256 {got[:12]}… differs from the record's {want[:12]}…: the file was "
                            "changed or replaced since the run wrote it (another fold's or run's?); restore it or "
                            "train again")


def run_folders(runs_root: Path, comp_name: str) -> list[Path]:
    """Folders under runs/<comp>/ that hold a folds.csv (run folders), oldest first (names are UTC stamps);
    hidden ones (a run folder still being written) are left out."""
    base = Path(runs_root) / comp_name
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / FOLDS).is_file())


def latest_run(runs_root: Path, comp_name: str) -> Path:
    """The newest run folder of `comp_name` that saved its models."""
    root = Path(runs_root) / comp_name
    found = sorted((p for p in root.glob("*") if not p.name.startswith(".") and (p / RECORD).is_file()),
                   reverse=True)
    for d in found:
        if (d / MODELS_DIR).is_dir():
            return d
    raise KitError(f"no run with saved models in {root}/; run `kit train --comp {comp_name}` first")


def resolve(spec: str | Path | None, runs_root: Path, comp_name: str) -> Path:
    """A RUN argument -> its folder: a path to a run folder or a run's name under runs/<comp>/; None: the newest
    run that saved its models. A KitError (exit 2) for a name that is neither."""
    if spec is None:
        return latest_run(runs_root, comp_name)
    path = Path(spec)
    if path.is_dir():
        return path
    named = Path(runs_root) / comp_name / str(spec)
    if named.is_dir():
        return named
    raise KitError(f"run {str(spec)!r} not found: neither a folder nor a run under {Path(runs_root) / comp_name}/ "
                   f"(`kit train --comp {comp_name}` makes one)")


def sweep(parent: Path) -> None:
    """Remove run folders left half-written under `parent` by a process that is gone (killed, crashed)."""
    if not Path(parent).is_dir():
        return
    for p in Path(parent).iterdir():
        m = _STAGING.match(p.name)
        if m and p.is_dir() and int(m["pid"]) != os.getpid() and not devices.process_alive(int(m["pid"])):
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """A hidden temp folder beside `final` to write a run folder into: renamed to `final` when the block ends
    without error, removed on any error or interrupt. Folders a killed process left are swept first."""
    final = Path(final)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    with writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        sweep(final.parent)
        tmp.mkdir()
    try:
        try:
            yield tmp
        except OutputError as e:  # name the run folder, not its temp name
            raise OutputError(str(e).replace(str(tmp), str(final))) from None
        with writing(final):
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove(run_dir: Path) -> None:
    """Take a run folder out of view first (renamed hidden), then delete it: never seen half-deleted."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    gone = run_dir.parent / f".{run_dir.name}.{os.getpid()}.tmp"
    try:
        os.rename(run_dir, gone)
    except OSError:
        gone = run_dir
    shutil.rmtree(gone, ignore_errors=True)

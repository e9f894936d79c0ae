"""Submission files: validated against the sample submission, written atomically with a JSON sidecar."""

from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from kit.errors import SubmissionError
from kit.io import atomic_write_csv, atomic_write_json, read_csv, show
from kit.spec import Competition

SUBMISSIONS_DIR = Path("submissions")


def _as_frame(obj: pd.DataFrame | Path | str, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(obj, pd.DataFrame):
        return obj, what
    path = Path(obj)
    if path.suffix.lower() != ".csv":
        raise SubmissionError(f"{path}: not a CSV file")
    try:
        return read_csv(path, keep_default_na=False, na_values=[""]), str(path)
    except SubmissionError:
        raise
    except Exception as e:  # DataError and friends: same one line, submission exit code
        raise SubmissionError(str(e)) from None


def validate_submission(
    comp: Competition, submission: pd.DataFrame | Path | str, sample: pd.DataFrame | Path | str
) -> pd.DataFrame:
    """Check a submission against the sample: same columns, same ids in the same order, no NaN, allowed values."""
    df, name = _as_frame(submission, "submission")
    ref, _ = _as_frame(sample, "sample submission")
    if list(df.columns) != list(ref.columns):
        raise SubmissionError(f"{name}: columns {list(df.columns)} differ from the sample's {list(ref.columns)}")
    idc = comp.id_col
    if df[idc].duplicated().any():
        i = int(df[idc].duplicated().to_numpy().argmax())
        raise SubmissionError(f"{name}: row {i + 2}, column {idc}: duplicate id {show(df[idc].iloc[i])}")
    nan = df.isna()
    if nan.to_numpy().any():
        i, j = divmod(int(nan.to_numpy().argmax()), df.shape[1])
        raise SubmissionError(f"{name}: row {i + 2}, column {df.columns[j]}: missing value (NaN)")
    ids, ref_ids = df[idc].astype(str).tolist(), ref[idc].astype(str).tolist()
    if ids != ref_ids:
        extra, missing = set(ids) - set(ref_ids), set(ref_ids) - set(ids)
        if extra or missing:
            what = []
            if missing:
                what.append(f"{len(missing)} id(s) of the sample missing (e.g. {sorted(missing)[0]})")
            if extra:
                what.append(f"{len(extra)} id(s) not in the sample (e.g. {sorted(extra)[0]})")
            raise SubmissionError(f"{name}: id set differs from the sample: {'; '.join(what)}")
        i = next(i for i, (a, b) in enumerate(zip(ids, ref_ids, strict=True)) if a != b)
        raise SubmissionError(
            f"{name}: row {i + 2}, column {idc}: id {ids[i]} where the sample has {ref_ids[i]} (order differs)"
        )
    try:
        comp.check_submission_values(df)
    except SubmissionError as e:
        raise SubmissionError(f"{name}: {e}") from None
    return df


def git_commit() -> str | None:
    """The current git commit of the project (with '-dirty' when there are uncommitted changes)."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def utc_stamp(now: _dt.datetime | None = None) -> str:
    """UTC timestamp used for file names: 20261124T060512Z."""
    now = now or _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def write_submission(
    comp: Competition,
    df: pd.DataFrame,
    sample: pd.DataFrame | Path | str,
    record: dict[str, Any],
    root: Path = SUBMISSIONS_DIR,
) -> Path:
    """Validate and write `submissions/<comp>/<UTC timestamp>.csv` plus a `.json` sidecar; return the CSV path.

    Nothing is written when validation fails; both files are written via temp file + rename.
    """
    validate_submission(comp, df, sample)
    out_dir = Path(root) / comp.name
    path = out_dir / f"{utc_stamp()}.csv"
    while path.exists():  # two runs in the same millisecond
        path = out_dir / f"{utc_stamp()}.csv"
    sidecar = {"competition": comp.name, "slug": comp.slug, "file": path.name, **record}
    sidecar.setdefault("git_commit", git_commit())
    # sidecar first: a CSV never exists without its record
    atomic_write_json(path.with_suffix(".json"), sidecar)
    atomic_write_csv(path, df)
    return path


def latest_submission(comp_name: str, root: Path = SUBMISSIONS_DIR) -> Path:
    """The newest submission CSV written for `comp_name`."""
    files = sorted((Path(root) / comp_name).glob("*.csv"))
    if not files:
        raise SubmissionError(
            f"no submission in {Path(root) / comp_name}/; run `kit train --comp {comp_name}` first"
        )
    return files[-1]


# ---- `kit submit`: send a validated file to Kaggle (≡ python -m kit.submit) ------------------------------------


def _default_message(path: Path) -> str:
    """A leaderboard description from the file's sidecar record: CV score, folds, seed."""
    import json

    try:
        rec = json.loads(path.with_suffix(".json").read_text())
        cv = rec["cv"]
        return (f"kit {path.stem}: cv {cv['metric']} {cv['mean']:.4f}±{cv['std']:.4f} "
                f"({cv['n_folds']} folds, seed {rec.get('seed')})")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _submit_main(argv: list[str] | None = None) -> int:
    import argparse

    from kit import registry
    from kit.io import sha256_file
    from kit.kaggle_api import Duplicate, Kaggle, KaggleError, LimitReached, ScoringFailed
    from kit.ledger import LEDGER_NAME, Ledger
    from kit.submissions import reconcile, wait_for_score

    p = argparse.ArgumentParser(prog="kit submit", description="Validate a submission file and submit it to Kaggle.")
    p.add_argument("--comp", required=True, help="competition name (a folder under competitions/)")
    p.add_argument("--file", type=Path, default=None, help="CSV to submit (default: the newest in submissions/<comp>/)")
    p.add_argument("-m", "--message", default=None, help="submission description (default: from the file's record)")
    p.add_argument("--wait", action="store_true", help="wait until Kaggle has scored it and print the score")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds --wait waits (default 1800)")
    p.add_argument("--force", action="store_true", help="submit even if this exact file was submitted before")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the sample submission (data/<comp>)")
    p.add_argument("--root", type=Path, default=SUBMISSIONS_DIR, help="submissions folder (holds ledger.jsonl)")
    a = p.parse_args(argv)
    comp = registry.get(a.comp)
    if a.file is not None and not a.file.is_file():
        raise SubmissionError(f"--file {a.file}: file not found")
    path = a.file if a.file is not None else latest_submission(comp.name, a.root)
    data_dir = a.data_dir or Path("data") / comp.name
    sample = data_dir / comp.sample_file
    if not sample.is_file():
        raise SubmissionError(f"{sample}: sample submission not found (needed to check {path}); "
                              f"{comp.data_hint(data_dir)}")
    validate_submission(comp, path, sample)  # nothing is sent, nothing recorded, unless this passes
    message = a.message if a.message is not None else _default_message(path)
    sha = sha256_file(path)
    ledger = Ledger(a.root / LEDGER_NAME)
    kg = Kaggle(comp.slug)
    if any(e.state == "pending" for e in ledger.entries(comp.name)):
        reconcile(kg, comp, ledger)
    prev = ledger.find_sha(comp.name, sha)
    if prev is not None and not a.force:
        score = f", public score {prev.public_score:.5f}" if prev.public_score is not None else ""
        raise Duplicate(f"{path} (sha256 {sha[:12]}) was already submitted to {comp.slug} on {prev.time[:19]}Z "
                        f"as ref {prev.ref}{score}; add --force to submit it again")
    limits = kg.limits(comp.slug)
    if limits["remaining"] <= 0:
        cap = "lifetime" if limits["limited_by_total"] else "daily"
        raise LimitReached(f"{cap} submission limit reached for {comp.slug}: {limits['today']} submitted today, "
                           "0 remaining; try again after 00:00 UTC")
    entry = ledger.begin(comp.name, comp.slug, sha, path, message)
    try:
        ref = kg.submit(path, message, comp.slug, exclude=ledger.refs(comp.name))
    except KaggleError as e:
        if not e.retriable:  # refused outright: nothing was created; otherwise the next run reconciles
            ledger.failed(entry, str(e))
        raise
    ledger.submitted(entry, ref)
    print(f"submitted {path} to {comp.slug} as ref {ref} ({limits['remaining'] - 1} submission(s) left today)",
          flush=True)
    if a.wait:
        s = wait_for_score(kg, comp, ref, a.timeout)
        ledger.scored(entry, s.status, s.public_score, s.private_score, s.error)
        if s.status == "error":
            raise ScoringFailed(f"Kaggle could not score submission {ref}: {s.error or 'no reason given'}")
        private = f" (private {s.private_score:.5f})" if s.private_score is not None else ""
        print(f"public score: {s.public_score:.5f}{private}" if s.public_score is not None
              else "scored; Kaggle shows no public score", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`kit submit --comp NAME [--file F] [-m MSG] [--wait] [--force]`."""
    from kit.cli import run

    return run(_submit_main, argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())

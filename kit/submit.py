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

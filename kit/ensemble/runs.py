"""Run folders as the blender and the board read them: `folds.csv`, `oof.csv`, `test_probs.csv`, `record.json`.

Every check fails in one line naming the run and what is wrong (exit 3: the inputs are bad data), so a blend
never mixes runs of different competitions, folds or rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit.errors import DataError, KitError

RUN_FILES = ("folds.csv", "oof.csv", "test_probs.csv", "record.json")
DEFAULT_MODEL = "mlp"  # runs recorded before model families existed


@dataclass
class Run:
    """One finished run: its record, fold of every training row, OOF and test probabilities."""

    path: Path
    record: dict[str, Any]
    ids: np.ndarray  # training row ids (str), in folds.csv's order
    folds: np.ndarray
    oof: np.ndarray  # (n,) for one output, else (n, k)
    test_ids: np.ndarray
    test: np.ndarray
    columns: list[str] = field(default_factory=list)  # probability columns of oof.csv / test_probs.csv

    @property
    def name(self) -> str:
        """The run folder's name (its UTC timestamp)."""
        return self.path.name

    @property
    def competition(self) -> str:
        """The competition: the record's, else the folder above the run (runs/<comp>/<stamp>)."""
        return str(self.record.get("competition") or self.path.parent.name)

    @property
    def model(self) -> str:
        """The model family (`blend:<method>` for blends)."""
        if self.record.get("kind") == "blend":
            return f"blend:{self.record.get('method')}"
        return str(self.record.get("model", DEFAULT_MODEL))

    @property
    def cv(self) -> dict[str, Any]:
        """The record's CV summary (metric, fold_scores, mean, std)."""
        cv = self.record.get("cv")
        return cv if isinstance(cv, dict) else {}


def read_record(run_dir: Path) -> dict[str, Any]:
    """A run's record.json as a dict; DataError when it is missing or not a JSON object."""
    path = Path(run_dir) / "record.json"
    if not path.is_file():
        raise DataError(f"{run_dir}: not a finished run (no record.json)")
    try:
        rec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: corrupt record ({str(e).splitlines()[0]})") from None
    if not isinstance(rec, dict):
        raise DataError(f"{path}: corrupt record (not a JSON object)")
    cv = rec.get("cv")
    if cv is not None and not (isinstance(cv, dict) and isinstance(cv.get("fold_scores", []), list)):
        raise DataError(f"{path}: corrupt record (cv is not a CV summary)")
    return rec


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path.parent}: missing {path.name} (not a complete run folder)")
    try:
        df = pd.read_csv(path, dtype={0: str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: cannot parse CSV ({str(e).splitlines()[0]})") from None
    if df.empty or df.shape[1] < 2:
        raise DataError(f"{path}: expected an id column and at least one more column, with rows")
    return df


def _probs(df: pd.DataFrame, path: Path) -> np.ndarray:
    try:
        arr = df.iloc[:, 1:].to_numpy(dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: non-numeric probabilities") from None
    if not np.isfinite(arr).all():
        i = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise DataError(f"{path}: row {i + 2}: missing or non-finite value")
    return arr[:, 0] if arr.shape[1] == 1 else arr


def read_run(run_dir: Path) -> Run:
    """Read and check one run folder (all four files present and readable, rows consistent)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    if missing:
        raise DataError(f"{run_dir}: missing {', '.join(missing)} (not a complete run folder)")
    record = read_record(run_dir)
    folds_df = _read_csv(run_dir / "folds.csv")
    oof_df = _read_csv(run_dir / "oof.csv")
    test_df = _read_csv(run_dir / "test_probs.csv")
    try:
        folds = folds_df["fold"].to_numpy(dtype=np.int64)
    except (KeyError, ValueError):
        raise DataError(f"{run_dir / 'folds.csv'}: expected an integer column 'fold'") from None
    ids = folds_df.iloc[:, 0].astype(str).to_numpy()
    if oof_df.iloc[:, 0].astype(str).tolist() != ids.tolist():
        raise DataError(f"{run_dir}: oof.csv's rows differ from folds.csv's")
    if list(oof_df.columns[1:]) != list(test_df.columns[1:]):
        raise DataError(f"{run_dir}: oof.csv and test_probs.csv have different columns")
    return Run(path=run_dir, record=record, ids=ids, folds=folds, oof=_probs(oof_df, run_dir / "oof.csv"),
               test_ids=test_df.iloc[:, 0].astype(str).to_numpy(), test=_probs(test_df, run_dir / "test_probs.csv"),
               columns=[str(c) for c in oof_df.columns[1:]])


def run_folders(runs_root: Path, comp_name: str) -> list[Path]:
    """Folders under runs/<comp>/ that hold a folds.csv (run folders), oldest first (names are UTC stamps)."""
    base = Path(runs_root) / comp_name
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / "folds.csv").is_file())


def _folds_bytes(run_dir: Path) -> bytes:
    return (run_dir / "folds.csv").read_bytes()


def is_blend(run_dir: Path) -> bool:
    """Whether a run folder holds a blend (its record says kind 'blend')."""
    try:
        return read_record(run_dir).get("kind") == "blend"
    except DataError:
        return False


def default_runs(runs_root: Path, comp_name: str) -> list[Path]:
    """Every trained run (blends excluded: they would count their inputs twice) under runs/<comp>/ whose
    folds.csv equals the newest trained run's."""
    folders = [p for p in run_folders(runs_root, comp_name) if (p / "record.json").is_file() and not is_blend(p)]
    if not folders:
        raise KitError(f"no finished run under {Path(runs_root) / comp_name}/; run `kit train --comp {comp_name}` "
                       "first (twice, with different models or parameters, to have something to blend)")
    newest = _folds_bytes(folders[-1])
    return [p for p in folders if _folds_bytes(p) == newest]


def resolve(spec: str, runs_root: Path, comp_name: str) -> Path:
    """A RUN argument -> its folder: a path to a run folder, or a run's name under runs/<comp>/."""
    path = Path(spec)
    if path.is_dir():
        return path
    named = Path(runs_root) / comp_name / spec
    if named.is_dir():
        return named
    raise KitError(f"run {spec!r}: neither a folder nor a run under {Path(runs_root) / comp_name}/")


def check_compatible(runs: list[Run], comp_name: str, task: str, metric: str) -> None:
    """Refuse a set of runs that cannot be blended: fewer than two, another competition, task or metric, other
    rows, other folds or other probability columns than the first run's."""
    if len(runs) < 2:
        what = f"only {runs[0].path}" if runs else "none"
        raise KitError(f"a blend needs at least two runs ({what}); train another model on the same folds "
                       "(same --seed and --folds)")
    names = [str(r.path) for r in runs]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise KitError(f"run {dup} is given twice")
    first = runs[0]
    for r in runs:
        if r.competition != comp_name:
            raise DataError(f"{r.path}: a run of competition {r.competition!r}, not {comp_name!r}")
        for key, want in (("task", task), ("metric", metric)):
            got = r.record.get(key)
            if got is not None and str(got) != want:
                raise DataError(f"{r.path}: a run with {key} {got!r}, but {comp_name} has {want!r}")
    for r in runs[1:]:
        if r.ids.tolist() != first.ids.tolist():
            raise DataError(f"{r.path}: different training rows than {first.path} ({len(r.ids)} vs "
                            f"{len(first.ids)} rows, or other ids/order)")
        if not np.array_equal(r.folds, first.folds):
            raise DataError(f"{r.path}: different folds than {first.path} (train both with the same --seed and "
                            "--folds)")
        if r.test_ids.tolist() != first.test_ids.tolist():
            raise DataError(f"{r.path}: different test rows than {first.path}")
        if r.columns != first.columns:
            raise DataError(f"{r.path}: probability columns {r.columns} differ from {first.path}'s {first.columns}")

"""Run folders as the blender reads them: `folds.csv`, `oof.csv`, `test_probs.csv`, `record.json` (layout and
record: kit.runs).

Every check fails in one line naming the run and what is wrong (exit 3: the inputs are bad data), so a blend
never mixes runs of different competitions, folds or rows, nor uses a file changed since its run wrote it or
probabilities outside [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit.errors import DataError, KitError
from kit.runs import FOLDS, OOF, RECORD, TEST_PROBS, read_record, run_folders, verify
from kit.submission import PROB_SUM_TOL

RUN_FILES = (FOLDS, OOF, TEST_PROBS, RECORD)
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


def _probs(df: pd.DataFrame, path: Path, task: str | None) -> np.ndarray:
    """The values of a run's prediction file, checked: finite; for a classification task probabilities in
    [0, 1], rows summing to 1 for multiclass (row numbers count the header as 1)."""
    try:
        arr = df.iloc[:, 1:].to_numpy(dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: non-numeric probabilities") from None
    if not np.isfinite(arr).all():
        i = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise DataError(f"{path}: row {i + 2}: missing or non-finite value")
    if task in ("binary", "multiclass", "multilabel"):
        bad = (arr < 0) | (arr > 1)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise DataError(f"{path}: row {i + 2}, column {df.columns[j + 1]}: {arr[i, j]:g} is not a probability "
                            "in [0, 1]")
        if task == "multiclass" and arr.shape[1] > 1:
            off = np.abs(arr.sum(axis=1) - 1) > PROB_SUM_TOL
            if off.any():
                i = int(off.argmax())
                raise DataError(f"{path}: row {i + 2}: class probabilities sum to {arr[i].sum():.6f}, not 1")
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
    verify(run_dir, record, (FOLDS, OOF, TEST_PROBS))
    folds_df = _read_csv(run_dir / FOLDS)
    oof_df = _read_csv(run_dir / OOF)
    test_df = _read_csv(run_dir / TEST_PROBS)
    try:
        folds = folds_df["fold"].to_numpy(dtype=np.int64)
    except (KeyError, ValueError):
        raise DataError(f"{run_dir / FOLDS}: expected an integer column 'fold'") from None
    ids = folds_df.iloc[:, 0].astype(str).to_numpy()
    if oof_df.iloc[:, 0].astype(str).tolist() != ids.tolist():
        raise DataError(f"{run_dir}: {OOF}'s rows differ from {FOLDS}'s")
    if list(oof_df.columns[1:]) != list(test_df.columns[1:]):
        raise DataError(f"{run_dir}: {OOF} and {TEST_PROBS} have different columns")
    task = record.get("task") if isinstance(record.get("task"), str) else None
    return Run(path=run_dir, record=record, ids=ids, folds=folds, oof=_probs(oof_df, run_dir / OOF, task),
               test_ids=test_df.iloc[:, 0].astype(str).to_numpy(), test=_probs(test_df, run_dir / TEST_PROBS, task),
               columns=[str(c) for c in oof_df.columns[1:]])


def _folds_bytes(run_dir: Path) -> bytes:
    return (run_dir / FOLDS).read_bytes()


def is_blend(run_dir: Path) -> bool:
    """Whether a run folder holds a blend (its record says kind 'blend')."""
    try:
        return read_record(run_dir).get("kind") == "blend"
    except DataError:
        return False


def default_runs(runs_root: Path, comp_name: str) -> list[Path]:
    """Every trained run (blends excluded: they would count their inputs twice) under runs/<comp>/ whose
    folds.csv equals the newest trained run's."""
    folders = [p for p in run_folders(runs_root, comp_name) if (p / RECORD).is_file() and not is_blend(p)]
    if not folders:
        raise KitError(f"no finished run under {Path(runs_root) / comp_name}/; run `kit train --comp {comp_name}` "
                       "first (twice, with different models or parameters, to have something to blend)")
    newest = _folds_bytes(folders[-1])
    return [p for p in folders if _folds_bytes(p) == newest]


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

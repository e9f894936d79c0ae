"""Submission files: their format (label or probability submission, from the sample file), validation against
the sample submission, and atomic writing with a JSON record beside each file.

A label submission has the id and the target column (class labels, space-separated tags, or numbers); a
probability submission has one column per class (log-loss style) or, for binary tasks, the positive class's
probability in the target column. Which one a competition takes follows its sample file and its metric.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from kit.errors import DataError, SubmissionError
from kit.io import atomic_write_csv, atomic_write_json, read_csv, show


class Competition(Protocol):
    """What this module needs of a competition (kit.spec.Competition has it; kept structural, so the contract
    imports this module and not the other way round)."""

    name: str
    slug: str
    id_col: str
    target_col: str
    sample_file: str
    task: Any
    metric: Any

    def allowed_labels(self, classes: Sequence | None) -> Sequence | None: ...
    def submission_format(self, sample_columns: Sequence[str], classes: Sequence | None,
                          where: str = ...) -> SubmissionFormat: ...
    def read_classes(self, data_dir: Path) -> list | None: ...
    def data_hint(self, data_dir: Path) -> str: ...

SUBMISSIONS_DIR = Path("submissions")
PROB_SUM_TOL = 1e-3


def norm_label(v: Any) -> str:
    """A label as text, numbers without a spurious '.0' (1, 1.0 and '1' are the same label)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class SubmissionFormat:
    """What a submission's prediction columns hold: labels, numbers, 0/1 indicators or probabilities."""

    kind: Literal["labels", "values", "indicators", "probs"]
    id_col: str
    columns: tuple[str, ...]  # prediction columns, in the sample's order
    multilabel: bool = False
    single_label: bool = False  # one class per row: probabilities sum to 1
    classes: tuple | None = None  # the competition's classes (labels, indicators, wide probabilities)
    allowed: frozenset[str] | None = None  # normalised labels allowed in a label submission

    @classmethod
    def infer(cls, comp: Competition, sample_columns: Sequence[str], classes: Sequence | None,
              where: str = "sample submission") -> SubmissionFormat:
        """The format a sample file with `sample_columns` asks for, given the competition's task and metric."""
        task, metric = comp.task, comp.metric
        if comp.id_col not in sample_columns:
            raise DataError(f"{where}: no id column {comp.id_col!r} (columns {list(sample_columns)})")
        cols = tuple(c for c in sample_columns if c != comp.id_col)
        common = {"id_col": comp.id_col, "columns": cols, "multilabel": task.multi_label,
                  "single_label": task.single_label,
                  "classes": tuple(classes) if classes is not None else None}
        names = {str(c) for c in classes} if classes is not None else set()
        if cols == (comp.target_col,):
            if not task.classification:
                return cls("values", **common)
            if metric.takes_probs:
                if not task.positive_probability:
                    raise DataError(f"{where}: {metric} needs a probability column per class, but the sample has "
                                    f"only {comp.target_col!r}")
                return cls("probs", **common)
            allowed = comp.allowed_labels(classes)
            return cls("labels", **common, allowed=frozenset(norm_label(c) for c in allowed) if allowed else None)
        if classes is not None and len(cols) == len(names) and set(cols) == names:
            return cls("probs" if metric.takes_probs else "indicators", **common)
        if len(cols) > 1 and comp.target_col not in cols and names & set(cols):
            # a wide sample whose columns are nearly the classes: name the one that does not match
            missing = [c for c in classes if str(c) not in set(cols)]
            if missing:
                raise DataError(f"{where}: no column {str(missing[0])!r} for the training labels' class "
                                f"{show(missing[0])} ({len(missing)} class(es) missing of {len(names)})")
            extra = [c for c in cols if c not in names]
            raise DataError(f"{where}: column {extra[0]!r} is not a class of the training labels "
                            f"({len(extra)} such column(s))")
        expected = f"[{comp.id_col}, {comp.target_col}]"
        wide = f"[{comp.id_col}, " + ", ".join(sorted(names)) + "]" if names else "one column per class"
        raise DataError(f"{where}: columns {list(sample_columns)} match neither a label submission {expected} nor a "
                        f"probability submission {wide}")

    # ---- writing ------------------------------------------------------------------------------------
    def frame(self, ids: np.ndarray, decoded: np.ndarray, task: Any) -> pd.DataFrame:
        """The submission frame for `ids` and their decoded predictions (rows in the order given)."""
        decoded = np.asarray(decoded)
        out: dict[str, Any] = {self.id_col: ids}
        if self.kind == "labels":
            out[self.columns[0]] = task.labels(decoded, self.classes)
        elif self.kind in ("values", "probs") and len(self.columns) == 1:
            out[self.columns[0]] = decoded.astype(np.float64).reshape(len(ids))
        else:
            index = {str(c): j for j, c in enumerate(self.classes or ())}
            mat = decoded
            if self.kind == "indicators" and decoded.ndim == 1:  # class indices -> one-hot
                mat = np.eye(len(index), dtype=np.int64)[decoded.astype(np.int64)]
            for c in self.columns:
                out[c] = mat[:, index[c]]
        return pd.DataFrame(out)

    # ---- checking -----------------------------------------------------------------------------------
    def check_values(self, df: pd.DataFrame) -> None:
        """Raise SubmissionError (row and column named) for a value this format does not allow."""
        for col in self.columns:
            values = df[col]
            if self.kind == "labels" and self.allowed is not None:
                for i, v in enumerate(values.tolist()):
                    parts = str(v).split() if self.multilabel else [norm_label(v)]
                    bad = [p for p in parts if p not in self.allowed]
                    if bad or (self.multilabel and not isinstance(v, str)):
                        shown = repr(bad[0]) if self.multilabel and bad else show(v)
                        what = "label" if self.multilabel else "value"
                        raise SubmissionError(f"row {i + 2}, column {col}: {what} {shown} not in allowed set "
                                              f"{sorted(self.allowed)}")
            elif self.kind in ("values", "probs", "indicators"):
                num = pd.to_numeric(values, errors="coerce")
                bad = num.isna() | ~np.isfinite(num.fillna(0).to_numpy(dtype=np.float64))
                if self.kind == "probs":
                    bad |= (num < 0) | (num > 1)
                if self.kind == "indicators":
                    bad |= ~num.isin([0, 1])
                if bad.any():
                    i = int(bad.to_numpy().argmax())
                    what = {"values": "a finite number", "probs": "a probability in [0, 1]",
                            "indicators": "0 or 1"}[self.kind]
                    raise SubmissionError(f"row {i + 2}, column {col}: value {show(values.iloc[i])} is not {what}")
        if self.kind == "probs" and self.single_label and len(self.columns) > 1:
            sums = df[list(self.columns)].to_numpy(dtype=np.float64).sum(axis=1)
            off = np.abs(sums - 1) > PROB_SUM_TOL
            if off.any():
                i = int(off.argmax())
                raise SubmissionError(f"row {i + 2}: class probabilities sum to {sums[i]:.6f}, not 1")

    # ---- scoring (the sandbox) ----------------------------------------------------------------------
    def arrays(self, truth: pd.DataFrame, pred: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(encoded truth, predictions) of a solution frame and a submission frame in this format."""
        cols = list(self.columns)
        if self.kind == "values":
            return truth[cols].to_numpy(np.float64).squeeze(1), pred[cols].to_numpy(np.float64).squeeze(1)
        if self.kind == "labels" and self.multilabel:
            from kit.metrics import label_matrix

            t, p = truth[cols[0]].astype(str).tolist(), pred[cols[0]].astype(str).tolist()
            classes = sorted(set().union(*(s.split() for s in t + p)))
            return label_matrix(t, classes), label_matrix(p, classes)
        if len(cols) == 1:
            t = [norm_label(v) for v in truth[cols[0]].tolist()]
            if self.kind == "probs":
                classes = sorted(set(t))
                pos = classes[-1] if len(classes) > 1 else "1"
                return np.array([v == pos for v in t], dtype=np.int64), pred[cols[0]].to_numpy(np.float64)
            p = [norm_label(v) for v in pred[cols[0]].tolist()]
            index = {c: j for j, c in enumerate(sorted(set(t) | set(p)))}
            return np.array([index[v] for v in t]), np.array([index[v] for v in p])
        tm, pm = truth[cols].to_numpy(np.float64), pred[cols].to_numpy(np.float64)
        if self.multilabel:
            return tm.astype(np.int64), pm
        y = tm.argmax(axis=1)
        return y, (pm if self.kind == "probs" else pm.argmax(axis=1))


# ---- files --------------------------------------------------------------------------------------------
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
    comp: Competition,
    submission: pd.DataFrame | Path | str,
    sample: pd.DataFrame | Path | str,
    classes: Sequence | None = None,
) -> pd.DataFrame:
    """Check a submission against the sample: same columns, same ids in the same order, no NaN, allowed values."""
    df, name = _as_frame(submission, "submission")
    ref, ref_name = _as_frame(sample, "sample submission")
    if list(df.columns) != list(ref.columns):
        raise SubmissionError(f"{name}: columns {list(df.columns)} differ from the sample's {list(ref.columns)}")
    idc = comp.id_col
    if idc not in df.columns:
        raise SubmissionError(f"{name}: no id column {idc!r}")
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
        fmt = comp.submission_format(list(ref.columns), classes, where=ref_name)
        fmt.check_values(df)
    except (SubmissionError, DataError) as e:
        raise SubmissionError(f"{name}: {e}") from None
    return df


def check_file(comp: Competition, path: Path, data_dir: Path) -> pd.DataFrame:
    """Validate a submission CSV before upload: against the sample in `data_dir`, with the classes from the
    file's record when it has one, else from the competition's training file."""
    path = Path(path)
    sample = Path(data_dir) / comp.sample_file
    if not sample.is_file():
        raise SubmissionError(f"{sample}: sample submission not found (needed to check {path}); "
                              f"{comp.data_hint(Path(data_dir))}")
    classes = None
    try:
        classes = json.loads(path.with_suffix(".json").read_text()).get("classes")
    except (OSError, ValueError, AttributeError):
        pass
    if classes is None and comp.task.classification:
        classes = comp.read_classes(Path(data_dir))
    return validate_submission(comp, path, sample, classes)


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
    """UTC timestamp used for file names: 20261124T060512123Z."""
    now = now or _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def write_submission(
    comp: Competition,
    df: pd.DataFrame,
    sample: pd.DataFrame | Path | str,
    record: dict[str, Any],
    root: Path = SUBMISSIONS_DIR,
    classes: Sequence | None = None,
) -> Path:
    """Validate and write `submissions/<comp>/<UTC timestamp>.csv` plus a `.json` sidecar; return the CSV path.

    Nothing is written when validation fails; both files are written via temp file + rename, the CSV first, and
    an error writing the `.json` removes the CSV.
    """
    validate_submission(comp, df, sample, classes)
    out_dir = Path(root) / comp.name
    path = out_dir / f"{utc_stamp()}.csv"
    while path.exists():  # two runs in the same millisecond
        path = out_dir / f"{utc_stamp()}.csv"
    sidecar = {"competition": comp.name, "slug": comp.slug, "file": path.name, **record}
    if classes is not None:
        sidecar["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    sidecar.setdefault("git_commit", git_commit())
    # the CSV first: a record (which names the run folder and the file) never describes a file that is not there
    atomic_write_csv(path, df)
    try:
        atomic_write_json(path.with_suffix(".json"), sidecar)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def latest_submission(comp_name: str, root: Path = SUBMISSIONS_DIR) -> Path:
    """The newest submission CSV written for `comp_name`."""
    files = sorted((Path(root) / comp_name).glob("*.csv"))
    if not files:
        raise SubmissionError(
            f"no submission in {Path(root) / comp_name}/; run `kit train --comp {comp_name}` first"
        )
    return files[-1]

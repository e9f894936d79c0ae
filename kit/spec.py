"""The competition spec: what a competition declares; kit/ supplies the how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from kit import metrics
from kit.errors import KitError, SubmissionError
from kit.io import show

Task = Literal["binary", "multiclass", "multilabel", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression")


@dataclass
class Data:
    """Everything loaded for one competition: frames, targets, and the input files (hashed into records)."""

    train: pd.DataFrame
    test: pd.DataFrame
    sample: pd.DataFrame
    y: np.ndarray  # (n,) for binary/multiclass/regression, (n, k) 0/1 for multilabel
    files: dict[str, Path]
    classes: list[str] | None = None
    groups: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FoldOutput:
    """What one fold's model returns: probabilities on its validation rows and on the test set."""

    valid: np.ndarray
    test: np.ndarray
    history: list[dict] = field(default_factory=list)  # per-epoch losses/metrics


class Competition:
    """Base class: a competition module subclasses it and sets the declarations below.

    Subclasses must implement `load`, `fit_fold` and `submission`; `kit.tabular.TabularCompetition`
    implements `fit_fold` for tabular data so those competitions only declare features and a model.
    """

    name: ClassVar[str]
    slug: ClassVar[str]  # Kaggle's competition slug
    task: ClassVar[Task]
    id_col: ClassVar[str]
    target_col: ClassVar[str]
    train_file: ClassVar[str] = "train.csv"
    test_file: ClassVar[str] = "test.csv"
    sample_file: ClassVar[str] = "sample_submission.csv"
    metric: ClassVar[str] = "accuracy"  # a name in kit.metrics.METRICS
    n_folds: ClassVar[int] = 5
    group_col: ClassVar[str | None] = None
    default_params: ClassVar[dict[str, Any]] = {}
    # torch CPU threads when the user sets none: tiny tabular models run fastest on 1 (threads only add
    # synchronisation, and spin badly when other processes share the cores); None keeps torch's default
    threads: ClassVar[int | None] = None

    # ---- declarations with sensible defaults -------------------------------------------------
    def search_space(self, trial) -> dict[str, Any]:
        """Hyper-parameters for one Optuna trial (`trial.suggest_*`); merged over `default_params`."""
        raise KitError(f"competition {self.name!r} declares no search space")

    def check_params(self, params: dict[str, Any]) -> None:
        """Raise KitError for a parameter value this competition rejects."""
        unknown = sorted(set(params) - set(self.default_params))
        if unknown:
            raise KitError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.default_params))}"
            )

    def params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Default params updated with `overrides`, checked."""
        p = {**self.default_params, **(overrides or {})}
        self.check_params(p)
        return p

    def data_hint(self, data_dir: Path) -> str:
        """How to get missing files, appended to 'file not found' errors."""
        return (
            f"get the competition files with `kit download --comp {self.name} --data-dir {data_dir}` "
            f"or copy Kaggle's files for '{self.slug}' into {data_dir}/"
        )

    # ---- the what: data, model, submission -----------------------------------------------------
    def load(self, data_dir: Path) -> Data:
        """Read and check the competition files in `data_dir`."""
        raise NotImplementedError

    def fit_fold(
        self,
        data: Data,
        train_idx: np.ndarray,
        valid_idx: np.ndarray,
        params: dict[str, Any],
        seed: int,
        callbacks: list | None = None,
        progress: bool = True,
    ) -> FoldOutput:
        """Fit one fold's model on `train_idx`; return probabilities for `valid_idx` and the test set.

        `callbacks`: extra fastai callbacks for this fold's fit (e.g. Optuna pruning); `progress`: show bars.
        """
        raise NotImplementedError

    def submission(self, data: Data, test_pred: np.ndarray) -> pd.DataFrame:
        """Turn decoded test predictions (labels, not probabilities) into the submission frame."""
        raise NotImplementedError

    # ---- decoding and scoring --------------------------------------------------------------------
    def fit_decoding(self, data: Data, oof: np.ndarray) -> dict[str, Any]:
        """Choose how to decode probabilities, on OOF predictions; returns a JSON-able dict.

        Binary: one threshold from a sweep. Multi-label F2: per-class thresholds (guarded). Others: none.
        Competitions override this to add their own rules (e.g. Planet's weather decoding).
        """
        from kit import thresholds

        if self.task == "binary":
            r = thresholds.best_threshold(data.y, oof, self.metric)
            return {"kind": "threshold", "threshold": r.threshold, **r.as_dict(),
                    "curve": {"grid": r.grid.tolist(), "score": r.curve.tolist()}}
        if self.task == "multilabel" and self.metric == "f2_samples":
            g = thresholds.best_threshold(data.y, oof, self.metric)  # start from the best global threshold
            r = thresholds.per_class_thresholds(data.y, oof, beta=2.0, init=g.threshold, classes=data.classes)
            return {"kind": "per_class", "thresholds": r.thresholds.tolist(), "score": r.score, **r.as_dict(),
                    "curve": {"grid": g.grid.tolist(), "score": g.curve.tolist()}}
        return {"kind": "none", "score": self.score(data.y, oof)}

    def apply_decoding(self, probs: np.ndarray, decoding: dict[str, Any]) -> np.ndarray:
        """Decode probabilities with what `fit_decoding` chose."""
        kind = decoding.get("kind", "none")
        if kind == "threshold":
            return self.decode(probs, decoding["threshold"])
        if kind == "per_class":
            return self.decode(probs, np.asarray(decoding["thresholds"]))
        return self.decode(probs)

    def decode(self, probs: np.ndarray, threshold: float | np.ndarray = 0.5) -> np.ndarray:
        """Probabilities -> predictions: thresholded for binary/multilabel, argmax for multiclass."""
        probs = np.asarray(probs)
        if self.task in ("binary", "multilabel"):
            return (probs >= threshold).astype(np.int64)
        if self.task == "multiclass":
            return probs.argmax(axis=1)
        return probs

    def score(self, y: np.ndarray, probs: np.ndarray, threshold: float | np.ndarray = 0.5) -> float:
        """The competition metric of probabilities decoded at `threshold`."""
        return self.metrics_value(y, self.decode(probs, threshold))

    def metrics_value(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The competition metric of already decoded predictions."""
        return float(metrics.METRICS[self.metric](y, pred))

    @property
    def greater_is_better(self) -> bool:
        """Whether a larger metric value is better."""
        return self.metric not in metrics.LOWER_IS_BETTER

    def check_submission_values(self, df: pd.DataFrame) -> None:
        """Raise SubmissionError when a prediction column holds a value the competition does not allow."""
        if self.task in ("binary", "multiclass"):
            allowed = set(self.sample_values())
            for col in df.columns:
                if col == self.id_col:
                    continue
                bad = ~df[col].isin(allowed)
                if bad.any():
                    i = int(bad.to_numpy().argmax())
                    raise SubmissionError(
                        f"row {i + 2}, column {col}: value {show(df[col].iloc[i])} not in allowed set "
                        f"{sorted(allowed)}"
                    )

    def sample_values(self) -> list:
        """The allowed values of the prediction column (binary: 0 and 1)."""
        return [0, 1]

    def __repr__(self) -> str:
        return f"<Competition {self.name} ({self.task}, metric={self.metric})>"

"""The competition contract: what a competition declares; kit/ supplies the how.

A competition is a `Competition` subclass in `competitions/<name>/__init__.py`. Its `task` and `metric` may be
given by name ("binary", "logloss") or as objects (`kit.tasks.Regression(transform="log1p")`, a
`kit.metrics.Metric` declared in the folder); names are resolved when the class is defined, so an unknown one
is a one-line error as soon as the competition loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kit import decoders, metrics, tasks
from kit.errors import KitError
from kit.metrics import Metric
from kit.submission import SubmissionFormat
from kit.tasks import Task


@dataclass
class Data:
    """Everything loaded for one competition: frames, targets, and the input files (hashed into records)."""

    train: pd.DataFrame
    test: pd.DataFrame
    sample: pd.DataFrame
    y: np.ndarray  # class indices (binary/multiclass), (n, k) 0/1 (multilabel), numbers (regression)
    files: dict[str, Path]
    classes: list | None = None  # the labels that y's indices stand for, as found in the training file
    groups: np.ndarray | None = None
    output_names: list[str] | None = None  # names of the prediction columns when not `classes` (e.g. keypoints)


@dataclass
class FoldOutput:
    """What one fold's model returns: probabilities (or values) on its validation rows and on the test set."""

    valid: np.ndarray
    test: np.ndarray
    history: list[dict] = field(default_factory=list)  # per-epoch losses/metrics
    predictor: Any = None  # predicts new test rows as this fold did (kit.predictors), saved with the run


class Competition:
    """Base class: a competition module subclasses it and sets the declarations below.

    Subclasses implement `load` and `fit_fold`; `kit.tabular.TabularCompetition` implements both for one
    training table, so those competitions only declare columns (and, optionally, features and a model).
    """

    name: ClassVar[str]
    slug: ClassVar[str]  # Kaggle's competition slug
    title: ClassVar[str] = ""
    task: ClassVar[Task]  # declared as a name or a kit.tasks.Task
    metric: ClassVar[Metric | None] = None  # a name in kit.metrics.BUILTIN or a Metric; default: the task's
    target_transform: ClassVar[str | None] = None  # regression: "log1p" | "none" (default: the metric's)
    id_col: ClassVar[str]
    target_col: ClassVar[str]
    train_file: ClassVar[str] = "train.csv"
    test_file: ClassVar[str] = "test.csv"
    sample_file: ClassVar[str] = "sample_submission.csv"
    n_folds: ClassVar[int] = 5
    group_col: ClassVar[str | None] = None
    default_params: ClassVar[dict[str, Any]] = {}
    # torch CPU threads when the user sets none: tiny tabular models run fastest on 1 (threads only add
    # synchronisation, and spin badly when other processes share the cores); None keeps torch's default
    threads: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "task" not in own and "metric" not in own and "target_transform" not in own:
            return
        where = f"competition {own.get('name', cls.__name__)!r}"
        try:
            task = tasks.get(cls.task) if getattr(cls, "task", None) is not None else None
            metric = metrics.get(cls.metric) if cls.metric is not None else None
            if task is not None:
                metric = metric or metrics.get(task.default_metric)
                task = task.for_metric(metric, cls.target_transform)
        except KitError as e:
            raise KitError(f"{where}: {e}") from None
        if task is not None:
            cls.task = task
        cls.metric = metric

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

    def with_model(self, family: str) -> Competition:
        """A copy that trains another model family (tabular competitions: mlp, tabm, lightgbm, xgboost, catboost)."""
        raise KitError(f"competition {self.name!r} has no model families to choose from (--model {family})")

    def with_cache_dir(self, cache_dir: Path | None) -> Competition:
        """A copy that keeps its caches (e.g. decoded images) in `cache_dir`; this one has none to keep."""
        return self

    def for_params(self, params: dict[str, Any]) -> Competition:
        """A copy prepared for a run with `params` before its data is loaded (image competitions decode at the
        run's size); this one needs nothing."""
        return self

    def for_inference(self) -> Competition:
        """A copy whose `load` reads only what predicting the test set needs (a notebook or `kit predict` never
        trains: image competitions skip decoding the training images); this one needs nothing."""
        return self

    def fold_jobs(self, params: dict[str, Any], n_rows: int, n_folds: int) -> int:
        """Folds trained side by side in worker processes when the user sets no `--jobs`: one (this model uses
        the machine's cores, or its GPU, by itself)."""
        return 1

    def fold_parts(self, params: dict[str, Any], n_rows: int) -> int:
        """Parts of a fold that can train in separate worker processes (`fit_fold_part`, joined by
        kit.workers.join_parts) for a fold of `n_rows` training rows: one (a fold is one model)."""
        return 1

    def fit_fold_part(self, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                      seed: int, part: int) -> FoldOutput:
        """Part `part` of the fold `fit_fold` trains with `seed` (of `fold_parts`); joined, the parts give the
        fold's own output."""
        raise NotImplementedError

    def record_extra(self, params: dict[str, Any]) -> dict[str, Any]:
        """More for a run's record (image competitions: the pretrained weights file the run loaded)."""
        return {}

    def describe_model(self, params: dict[str, Any]) -> str:
        """What model a run trained, for its record (the architecture, when the parameters name one)."""
        return str(params.get("arch", type(self).__name__))

    # ---- the what: data and model ------------------------------------------------------------------
    def load(self, data_dir: Path) -> Data:
        """Read and check the competition files in `data_dir`."""
        raise NotImplementedError

    def read_classes(self, data_dir: Path) -> list | None:
        """The training file's classes (for checking a submission without training); default: load everything."""
        return self.load(Path(data_dir)).classes

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

    def fold_groups(self, data: Data) -> np.ndarray | None:
        """Groups that must not be split across folds (GroupKFold): `data.groups`, else the training frame's
        `group_col` (a person, a patient, a site: what the test set will not share with the training set)."""
        if data.groups is not None:
            return data.groups
        if self.group_col is None:
            return None
        if self.group_col not in data.train.columns:
            raise KitError(f"{self.name}: group_col {self.group_col!r} is not a column of the training data")
        return data.train[self.group_col].to_numpy()

    # ---- decoding and scoring --------------------------------------------------------------------
    def decoder(self) -> decoders.Decoder:
        """A fresh decoder to fit on OOF predictions: the task's default for the metric (override to compose)."""
        return self.task.default_decoder(self.metric)

    def decoder_from_json(self, d: dict[str, Any]) -> decoders.Decoder:
        """Read back what `decoder().to_json()` wrote."""
        return type(self.decoder()).from_json(d)

    def score(self, y: np.ndarray, probs: np.ndarray) -> float:
        """The competition metric of predictions at the untuned decoding (0.5 / argmax), or of probabilities."""
        return self.metric(y, probs if self.metric.takes_probs else self.task.decode_default(probs))

    @property
    def greater_is_better(self) -> bool:
        """Whether a larger metric value is better."""
        return self.metric.greater_is_better

    # ---- submissions -------------------------------------------------------------------------------
    def allowed_labels(self, classes: Sequence | None) -> Sequence | None:
        """Labels a label submission may hold (default: the training classes)."""
        return classes

    def submission_format(self, sample_columns: Sequence[str], classes: Sequence | None,
                          where: str = "sample submission") -> SubmissionFormat:
        """The submission format the sample's columns and the metric ask for."""
        return SubmissionFormat.infer(self, sample_columns, classes, where)

    def submission(self, data: Data, decoded: np.ndarray) -> pd.DataFrame:
        """Decoded test predictions (rows of `data.test`) -> the submission frame, in the sample's id order."""
        fmt = self.submission_format(list(data.sample.columns), data.classes, where=str(data.files.get("sample")))
        test_ids = data.test[self.id_col].astype(str).to_numpy()
        row = pd.Series(np.arange(len(test_ids)), index=test_ids)
        order = row.loc[data.sample[self.id_col].astype(str).to_numpy()].to_numpy()
        return fmt.frame(data.sample[self.id_col].to_numpy(), np.asarray(decoded)[order], self.task)

    def score_submission(self, truth: pd.DataFrame, pred: pd.DataFrame) -> float:
        """The metric of a submission frame against a solution frame of the same format and rows (the sandbox)."""
        fmt = self.submission_format(list(truth.columns), _columns_as_classes(truth, self.id_col), "solution")
        y, p = fmt.arrays(truth, pred)
        return self.metric(y, p)

    def __repr__(self) -> str:
        return f"<Competition {self.name} ({self.task}, metric={self.metric})>"


def _columns_as_classes(df: pd.DataFrame, id_col: str) -> list[str] | None:
    cols = [c for c in df.columns if c != id_col]
    return cols if len(cols) > 1 else None

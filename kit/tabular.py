"""Tabular competitions: declare columns, feature steps and a model; kit does the fold pipeline and training."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.pipeline import Pipeline

from kit import families as model_families
from kit import workers
from kit.errors import DataError
from kit.families.base import Family
from kit.io import read_csv, show
from kit.nets.params import SEED_PARAMS, MLPParams
from kit.preprocess import make_preprocessor
from kit.spec import Competition, Data, FoldOutput

log = logging.getLogger(__name__)


# The mlp family's defaults (the modern net's; `arch=auto` takes the seeds' MLP on small tables): kit.nets.params.
DEFAULT_PARAMS: dict[str, Any] = MLPParams.defaults()


HIGH_CARDINALITY = 1000  # levels from which a categorical column is said to be reduced for the nets


def check_columns(comp: TabularCompetition, train: pd.DataFrame, test: pd.DataFrame, paths: dict[str, Path]) -> None:
    """Declared numeric feature columns must be numbers in both files (a column that is text in test would
    silently become missing values); constant, empty and very high-cardinality columns are said in one line
    each, and handled (a constant column carries nothing; the nets keep a high-cardinality column's most
    frequent levels)."""
    raw = set(comp.raw_columns)
    for col in comp.numeric_features:
        if col not in raw or col in comp.raw_numeric:
            continue  # derived by the feature steps, or already checked as raw_numeric
        for name, df in (("train", train), ("test", test)):
            num = pd.to_numeric(df[col], errors="coerce")
            bad = num.isna() & df[col].notna()
            if bad.any():
                i = int(bad.to_numpy().argmax())
                raise DataError(f"{paths[name]}: row {i + 2}, column {col}: {show(df[col].iloc[i])} is not a "
                                "number, but the column is declared in numeric_features")
    for col in [*comp.numeric_features, *comp.categorical_features]:
        if col not in raw:
            continue
        values = train[col].dropna()
        if values.empty:
            log.warning("%s: column %s is empty (all missing): it carries nothing", paths["train"], col)
        elif values.nunique() == 1:
            log.warning("%s: column %s is constant (%s): it carries nothing", paths["train"], col,
                        show(values.iloc[0]))
        elif col in comp.categorical_features and values.nunique() > HIGH_CARDINALITY:
            log.warning("%s: column %s has %d levels: the nets embed its %d most frequent, the others share one "
                        "code", paths["train"], col, values.nunique(), HIGH_CARDINALITY)


class TabularCompetition(Competition):
    """A competition on one training table: raw columns in, sklearn features, fastai model on the result.

    Declaring the columns is enough: the MLP's defaults and search space below work for any task.
    """

    raw_columns: ClassVar[list[str]] = []  # must exist in train and test
    raw_numeric: ClassVar[list[str]] = []  # must parse as numbers where present
    numeric_features: ClassVar[list[str]] = []  # after the feature steps: imputed + scaled
    categorical_features: ClassVar[list[str]] = []  # after the feature steps: one-hot
    default_params: ClassVar[dict[str, Any]] = dict(DEFAULT_PARAMS)
    model_family: ClassVar[str] = "mlp"  # `kit train --model tabm|lightgbm|catboost|xgboost` picks another
    family_params: ClassVar[dict[str, dict[str, Any]]] = {}  # per-family defaults a competition overrides
    families: ClassVar[tuple[str, ...]] = model_families.NAMES
    csv_options: ClassVar[dict[str, Any]] = {}  # pandas read_csv options for every file, e.g. {"sep": ";"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("default_params")
        if own is not None:  # the declared values over the declared arch's defaults: every mlp key is known
            seed = own.get("arch", "seed") == "seed"  # declared without arch: written for the seeds' MLP
            cls.default_params = {**DEFAULT_PARAMS, **(SEED_PARAMS if seed else {}), **own}

    @property
    def family(self) -> Family:
        """The model family this competition trains (a strategy object: kit.families)."""
        return model_families.get(self.model_family, self.families)

    def with_model(self, family: str) -> TabularCompetition:
        """A copy of this competition that trains `family` (mlp | tabm | lightgbm | catboost | xgboost) on the
        same folds and fold pipeline, with that family's parameters and search space; the shared object is left
        as it is."""
        if family == self.model_family:
            return self
        chosen = model_families.get(family, self.families)
        chosen.require()
        comp = copy.copy(self)
        comp.model_family = family
        comp.default_params = chosen.defaults(self)
        return comp

    def net_kind(self, params: dict[str, Any], n_rows: int | None = None) -> str | None:
        """`seed` (the seeds' MLP), `mlp` (kit.nets' modern MLP), `tabm`, or None for a tree family; `arch=auto`
        is the seeds' MLP under AUTO_SEED_ROWS training rows (`n_rows`; unknown: the modern one)."""
        return self.family.kind(params, n_rows)

    def fold_jobs(self, params: dict[str, Any], n_rows: int, n_folds: int) -> int:
        """The nets' folds side by side from PARALLEL_ROWS training rows, one worker per core (a small net's step
        uses one core: kit.workers); the trees use every core themselves."""
        if self.net_kind(params, n_rows) is None or n_rows < workers.PARALLEL_ROWS:
            return 1
        return workers.auto_jobs(n_folds)

    def fold_parts(self, params: dict[str, Any], n_rows: int) -> int:
        """The family's parts of a fold (the modern nets: each of its nets)."""
        return self.family.parts(params, n_rows)

    def fit_fold_part(self, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                      seed: int, part: int) -> FoldOutput:
        """The family's part `part` of the fold."""
        return self.family.fit_part(self, data, train_idx, valid_idx, params, seed, part)

    def describe_model(self, params: dict[str, Any]) -> str:
        """The model family, for run records."""
        return self.model_family

    def feature_steps(self, params: dict[str, Any]) -> list[tuple[str, TransformerMixin]]:
        """sklearn steps run before the shared ColumnTransformer (fit on the training fold, with its labels)."""
        return []

    def model(self, n_in: int, n_out: int, params: dict[str, Any]) -> Any:
        """The seeds' network for `n_in` features and `n_out` outputs."""
        from kit.nets.modules import mlp  # torch: imported by the commands that train, not by every command

        p = MLPParams.of(params)
        return mlp(n_in, n_out, p.width, p.depth, p.dropout)

    def pipeline(self, params: dict[str, Any]) -> Pipeline:
        """Feature steps followed by the shared ColumnTransformer."""
        steps = [*self.feature_steps(params), ("columns", make_preprocessor(self.numeric_features,
                                                                           self.categorical_features))]
        return Pipeline(steps)

    def check_params(self, params: dict[str, Any]) -> None:
        """Reject unknown names and values the model family cannot use (its declared constraints)."""
        super().check_params(params)
        self.family.check(params, self.name)

    def search_space(self, trial) -> dict[str, Any]:
        """The model family's space (kit.families)."""
        return self.family.search_space(trial, self.default_params)

    def _paths(self, data_dir: Path) -> dict[str, Path]:
        data_dir = Path(data_dir)
        paths = {k: data_dir / f for k, f in
                 (("train", self.train_file), ("test", self.test_file), ("sample", self.sample_file))}
        for p in paths.values():
            if not p.is_file():
                raise DataError(f"{p}: file not found; {self.data_hint(data_dir)}")
        return paths

    def load(self, data_dir: Path) -> Data:
        """Read train, test and sample submission, checking columns, numbers, ids and the target."""
        paths = self._paths(data_dir)
        numeric_target = [self.target_col] if not self.task.classification else []
        opts = self.csv_options
        train = read_csv(paths["train"], required=[self.id_col, self.target_col, *self.raw_columns],
                         numeric=[*numeric_target, *self.raw_numeric], **opts)
        test = read_csv(paths["test"], required=[self.id_col, *self.raw_columns], numeric=self.raw_numeric, **opts)
        sample = read_csv(paths["sample"], required=[self.id_col], **opts)
        for name, df in (("train", train), ("test", test)):
            dup = df[self.id_col].duplicated()
            if dup.any():
                i = int(dup.to_numpy().argmax())
                raise DataError(f"{paths[name]}: row {i + 2}, column {self.id_col}: duplicate id "
                                f"{show(df[self.id_col].iloc[i])}")
        missing = set(sample[self.id_col].astype(str)) - set(test[self.id_col].astype(str))
        if missing:
            raise DataError(f"{paths['sample']}: {len(missing)} id(s) not in {paths['test'].name} "
                            f"(e.g. {sorted(missing)[0]})")
        check_columns(self, train, test, paths)
        y, classes = self.task.encode(train[self.target_col], str(paths["train"]))
        self.submission_format(list(sample.columns), classes, where=str(paths["sample"]))  # fails early if unusable
        groups = train[self.group_col].to_numpy() if self.group_col else None
        return Data(train=train, test=test, sample=sample, y=y, files=paths, classes=classes, groups=groups)

    def read_classes(self, data_dir: Path) -> list | None:
        """The training file's classes, reading only its target column."""
        path = self._paths(data_dir)["train"]
        col = read_csv(path, required=[self.target_col], usecols=[self.target_col],
                       **self.csv_options)[self.target_col]
        return self.task.encode(col, str(path))[1]

    def fold_arrays(
        self, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit the pipeline on the training fold (with its labels only); transform valid and test rows."""
        pipe = self.pipeline(params)
        x_train = pipe.fit_transform(data.train.iloc[train_idx], data.y[train_idx])
        x_valid = pipe.transform(data.train.iloc[valid_idx])
        x_test = pipe.transform(data.test)
        return (np.asarray(x_train, dtype=np.float32), np.asarray(x_valid, dtype=np.float32),
                np.asarray(x_test, dtype=np.float32))

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
        """The model family's fold (kit.families): features fit on the training fold, the model, predictions."""
        return self.family.fit_fold(self, data, train_idx, valid_idx, params, seed, callbacks, progress)

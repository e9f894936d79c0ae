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
from torch import nn

from kit import gbdt, learner
from kit.errors import DataError, KitError
from kit.io import read_csv, show
from kit.nets import fit as nets_fit
from kit.nets.modules import mlp
from kit.predictors import MLPPredictor, TreePredictor, cpu_copy
from kit.preprocess import make_preprocessor
from kit.spec import Competition, Data, FoldOutput

log = logging.getLogger(__name__)


# The seeds' MLP (`arch="seed"`): one hidden layer of 128, light dropout and weight decay, 30 epochs of
# fit_one_cycle on the one-hot/standardised ColumnTransformer. Chosen on the contract benchmark's splits 3-6
# (bench/results/contract.md has the sweep): two layers overfit the small tables, one layer is within 2 % of the
# best scikit-learn baseline on all three. A competition that declares `default_params` without `arch` gets it
# (its values were written for this net); Titanic declares it.
SEED_PARAMS: dict[str, Any] = {
    "arch": "seed", "width": 128, "depth": 1, "dropout": 0.1, "wd": 0.01, "epochs": 30, "lr": 3e-3, "bs": 64,
    "n_models": 1,
}

# The modern MLP (`arch="modern"`, kit.nets): quantile-normalised numbers, periodic embeddings of the
# numbers, one-hot / embedded categories, 3 x 256 ReLU, label smoothing, batch size and epochs from the data
# size (0), best validation epoch kept; the default (`arch="auto"`, from AUTO_SEED_ROWS training rows) of every
# competition that declares no parameters.
# Chosen on bench/tabular.py's choice tables (its "choice" section), reported on others (bench/results/tabular.md).
NET_PARAMS: dict[str, Any] = {
    "lr": 6e-3, "wd": 1e-4, "dropout": 0.1, "epochs": 0, "bs": 0, "n_models": 1, "num_transform": "quantile",
    "num_emb": "periodic", "d_emb": 16, "emb_scale": 0.3, "label_smoothing": 0.1, "schedule": "one_cycle",
    "target_transform": "auto", "max_levels": 1000, "target_encode": True,
}
DEFAULT_PARAMS: dict[str, Any] = {"arch": "auto", "width": 256, "depth": 3, **NET_PARAMS}
ARCHS = ("auto", "modern", "seed")
# `arch=auto`: below this many training rows the seeds' MLP, with its own defaults. On the contract tables
# (142-455 rows) it scored as well or better (breast cancer log loss 0.077 vs 0.089, diabetes RMSE 53.9 vs 54.5)
# at a tenth of the time; from 3,900 rows (bench/tabular.py's choice tables) the modern net won 3 of 4 (computers
# RMSE 162 vs 199, doctor contacts 4.03 vs 4.23) and lost one (males log loss 1.61 vs 1.57).
AUTO_SEED_ROWS = 1000

# TabM (kit.nets.modules.TabM on the `tabm` package's BatchEnsemble): k=8 heads of 2 x 128 (every head sees every
# row, so a step costs k times an MLP of that width: the paper's 32 x 512 is ~30x the modern MLP's cost on a
# CPU), the same inputs and schedule as the modern MLP.
TABM_PARAMS: dict[str, Any] = {"width": 128, "depth": 2, "k": 8, **NET_PARAMS}

NET_FAMILIES = ("mlp", "tabm")


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
    families: ClassVar[tuple[str, ...]] = (*NET_FAMILIES, *gbdt.FAMILIES)
    csv_options: ClassVar[dict[str, Any]] = {}  # pandas read_csv options for every file, e.g. {"sep": ";"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("default_params")
        if own is not None:  # the declared values over the declared arch's defaults: every mlp key is known
            seed = own.get("arch", "seed") == "seed"  # declared without arch: written for the seeds' MLP
            cls.default_params = {**DEFAULT_PARAMS, **(SEED_PARAMS if seed else {}), **own}

    def with_model(self, family: str) -> TabularCompetition:
        """A copy of this competition that trains `family` (mlp | tabm | lightgbm | catboost | xgboost) on the
        same folds and fold pipeline, with that family's parameters and search space; the shared object is left
        as it is."""
        if family == self.model_family:
            return self
        if family not in self.families:
            raise KitError(f"unknown model {family!r}; one of {', '.join(self.families)}")
        comp = copy.copy(self)
        comp.model_family = family
        if family == "mlp":
            comp.default_params = dict(type(self).default_params)
        elif family == "tabm":
            gbdt.Family("tabm", "tabm", {}).require()
            comp.default_params = {**TABM_PARAMS, **self.family_params.get(family, {})}
        else:
            gbdt.FAMILIES[family].require()
            comp.default_params = {**gbdt.FAMILIES[family].defaults, **self.family_params.get(family, {})}
        return comp

    def net_kind(self, params: dict[str, Any], n_rows: int | None = None) -> str | None:
        """`seed` (the seeds' MLP), `mlp` (kit.nets' modern MLP), `tabm`, or None for a tree family; `arch=auto`
        is the seeds' MLP under AUTO_SEED_ROWS training rows (`n_rows`; unknown: the modern one)."""
        if self.model_family == "tabm":
            return "tabm"
        if self.model_family != "mlp":
            return None
        arch = params.get("arch", "seed")
        if arch == "auto":
            return "seed" if n_rows is not None and n_rows < AUTO_SEED_ROWS else "mlp"
        return "mlp" if arch == "modern" else "seed"

    def describe_model(self, params: dict[str, Any]) -> str:
        """The model family, for run records."""
        return self.model_family

    def feature_steps(self, params: dict[str, Any]) -> list[tuple[str, TransformerMixin]]:
        """sklearn steps run before the shared ColumnTransformer (fit on the training fold, with its labels)."""
        return []

    def model(self, n_in: int, n_out: int, params: dict[str, Any]) -> nn.Module:
        """The network for `n_in` features and `n_out` outputs."""
        return mlp(n_in, n_out, params.get("width", 128), params.get("depth", 1), params.get("dropout", 0.0))

    def pipeline(self, params: dict[str, Any]) -> Pipeline:
        """Feature steps followed by the shared ColumnTransformer."""
        steps = [*self.feature_steps(params), ("columns", make_preprocessor(self.numeric_features,
                                                                           self.categorical_features))]
        return Pipeline(steps)

    def check_params(self, params: dict[str, Any]) -> None:
        """Reject unknown names and values the model cannot use."""
        super().check_params(params)
        kind = self.net_kind({**self.default_params, **params})
        if kind is None:
            gbdt.check_params(self.model_family, params)
            return
        if params.get("arch", "seed") not in ARCHS:
            raise KitError(f"{self.name}: arch must be one of {', '.join(ARCHS)} (got {params['arch']!r})")
        if kind != "seed":
            nets_fit.check_params(params, self.name)
            return
        for key in ("width", "depth", "n_models"):
            if key in params and int(params[key]) < 1:
                raise KitError(f"{self.name}: {key} must be >= 1 (got {params[key]})")
        for key in ("epochs", "bs"):
            if key in params and int(params[key]) < 0:
                raise KitError(f"{self.name}: {key} must be >= 1, or 0 to choose it from the data size "
                               f"(got {params[key]})")
        if "dropout" in params and not 0 <= float(params["dropout"]) < 1:
            raise KitError(f"{self.name}: dropout must be in [0, 1) (got {params['dropout']})")
        if float(params.get("lr", 1e-3)) <= 0 or float(params.get("wd", 0.0)) < 0:
            raise KitError(f"{self.name}: lr must be > 0 and wd >= 0 (got lr={params.get('lr')}, "
                           f"wd={params.get('wd')})")

    def search_space(self, trial) -> dict[str, Any]:
        """The seeds' MLP: lr, epochs, width, depth, dropout, weight decay, batch size; the modern MLP and TabM:
        lr, width, depth, dropout, weight decay, label smoothing, numerical embeddings; trees: their family's."""
        kind = self.net_kind(self.default_params)
        if kind is None:
            return gbdt.search_space(self.model_family, trial)
        if kind != "seed":
            return nets_fit.search_space(kind, trial)
        return {
            "lr": trial.suggest_float("lr", 3e-4, 3e-2, log=True),
            "epochs": trial.suggest_int("epochs", 5, 40, step=5),
            "width": trial.suggest_categorical("width", [32, 64, 128, 256]),
            "depth": trial.suggest_int("depth", 1, 3),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "wd": trial.suggest_float("wd", 1e-4, 0.3, log=True),
            "bs": trial.suggest_categorical("bs", [32, 64, 128]),
        }

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
        """Features on the fold, then `n_models` fastai Learners (seeds seed, seed+1000, ...) averaged.

        Regression targets are scaled on the training fold (the task's TargetScaler) and predictions unscaled.
        """
        kind = self.net_kind(params, len(train_idx))
        if kind is None:
            return self.fit_fold_trees(data, train_idx, valid_idx, params, seed)
        if kind != "seed":
            return nets_fit.fit_fold(kind, self, data, train_idx, valid_idx, params, seed, callbacks, progress)
        if params.get("arch") == "auto":  # parameters left at the modern net's defaults take the seeds' MLP's
            params = {**params, **{k: v for k, v in SEED_PARAMS.items() if params.get(k) == DEFAULT_PARAMS.get(k)}}
        pipe = self.pipeline(params)
        x_train = np.asarray(pipe.fit_transform(data.train.iloc[train_idx], data.y[train_idx]), dtype=np.float32)
        x_valid = np.asarray(pipe.transform(data.train.iloc[valid_idx]), dtype=np.float32)
        scaler = self.task.fit_target(data.y[train_idx])
        y_train, y_valid = scaler.transform_y(data.y[train_idx]), scaler.transform_y(data.y[valid_idx])
        n_out = self.task.n_outputs(data.y, data.classes)
        bs = int(params.get("bs", 64)) or nets_fit.auto_batch_size(len(train_idx))
        epochs = int(params.get("epochs", 30)) or nets_fit.auto_epochs(len(train_idx), bs)
        params = {**params, "bs": bs, "epochs": epochs}
        valid, models, hist = [], [], []
        for m in range(int(params.get("n_models", 1))):
            learner.seed_everything(seed + 1000 * m)
            dls, _ = learner.tensor_dataloaders(x_train, y_train, x_valid, y_valid, x_valid[:0], bs, self.task)
            learn = learner.make_learner(dls, self.model(x_train.shape[1], n_out, params), self.task, params,
                                         metrics=[learner.competition_metric(self, scaler)])
            # pruning callbacks watch the first model only: later ones would report the same epochs again
            learner.fit(learn, params, cbs=callbacks if m == 0 else None, progress=progress)
            hist = hist or learner.history(learn)  # before predicting: get_preds resets the Recorder
            valid.append(scaler.inverse(learner.predict(learn, dls.valid, self.task)))
            models.append(cpu_copy(learn.model))
        predictor = MLPPredictor(pipe, models, scaler, max(bs, 256))
        return FoldOutput(valid=np.mean(valid, axis=0), test=predictor.predict(self, data), history=hist,
                          predictor=predictor)

    def fit_fold_trees(
        self, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any], seed: int
    ) -> FoldOutput:
        """The fold's feature steps, then LightGBM / CatBoost on the declared columns (kit.gbdt)."""
        steps = Pipeline(self.feature_steps(params)) if self.feature_steps(params) else None
        tr, va = data.train.iloc[train_idx], data.train.iloc[valid_idx]
        if steps is not None:
            tr = steps.fit_transform(tr, data.y[train_idx])
            va = steps.transform(va)
        num, cat = list(self.numeric_features), list(self.categorical_features)
        levels = gbdt.fit_levels(tr, cat)
        x_tr, x_va = gbdt.to_frame(tr, num, cat, levels), gbdt.to_frame(va, num, cat, levels)
        scaler = self.task.fit_target(data.y[train_idx])
        y_tr, y_va = scaler.transform_y(data.y[train_idx]), scaler.transform_y(data.y[valid_idx])
        models, hist = gbdt.fit(self.model_family, self.task, params, seed, self.task.n_outputs(data.y, data.classes),
                                x_tr, y_tr, x_va, y_va, cat)
        valid = scaler.inverse(gbdt.predict(self.model_family, self.task, models, x_va, cat))
        predictor = TreePredictor(self.model_family, steps, models, levels, num, cat, scaler)
        return FoldOutput(valid=valid, test=predictor.predict(self, data), history=hist, predictor=predictor)

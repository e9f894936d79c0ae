"""Gradient-boosted trees for tabular competitions: LightGBM, CatBoost and XGBoost on the same fold pipeline as
the nets.

Each family takes the competition's fold-safe feature steps (fit on the training fold, with its labels), then the
declared numeric columns as they are (trees need no scaling and handle NaN natively) and the categorical columns
natively (LightGBM and XGBoost: pandas categories learned on the training fold, unknown ones missing; CatBoost:
cat_features).
The objective follows the task (binary, multiclass, regression on the task's fold-scaled target, multi-label as
one model per label); each fold stops early on its validation rows; seeded and single-process deterministic.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from kit import devices
from kit.families.base import Family
from kit.params import Interval, Params
from kit.spec import Data, FoldOutput
from kit.tasks import TargetScaler

POSITIVE = Interval(int, 1, None)
RATE = Interval(float, 0, 1, closed="right")
FRACTION = Interval(float, 0, 1, closed="right")
NON_NEGATIVE = Interval(float, 0, None)


@dataclass(frozen=True)
class LightGBMParams(Params):
    """LightGBM's: a slow learning rate with early stopping on the fold's validation rows."""

    n_estimators: int = 3000
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    early_stopping: int = 100

    _parameter_constraints: ClassVar = {
        "n_estimators": POSITIVE, "learning_rate": RATE, "num_leaves": Interval(int, 2, None),
        "min_child_samples": POSITIVE, "subsample": FRACTION, "colsample_bytree": FRACTION,
        "reg_lambda": NON_NEGATIVE, "early_stopping": POSITIVE,
    }


@dataclass(frozen=True)
class XGBoostParams(Params):
    """XGBoost's (hist trees, native categories one-hot below `max_cat_to_onehot` levels)."""

    n_estimators: int = 3000
    learning_rate: float = 0.03
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_cat_to_onehot: int = 8
    early_stopping: int = 100

    _parameter_constraints: ClassVar = {
        "n_estimators": POSITIVE, "learning_rate": RATE, "max_depth": POSITIVE, "min_child_weight": NON_NEGATIVE,
        "subsample": FRACTION, "colsample_bytree": FRACTION, "reg_lambda": NON_NEGATIVE,
        "max_cat_to_onehot": POSITIVE, "early_stopping": POSITIVE,
    }


@dataclass(frozen=True)
class CatBoostParams(Params):
    """CatBoost's (ordered target statistics for the categorical columns)."""

    iterations: int = 3000
    learning_rate: float = 0.05
    depth: int = 6
    l2_leaf_reg: float = 3.0
    early_stopping: int = 100

    _parameter_constraints: ClassVar = {
        "iterations": POSITIVE, "learning_rate": RATE, "depth": Interval(int, 1, 16), "l2_leaf_reg": NON_NEGATIVE,
        "early_stopping": POSITIVE,
    }


def fit_levels(train: pd.DataFrame, categorical: list[str]) -> dict[str, list[str]]:
    """Each categorical column's levels in the training fold (others become missing)."""
    return {c: sorted(train[c].dropna().astype(str).unique()) for c in categorical}


def to_frame(df: pd.DataFrame, numeric: list[str], categorical: list[str],
             levels: dict[str, list[str]]) -> pd.DataFrame:
    """The declared columns for trees: numbers as float (NaN kept), categories with the training fold's levels."""
    f = pd.DataFrame(index=df.index)
    for c in numeric:
        f[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
    for c in categorical:
        f[c] = pd.Categorical(df[c].where(df[c].isna(), df[c].astype(str)), categories=levels[c])
    return f.reset_index(drop=True)


def _threads() -> int:
    """The trees' threads: torch's where it is imported (`--threads` sets them), else the cores this process may
    use; importing torch only to ask cost every tree run ~3 s."""
    torch = sys.modules.get("torch")
    return max(1, torch.get_num_threads()) if torch is not None else devices.cores()


# The learning curve's training line is scored on at most this many training rows (a seeded sample): scoring all
# of a 256k-row fold every round cost 13 % of LightGBM's fit (12.1 s -> 13.7 s), a 20k-row sample nothing measurable.
CURVE_ROWS = 20_000


def curve_rows(x: pd.DataFrame, y: np.ndarray, seed: int, limit: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The training rows the learning curve is scored on: all of them (the same objects) up to `limit`
    (CURVE_ROWS), else a seeded sample of `limit` rows in their order."""
    limit = CURVE_ROWS if limit is None else limit
    if len(x) <= limit:
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(x), limit, replace=False))
    return x.iloc[idx], y[idx]


def _curve(train: list, valid: list) -> list[dict]:
    return [{"train_loss": float(a), "valid_loss": float(b)} for a, b in zip(train, valid, strict=False)]


class TreeFamily(Family):
    """A GBDT library as a family: the fold's feature steps, the declared columns as trees take them, one model
    (one per label for multi-label: no GBDT library has a multi-label objective) with early stopping."""

    def fit_model(self, task: Any, params: dict[str, Any], seed: int, n_out: int, x_tr: pd.DataFrame,
                  y_tr: np.ndarray, x_va: pd.DataFrame, y_va: np.ndarray, categorical: list[str]) -> tuple[Any, list]:
        """One model with early stopping on the validation rows, and its learning curve."""
        raise NotImplementedError

    def model_input(self, x: pd.DataFrame, categorical: list[str]) -> Any:
        """What the library's predict takes."""
        return x

    def library_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The family's parameters the library takes as they are (kit's `early_stopping` is passed apart)."""
        names = set(self.params.names()) - {"early_stopping"}
        return {k: v for k, v in params.items() if k in names}

    def fit(self, task: Any, params: dict[str, Any], seed: int, n_out: int, x_tr: pd.DataFrame, y_tr: np.ndarray,
            x_va: pd.DataFrame, y_va: np.ndarray, categorical: list[str]) -> tuple[list, list[dict]]:
        """One fold's models (one per label for multi-label, seeds seed + j), and the first model's curve."""
        if task.multi_label:
            fitted = [self.fit_model(_Binary(), params, seed + j, 1, x_tr, y_tr[:, j], x_va, y_va[:, j], categorical)
                      for j in range(y_tr.shape[1])]
            return [m for m, _ in fitted], fitted[0][1]
        model, hist = self.fit_model(task, params, seed, n_out, x_tr, y_tr, x_va, y_va, categorical)
        return [model], hist

    def predict(self, task: Any, models: list, x: pd.DataFrame, categorical: list[str]) -> np.ndarray:
        """Predictions of fitted fold models as the task shapes them."""
        cols = []
        for model in models:
            xx = self.model_input(x, categorical)
            p = np.asarray(model.predict_proba(xx) if task.classification else model.predict(xx), dtype=np.float64)
            if task.positive_probability or task.multi_label:  # one binary model: P(positive)
                p = p[:, 1]
            cols.append(p)
        return np.stack(cols, 1) if task.multi_label else cols[0]

    def fit_fold(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, callbacks: list | None = None, progress: bool = True) -> FoldOutput:
        """The fold's feature steps, then the trees on the declared columns."""
        steps = Pipeline(comp.feature_steps(params)) if comp.feature_steps(params) else None
        tr, va = data.train.iloc[train_idx], data.train.iloc[valid_idx]
        if steps is not None:
            tr = steps.fit_transform(tr, data.y[train_idx])
            va = steps.transform(va)
        num, cat = list(comp.numeric_features), list(comp.categorical_features)
        levels = fit_levels(tr, cat)
        x_tr, x_va = to_frame(tr, num, cat, levels), to_frame(va, num, cat, levels)
        scaler = comp.task.fit_target(data.y[train_idx])
        y_tr, y_va = scaler.transform_y(data.y[train_idx]), scaler.transform_y(data.y[valid_idx])
        models, hist = self.fit(comp.task, params, seed, comp.task.n_outputs(data.y, data.classes),
                                x_tr, y_tr, x_va, y_va, cat)
        valid = scaler.inverse(self.predict(comp.task, models, x_va, cat))
        predictor = TreePredictor(self.name, steps, models, levels, num, cat, scaler)
        return FoldOutput(valid=valid, test=predictor.predict(comp, data), history=hist, predictor=predictor)


class LightGBM(TreeFamily):
    """`--model lightgbm`."""

    name, package, params = "lightgbm", "lightgbm", LightGBMParams

    def search_space(self, trial: Any, defaults: dict[str, Any]) -> dict[str, Any]:
        """Learning rate, leaves, leaf size, row and column subsampling, L2."""
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        }

    def fit_model(self, task, params, seed, n_out, x_tr, y_tr, x_va, y_va, categorical):
        import lightgbm as lgb

        common = dict(random_state=seed, deterministic=True, force_row_wise=True, n_jobs=_threads(), verbose=-1,
                      subsample_freq=1, **self.library_params(params))
        model = lgb.LGBMClassifier(**common) if task.classification else lgb.LGBMRegressor(**common)
        # LightGBM >= 4.6 takes eval_X/eval_y (eval_set is deprecated there); older releases only eval_set
        x_cu, y_cu = curve_rows(x_tr, y_tr, seed)
        if "eval_X" in inspect.signature(model.fit).parameters:
            evals = {"eval_X": (x_cu, x_va), "eval_y": (y_cu, y_va)}
        else:
            evals = {"eval_set": [(x_cu, y_cu), (x_va, y_va)]}
        # named "training" (the booster's name for its training data) so that early stopping, which skips the set
        # of that name, watches the validation rows only, whether the curve's rows are all of them or a sample
        model.fit(x_tr, y_tr, **evals, eval_names=["training", "valid"],
                  callbacks=[lgb.early_stopping(int(params["early_stopping"]), verbose=False)])
        ev = model.evals_result_
        keys = list(ev)
        metric = next(iter(ev[keys[0]]))
        return model, _curve(ev[keys[0]][metric], ev[keys[1]][metric])


class XGBoost(TreeFamily):
    """`--model xgboost`."""

    name, package, params = "xgboost", "xgboost", XGBoostParams

    def search_space(self, trial: Any, defaults: dict[str, Any]) -> dict[str, Any]:
        """Learning rate, depth, leaf weight, row and column subsampling, L2."""
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        }

    def fit_model(self, task, params, seed, n_out, x_tr, y_tr, x_va, y_va, categorical):
        import xgboost as xgb

        common = dict(random_state=seed, n_jobs=_threads(), tree_method="hist", enable_categorical=True,
                      early_stopping_rounds=int(params["early_stopping"]), verbosity=0, **self.library_params(params))
        model = (xgb.XGBClassifier if task.classification else xgb.XGBRegressor)(**common)
        # early stopping watches the last eval set (the validation rows): the curve's sample changes no tree
        model.fit(x_tr, y_tr, eval_set=[curve_rows(x_tr, y_tr, seed), (x_va, y_va)], verbose=False)
        ev = model.evals_result()
        metric = next(iter(ev["validation_0"]))
        return model, _curve(ev["validation_0"][metric], ev["validation_1"][metric])


class CatBoost(TreeFamily):
    """`--model catboost` (on the GPU when CUDA is there)."""

    name, package, params = "catboost", "catboost", CatBoostParams

    def search_space(self, trial: Any, defaults: dict[str, Any]) -> dict[str, Any]:
        """Learning rate, depth, L2."""
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "depth": trial.suggest_int("depth", 2, 8),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.5, 30.0, log=True),
        }

    def model_input(self, x: pd.DataFrame, categorical: list[str], y: np.ndarray | None = None) -> Any:
        import catboost as cb

        x = x.copy()
        for c in categorical:  # CatBoost takes categories as strings; missing is its own level
            x[c] = x[c].astype(object).where(x[c].notna(), "NA").astype(str)
        return cb.Pool(x, y, cat_features=categorical)

    def fit_model(self, task, params, seed, n_out, x_tr, y_tr, x_va, y_va, categorical):
        import catboost as cb

        from kit.learner import default_device

        gpu = default_device().type == "cuda"
        common = dict(random_seed=seed, thread_count=_threads(), verbose=False, allow_writing_files=False,
                      od_type="Iter", od_wait=int(params["early_stopping"]), task_type="GPU" if gpu else "CPU",
                      **self.library_params(params))
        if not task.classification:
            model = cb.CatBoostRegressor(loss_function="RMSE", **common)
        else:
            model = cb.CatBoostClassifier(loss_function="MultiClass" if n_out > 1 else "Logloss", **common)
        model.fit(self.model_input(x_tr, categorical, y_tr), eval_set=self.model_input(x_va, categorical, y_va),
                  use_best_model=True)
        ev = model.get_evals_result()
        valid = next(iter(ev.get("validation", {}).values()), [])
        learn = next(iter(ev.get("learn", {}).values()), [])
        return model, _curve(learn, valid)


@dataclass
class TreePredictor:
    """The fold's fitted feature steps, category levels and gradient-boosted model(s)."""

    family: str
    steps: Any
    models: list
    levels: dict[str, list[str]]
    numeric: list[str]
    categorical: list[str]
    scaler: TargetScaler

    def predict(self, comp: Any, data: Any) -> np.ndarray:
        """Predictions for `data.test`, in target units."""
        te = self.steps.transform(data.test) if self.steps is not None else data.test
        x = to_frame(te, self.numeric, self.categorical, self.levels)
        return self.scaler.inverse(FAMILIES[self.family].predict(comp.task, self.models, x, self.categorical))


FAMILIES: dict[str, TreeFamily] = {f.name: f for f in (LightGBM(), CatBoost(), XGBoost())}


class _Binary:
    name, classification, multi_label, single_label, positive_probability = "binary", True, False, True, True

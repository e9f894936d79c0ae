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

import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kit.errors import KitError


@dataclass(frozen=True)
class Family:
    """A model family: its package, default parameters and Optuna search space."""

    name: str
    package: str
    defaults: dict[str, Any]

    def require(self) -> None:
        """A one-line error naming the package when the library is not installed."""
        if importlib.util.find_spec(self.package) is None:
            raise KitError(f"--model {self.name} needs the {self.package} package: pip install {self.package}")


LIGHTGBM = Family("lightgbm", "lightgbm", {
    "n_estimators": 3000, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 20, "subsample": 0.8,
    "colsample_bytree": 0.8, "reg_lambda": 1.0, "early_stopping": 100,
})
CATBOOST = Family("catboost", "catboost", {
    "iterations": 3000, "learning_rate": 0.05, "depth": 6, "l2_leaf_reg": 3.0, "early_stopping": 100,
})
XGBOOST = Family("xgboost", "xgboost", {
    "n_estimators": 3000, "learning_rate": 0.03, "max_depth": 6, "min_child_weight": 1.0, "subsample": 0.8,
    "colsample_bytree": 0.8, "reg_lambda": 1.0, "max_cat_to_onehot": 8, "early_stopping": 100,
})
FAMILIES = {f.name: f for f in (LIGHTGBM, CATBOOST, XGBOOST)}


def search_space(family: str, trial) -> dict[str, Any]:
    """The family's hyper-parameters for one Optuna trial."""
    if family == "lightgbm":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        }
    if family == "xgboost":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 50.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        }
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "depth": trial.suggest_int("depth", 2, 8),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.5, 30.0, log=True),
    }


def check_params(family: str, params: dict[str, Any]) -> None:
    """Values the family cannot use."""
    for key in ("n_estimators", "iterations", "num_leaves", "min_child_samples", "depth", "max_depth",
                "early_stopping"):
        if key in params and int(params[key]) < 1:
            raise KitError(f"--model {family}: {key} must be >= 1 (got {params[key]})")
    if not 0 < float(params.get("learning_rate", 0.1)) <= 1:
        raise KitError(f"--model {family}: learning_rate must be in (0, 1] (got {params['learning_rate']})")


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
    import torch

    return max(1, torch.get_num_threads())


def _lightgbm(task: Any, params: dict[str, Any], seed: int, n_out: int, x_tr, y_tr, x_va, y_va):
    import lightgbm as lgb

    p = {k: v for k, v in params.items() if k in LIGHTGBM.defaults and k != "early_stopping"}
    common = dict(random_state=seed, deterministic=True, force_row_wise=True, n_jobs=_threads(), verbose=-1,
                  subsample_freq=1, **p)
    if not task.classification:
        model = lgb.LGBMRegressor(**common)
    else:
        model = lgb.LGBMClassifier(**common)
    # LightGBM >= 4.6 takes eval_X/eval_y (eval_set is deprecated there); older releases only eval_set
    if "eval_X" in inspect.signature(model.fit).parameters:
        evals = {"eval_X": (x_tr, x_va), "eval_y": (y_tr, y_va)}
    else:
        evals = {"eval_set": [(x_tr, y_tr), (x_va, y_va)]}
    model.fit(x_tr, y_tr, **evals, callbacks=[lgb.early_stopping(int(params["early_stopping"]), verbose=False)])
    ev = model.evals_result_
    keys = list(ev)
    metric = next(iter(ev[keys[0]]))
    hist = [{"train_loss": float(a), "valid_loss": float(b)} for a, b in zip(ev[keys[0]][metric],
                                                                          ev[keys[1]][metric], strict=False)]
    return model, hist


def _xgboost(task: Any, params: dict[str, Any], seed: int, n_out: int, x_tr, y_tr, x_va, y_va):
    import xgboost as xgb

    p = {k: v for k, v in params.items() if k in XGBOOST.defaults and k != "early_stopping"}
    common = dict(random_state=seed, n_jobs=_threads(), tree_method="hist", enable_categorical=True,
                  early_stopping_rounds=int(params["early_stopping"]), verbosity=0, **p)
    model = (xgb.XGBClassifier if task.classification else xgb.XGBRegressor)(**common)
    model.fit(x_tr, y_tr, eval_set=[(x_tr, y_tr), (x_va, y_va)], verbose=False)
    ev = model.evals_result()
    metric = next(iter(ev["validation_0"]))
    hist = [{"train_loss": float(a), "valid_loss": float(b)} for a, b in zip(ev["validation_0"][metric],
                                                                          ev["validation_1"][metric], strict=False)]
    return model, hist


def _catboost(task: Any, params: dict[str, Any], seed: int, n_out: int, x_tr, y_tr, x_va, y_va, cats: list[str]):
    import catboost as cb

    from kit.learner import default_device

    p = {k: v for k, v in params.items() if k in CATBOOST.defaults and k != "early_stopping"}
    gpu = default_device().type == "cuda"
    common = dict(random_seed=seed, thread_count=_threads(), verbose=False, allow_writing_files=False,
                  od_type="Iter", od_wait=int(params["early_stopping"]), task_type="GPU" if gpu else "CPU", **p)
    if not task.classification:
        model = cb.CatBoostRegressor(loss_function="RMSE", **common)
    else:
        model = cb.CatBoostClassifier(loss_function="MultiClass" if n_out > 1 else "Logloss", **common)

    model.fit(_catboost_pool(x_tr, cats, y_tr), eval_set=_catboost_pool(x_va, cats, y_va), use_best_model=True)
    ev = model.get_evals_result()
    valid = next(iter(ev.get("validation", {}).values()), [])
    learn = next(iter(ev.get("learn", {}).values()), [])
    hist = [{"train_loss": float(a), "valid_loss": float(b)} for a, b in zip(learn, valid, strict=False)]
    return model, hist


def _catboost_pool(x: pd.DataFrame, cats: list[str], y: np.ndarray | None = None):
    import catboost as cb

    x = x.copy()
    for c in cats:  # CatBoost takes categories as strings; missing is its own level
        x[c] = x[c].astype(object).where(x[c].notna(), "NA").astype(str)
    return cb.Pool(x, y, cat_features=cats)


def predict(family: str, task: Any, models: list, x: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    """Predictions of fitted fold models (one per label for multi-label) as the task shapes them."""
    cols = []
    for model in models:
        xx = _catboost_pool(x, categorical) if family == "catboost" else x
        p = np.asarray(model.predict_proba(xx) if task.classification else model.predict(xx), dtype=np.float64)
        if task.positive_probability or task.multi_label:  # one binary model: P(positive)
            p = p[:, 1]
        cols.append(p)
    return np.stack(cols, 1) if task.multi_label else cols[0]


def fit(family: str, task: Any, params: dict[str, Any], seed: int, n_out: int, x_tr: pd.DataFrame,
        y_tr: np.ndarray, x_va: pd.DataFrame, y_va: np.ndarray, categorical: list[str]) -> tuple[list, list[dict]]:
    """One fold's models (one per label for multi-label: no GBDT library has a multi-label objective), fit on
    the training rows with early stopping on the validation rows; and the first model's learning curve."""
    if task.multi_label:
        fitted = [fit(family, _Binary(), params, seed + j, 1, x_tr, y_tr[:, j], x_va, y_va[:, j], categorical)
                  for j in range(y_tr.shape[1])]
        return [m[0][0] for m in fitted], fitted[0][1]
    if family == "lightgbm":
        model, hist = _lightgbm(task, params, seed, n_out, x_tr, y_tr, x_va, y_va)
    elif family == "xgboost":
        model, hist = _xgboost(task, params, seed, n_out, x_tr, y_tr, x_va, y_va)
    else:
        model, hist = _catboost(task, params, seed, n_out, x_tr, y_tr, x_va, y_va, categorical)
    return [model], hist


class _Binary:
    name, classification, multi_label, single_label, positive_probability = "binary", True, False, True, True

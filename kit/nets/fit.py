"""One fold of a tabular net (`mlp` or `tabm`) in fastai's Learner.

The fold's feature steps, then `NetFeatures` (fit on the training fold); the task's loss (label smoothing for
classification unless the metric scores probabilities, the mean over heads for TabM); batch size and epochs
chosen from the training rows when left at 0; `fit_one_cycle` (or `fit_flat_cos`) with the weights of the
best validation epoch restored (`BestEpoch`). Regression targets are standardised on the training fold after
`log1p` when they are non-negative and skewed (a price fit on its raw scale lets a few large values dominate
the loss), and predictions are clipped to the training fold's target range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from kit import learner
from kit.errors import KitError
from kit.losses import EnsembleLoss
from kit.nets.callbacks import BestEpoch
from kit.nets.features import NUM_TRANSFORMS, NetFeatures
from kit.nets.modules import TabM, TabularMLP
from kit.predictors import MLPPredictor, cpu_copy
from kit.spec import Data, FoldOutput
from kit.tasks import TargetScaler

SCHEDULES = ("one_cycle", "flat_cos")
TARGET_TRANSFORMS = ("auto", "none", "log1p")
SKEW_FOR_LOG = 2.0  # |skewness| above which a non-negative regression target is fit on log1p (auto)


def auto_batch_size(n_rows: int) -> int:
    """A power of two near n/64, between 32 and 1024: a fixed 64 made a 500k-row table take 6,000+ steps an
    epoch, and a tiny table still gets several steps an epoch."""
    return int(2 ** np.clip(round(np.log2(max(n_rows, 1) / 64)), 5, 10))


def auto_epochs(n_rows: int, bs: int, steps: int = 1500, rows: float = 6e5, lo: int = 4, hi: int = 40) -> int:
    """About `steps` optimiser steps, but at most `rows` rows seen per fold (between `lo` and `hi` epochs): small
    tables get the steps a net needs, large ones a cost that grows like a tree ensemble's, with the rows."""
    per_epoch = max(1, n_rows // bs)
    return int(np.clip(round(min(steps / per_epoch, rows / max(n_rows, 1))), lo, hi))


def target_scaler(task: Any, y: np.ndarray, transform: str) -> TargetScaler:
    """The fold's target scaling (classification: the task's): `auto` keeps a declared or metric-chosen
    transform (rmsle: log1p) and adds log1p for a skewed non-negative target; clipped to the fold's range."""
    if task.classification:
        return task.fit_target(y)
    if transform == "auto":
        chosen = task.transform if task.transform or getattr(task, "_declared", False) else (
            "log1p" if _skewed(y) else None)
    else:
        chosen = None if transform == "none" else transform
    if chosen == "log1p" and np.min(y) <= -1:
        raise KitError("target_transform=log1p needs targets > -1")
    return TargetScaler(transform=chosen, lower=float(np.min(y)), upper=float(np.max(y))).fit(y)


def _skewed(y: np.ndarray) -> bool:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or np.min(y) < 0 or np.std(y) == 0:
        return False
    skew = float(np.mean(((y - y.mean()) / y.std()) ** 3))
    return skew > SKEW_FOR_LOG


def target_type(task: Any) -> str | None:
    """scikit-learn TargetEncoder's name for the task's targets (None: multi-label, which it cannot encode)."""
    if task.multi_label:
        return None
    if not task.classification:
        return "continuous"
    return "binary" if task.name == "binary" else "multiclass"


def check_params(params: dict[str, Any], where: str) -> None:
    """The values a net cannot use, in one line naming the parameter."""
    for key in ("width", "depth", "n_models", "d_emb", "k", "max_levels"):
        if key in params and int(params[key]) < 1:
            raise KitError(f"{where}: {key} must be >= 1 (got {params[key]})")
    for key in ("epochs", "bs"):
        if key in params and int(params[key]) < 0:
            raise KitError(f"{where}: {key} must be >= 1, or 0 to choose it from the data size (got {params[key]})")
    if not 0 <= float(params.get("dropout", 0.0)) < 1:
        raise KitError(f"{where}: dropout must be in [0, 1) (got {params['dropout']})")
    if not 0 <= float(params.get("label_smoothing", 0.0)) < 0.5:
        raise KitError(f"{where}: label_smoothing must be in [0, 0.5) (got {params['label_smoothing']})")
    if float(params.get("lr", 1e-3)) <= 0 or float(params.get("wd", 0.0)) < 0:
        raise KitError(f"{where}: lr must be > 0 and wd >= 0 (got lr={params.get('lr')}, wd={params.get('wd')})")
    choices = {"num_transform": NUM_TRANSFORMS, "num_emb": ("periodic", "none"), "schedule": SCHEDULES,
               "target_transform": TARGET_TRANSFORMS}
    for key, allowed in choices.items():
        if key in params and params[key] not in allowed:
            raise KitError(f"{where}: {key} must be one of {', '.join(allowed)} (got {params[key]!r})")


def smoothing(comp: Any, params: dict[str, Any]) -> float:
    """Label smoothing for classification, none when the metric scores probabilities' calibration."""
    if not comp.task.classification or comp.metric.name in ("logloss",):
        return 0.0
    return float(params.get("label_smoothing", 0.0))


def build(kind: str, enc: NetFeatures, n_out: int, comp: Any, params: dict[str, Any]):
    """The fold's module for `kind` (mlp | tabm)."""
    common = dict(width=int(params["width"]), depth=int(params["depth"]), dropout=float(params["dropout"]),
                  num_emb=params.get("num_emb", "periodic"), d_emb=int(params.get("d_emb", 16)),
                  emb_scale=float(params.get("emb_scale", 0.1)))
    if kind == "tabm":
        task = comp.task
        combine = "identity" if not task.classification else ("softmax" if task.single_label and n_out > 1
                                                               else "sigmoid")
        return TabM(enc.n_numeric, enc.cardinalities, n_out, combine, k=int(params.get("k", 16)), **common)
    return TabularMLP(enc.n_numeric, enc.cardinalities, n_out, **common)


def fit_fold(
    kind: str,
    comp: Any,
    data: Data,
    train_idx: np.ndarray,
    valid_idx: np.ndarray,
    params: dict[str, Any],
    seed: int,
    callbacks: list | None = None,
    progress: bool = True,
) -> FoldOutput:
    """Features on the fold, then `n_models` nets (seeds seed, seed + 1000, ...) averaged."""
    enc = NetFeatures(list(comp.numeric_features), list(comp.categorical_features),
                      num_transform=params.get("num_transform", "robust"),
                      max_levels=int(params.get("max_levels", 1000)),
                      target_type=target_type(comp.task) if params.get("target_encode", True) else None, seed=seed)
    pipe = Pipeline([*comp.feature_steps(params), ("net", enc)])
    x_train = np.asarray(pipe.fit_transform(data.train.iloc[train_idx], data.y[train_idx]), dtype=np.float32)
    x_valid = np.asarray(pipe.transform(data.train.iloc[valid_idx]), dtype=np.float32)
    scaler = target_scaler(comp.task, data.y[train_idx], params.get("target_transform", "auto"))
    y_train, y_valid = scaler.transform_y(data.y[train_idx]), scaler.transform_y(data.y[valid_idx])
    n_out = comp.task.n_outputs(data.y, data.classes)
    bs = int(params.get("bs", 0)) or auto_batch_size(len(train_idx))
    epochs = int(params.get("epochs", 0)) or auto_epochs(len(train_idx), bs)
    fit_params = {**params, "bs": bs, "epochs": epochs}
    loss = comp.task.loss(smoothing(comp, params))
    if kind == "tabm":
        loss = EnsembleLoss(loss)
    valid, models, hist = [], [], []
    for m in range(int(params.get("n_models", 1))):
        learner.seed_everything(seed + 1000 * m)
        dls, _ = learner.tensor_dataloaders(x_train, y_train, x_valid, y_valid, x_valid[:0], bs, comp.task)
        learn = learner.make_learner(dls, build(kind, enc, n_out, comp, params), comp.task, fit_params,
                                     metrics=[learner.competition_metric(comp, scaler)], loss_func=loss,
                                     opt_func=learner.torch_adamw)
        best = BestEpoch()
        cbs = [best, *(callbacks or [])] if m == 0 else [best]  # pruning watches the first model only
        learner.fit(learn, fit_params, cbs=cbs, progress=progress, schedule=params.get("schedule", "one_cycle"))
        hist = hist or learner.history(learn)
        valid.append(scaler.inverse(learner.predict(learn, dls.valid, comp.task)))
        models.append(cpu_copy(learn.model))
    predictor = MLPPredictor(pipe, models, scaler, max(bs, 1024))
    return FoldOutput(valid=np.mean(valid, axis=0), test=predictor.predict(comp, data), history=hist,
                      predictor=predictor)


def search_space(kind: str, trial) -> dict[str, Any]:
    """The net's hyper-parameters for one Optuna trial (epochs and batch size stay chosen by data size)."""
    space = {
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "width": trial.suggest_categorical("width", [128, 256, 512]),
        "depth": trial.suggest_int("depth", 1, 4),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "wd": trial.suggest_float("wd", 1e-6, 1e-2, log=True),
        "label_smoothing": trial.suggest_categorical("label_smoothing", [0.0, 0.1]),
        "num_emb": trial.suggest_categorical("num_emb", ["periodic", "none"]),
    }
    if kind == "tabm":
        space["k"] = trial.suggest_categorical("k", [8, 16, 32])
    return space

"""The scale a tabular net's regression target is fit on, chosen per fold from the training fold alone.

`target_transform=auto` keeps a declared or metric-chosen transform (rmsle: log1p) and fits a skewed non-negative
target on log1p when the metric does not score squared error. Under RMSE (MEAN_METRICS) the raw scale is the
default, and log1p with the mean restored (`log1p_mean`: a least-squares factor on the training rows' predictions,
mean_factor) only where a probe on the training fold says it pays: two LightGBM models cross-fitted on two halves of
the training fold, one on the raw target and one on log1p_mean, and their paired squared errors on the held-out
halves. The log scale is taken when it is better by more than LOG_PROBE_Z standard errors of the paired difference.

Why a probe and not a rule on the target's shape: a price with multiplicative noise (log-normal) is fit better
on the log scale, while counts with many zeros and mildly skewed prices are fit better raw, and no threshold on
skewness separates them (bench/results/tabular-ab.md, "The regression target's scale chosen per fold": the
generated used-car prices preferred the log by 1.1 % RMSE for the net at a skewness of 3.3, OFP visits preferred
raw at 3.3). A gradient-boosted tree model is a cheap stand-in for the net here (~1.3 s a fold at 38,400 rows on
one thread), and on the choice tables it preferred the scale the net preferred.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from kit.errors import KitError
from kit.tasks import TargetScaler

SKEW_FOR_LOG = 2.0  # |skewness| above which a non-negative regression target is fit on log1p (auto)
# Squared-error metrics reward the conditional mean; a net fit on log1p predicts a geometric mean below it. On the
# skewed choice tables (bench/results/tabular-ab.md) RMSE on log1p was worse than on the raw scale by 6.5 % (PSID
# earnings) and 4.0 % (OFP visits), a tie on doctor contacts; log1p_mean (the mean restored) in between. `auto`
# fits them raw (standardised, clipped to the fold's range, which keeps a test outlier from an absurd prediction)
# unless the probe (log_scale_pays) finds log1p_mean better.
MEAN_METRICS = ("rmse", "r2")
# The probe's margin in standard errors of the mean paired difference of squared errors: on the choice tables'
# folds (2 x 5 each) the z of the generated prices was 2.1-5.8 (above 3 in 8 of 10), of every other regression
# table at most 2.0 (computers, OFP, PSID, DoctorContacts, BudgetFood); under no difference z > 3 happens in 0.1 %
# of folds, so a table where the scale does not matter keeps the raw scale's bytes.
LOG_PROBE_Z = 3.0
PROBE_MIN_ROWS = 1000  # fewer training rows: no probe (the raw scale)
PROBE_PARAMS = dict(n_estimators=300, learning_rate=0.2, max_bin=63, verbose=-1, deterministic=True,
                    force_col_wise=True)
PROBE_PATIENCE = 30  # rounds without improvement on the held-out half before a probe model stops


def target_scaler(task: Any, y: np.ndarray, transform: str, metric: str | None = None) -> TargetScaler:
    """The fold's target scaling (classification: the task's): `auto` keeps a declared or metric-chosen
    transform (rmsle: log1p) and adds log1p for a skewed non-negative target unless `metric` scores squared
    error (MEAN_METRICS); clipped to the fold's range."""
    if task.classification:
        return task.fit_target(y)
    if transform == "auto":
        chosen = task.transform if _declared(task) else (
            "log1p" if _skew(y) > SKEW_FOR_LOG and metric not in MEAN_METRICS else None)
    else:
        chosen = {"none": None, "log1p_mean": "log1p"}.get(transform, transform)
    if chosen == "log1p" and np.min(y) <= -1:
        raise KitError("target_transform=log1p needs targets > -1")
    return TargetScaler(transform=chosen, lower=float(np.min(y)), upper=float(np.max(y))).fit(y)


def fold_target(task: Any, y: np.ndarray, transform: str, metric: str | None, x: np.ndarray, seed: int,
                threads: int = 1) -> tuple[TargetScaler, bool]:
    """The fold's target scaling and whether the mean is restored after log1p (`log1p_mean`, or `auto` where
    the probe on the training fold's features `x` finds it pays)."""
    if transform == "auto" and probe_applies(task, y, metric) and log_scale_pays(x, y, seed, threads):
        transform = "log1p_mean"
    scaler = target_scaler(task, y, transform, metric)
    return scaler, transform == "log1p_mean" and scaler.transform == "log1p"


def probe_applies(task: Any, y: np.ndarray, metric: str | None) -> bool:
    """Whether `auto` asks the probe: a single non-negative, right-skewed regression target scored by squared
    error, nothing declared, enough rows."""
    y = np.asarray(y, dtype=np.float64)
    return (not task.classification and y.ndim == 1 and len(y) >= PROBE_MIN_ROWS and metric in MEAN_METRICS
            and not _declared(task) and np.isfinite(y).all() and np.min(y) >= 0 and _skew(y) > 0)


def log_scale_pays(x: np.ndarray, y: np.ndarray, seed: int, threads: int = 1) -> bool:
    """Whether LightGBM fit on log1p (mean restored) beats it fit on the raw target by more than LOG_PROBE_Z
    standard errors of the paired squared errors, cross-fitted on two halves of (x, y)."""
    z = log_probe_z(x, y, seed, threads)
    return z > LOG_PROBE_Z


def log_probe_z(x: np.ndarray, y: np.ndarray, seed: int, threads: int = 1) -> float:
    """The probe's statistic: mean / standard error of (raw error)^2 - (log1p_mean error)^2 over all rows, each
    predicted by the models fit on the other half."""
    y = np.asarray(y, dtype=np.float64)
    raw, log = np.empty_like(y), np.empty_like(y)
    for a, b in KFold(2, shuffle=True, random_state=seed).split(x):
        raw[b] = _probe(x[a], y[a], x[b], y[b], seed, threads)[1]
        fit_a, log_b = _probe(x[a], np.log1p(y[a]), x[b], np.log1p(y[b]), seed, threads)
        factor = mean_factor(y[a], np.expm1(fit_a))
        log[b] = np.exp(log_b) * factor - 1.0
    d = (raw - y) ** 2 - (log - y) ** 2
    se = float(np.std(d, ddof=1)) / np.sqrt(len(d))
    return float(np.mean(d)) / se if se > 0 else 0.0


def _probe(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray, seed: int,
           threads: int) -> tuple[np.ndarray, np.ndarray]:
    """A probe model fit on half a, stopped early on half b: its predictions for a and for b."""
    import lightgbm as lgb

    model = lgb.LGBMRegressor(**PROBE_PARAMS, random_state=seed, n_jobs=threads)
    model.fit(x_a, y_a, eval_set=[(x_b, y_b)], callbacks=[lgb.early_stopping(PROBE_PATIENCE, verbose=False)])
    return model.predict(x_a), model.predict(x_b)


def mean_factor(y: np.ndarray, pred: np.ndarray) -> float:
    """The least-squares scale of 1 + pred onto 1 + y (training rows): a net fit on log1p predicts a conditional
    geometric mean, below the arithmetic mean that RMSE rewards by a factor growing with the noise (the bias
    Duan's 1983 smearing estimate corrects; fitted here by least squares, the squared error's own criterion)."""
    a, b = 1.0 + np.asarray(pred, dtype=np.float64).ravel(), 1.0 + np.asarray(y, dtype=np.float64).ravel()
    den = float(a @ a)
    return float(a @ b / den) if den > 0 else 1.0


def _declared(task: Any) -> bool:
    """Whether the task has its own transform: declared (none included), or chosen by its metric (rmsle: log1p)."""
    return bool(task.transform) or bool(getattr(task, "_declared", False))


def _skew(y: np.ndarray) -> float:
    """Skewness of a non-negative 1-d target; 0 for anything else (negative values, constant, several columns)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or np.min(y) < 0 or np.std(y) == 0:
        return 0.0
    return float(np.mean(((y - y.mean()) / y.std()) ** 3))

"""Competition metrics: `Metric` objects (name, function, what they score, direction) and the built-in ones.

A metric takes the encoded truth (class indices for binary/multiclass, a 0/1 matrix for multi-label, numbers
for regression) and either decoded predictions (`needs="labels"`) or probabilities / values (`needs="probs"`:
binary (n,), multiclass and multi-label (n, k)). A competition declares a built-in by name or its own `Metric`
in its folder. Most wrap scikit-learn; F-beta over samples is written out because the threshold search
calls it thousands of times on 40,000 x 17 matrices and works on its counts directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn import metrics as skm

from kit.errors import KitError


@dataclass(frozen=True)
class Metric:
    """A competition metric: what it is called, how it is computed, what it scores and which way is better."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    needs: Literal["labels", "probs"] = "labels"
    greater_is_better: bool = True
    # regression: the space the model is trained in when the competition declares no transform
    # (RMSLE is RMSE of log1p, so training on log1p targets optimises it directly)
    target_transform: str | None = None

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(y_pred)))

    def __str__(self) -> str:
        return self.name

    @property
    def direction(self) -> str:
        """Optuna's direction: 'maximize' or 'minimize'."""
        return "maximize" if self.greater_is_better else "minimize"

    @property
    def takes_probs(self) -> bool:
        """Whether the metric scores probabilities (log loss, AUC) rather than decoded predictions."""
        return self.needs == "probs"

    def better(self, a: float, b: float) -> bool:
        """Whether score `a` is strictly better than `b`."""
        return a > b if self.greater_is_better else a < b


# ---- functions ---------------------------------------------------------------------------------------
def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of exact matches (rows of a 2-D array must match whole)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    eq = y_true == y_pred
    if eq.ndim > 1:
        eq = eq.all(axis=1)
    return float(eq.mean())


def accuracy_multi(y_true: np.ndarray, probs: np.ndarray, thresh: float = 0.5) -> float:
    """fastai's accuracy_multi: element-wise accuracy of `probs >= thresh` over all labels."""
    return float(((np.asarray(probs) >= thresh) == np.asarray(y_true).astype(bool)).mean())


def fbeta_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """Per-sample F-beta from counts; 0 where a sample has no true and no predicted label (sklearn's default)."""
    b2 = beta * beta
    num = (1 + b2) * tp
    den = num + b2 * fn + fp
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape, dtype=np.float64), where=den > 0)


def fbeta_samples(y_true: np.ndarray, y_pred: np.ndarray, beta: float = 2.0) -> float:
    """F-beta averaged over samples (Planet's score with beta=2) for 0/1 label matrices."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    tp = (t & p).sum(axis=1)
    fp = (~t & p).sum(axis=1)
    fn = (t & ~p).sum(axis=1)
    return float(fbeta_counts(tp, fp, fn, beta).mean())


def f2_samples(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-sample F2 (Planet: Understanding the Amazon from Space)."""
    return fbeta_samples(y_true, y_pred, beta=2.0)


def f1_samples(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-sample F1 of 0/1 label matrices."""
    return fbeta_samples(y_true, y_pred, beta=1.0)


def label_matrix(label_strings: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Space-separated label strings ('clear primary') -> 0/1 matrix over `classes` (others ignored)."""
    col = {c: j for j, c in enumerate(classes)}
    out = np.zeros((len(label_strings), len(classes)), dtype=np.int64)
    for i, s in enumerate(label_strings):
        for t in str(s).split():
            if t in col:
                out[i, col[t]] = 1
    return out


def _n_classes(y: np.ndarray, probs: np.ndarray) -> int:
    return probs.shape[1] if probs.ndim == 2 else 2


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Log loss: binary (probabilities of the positive class), multiclass (n, k) or multi-label (mean per label)."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if y.ndim == 2:  # multi-label: mean binary log loss over the labels
        return float(np.mean([skm.log_loss(y[:, j], p[:, j], labels=[0, 1]) for j in range(y.shape[1])]))
    return float(skm.log_loss(y, p, labels=list(range(_n_classes(y, p)))))


def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC: binary, multiclass (one-vs-rest, macro) or multi-label (macro over labels)."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if y.ndim == 1 and p.ndim == 2:
        return float(skm.roc_auc_score(y, p, multi_class="ovr", labels=list(range(p.shape[1]))))
    return float(skm.roc_auc_score(y, p))


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1: of the positive class for binary labels, macro over classes for multiclass, over samples for multi-label."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    if y.ndim == 2:
        return f1_samples(y, p)
    if set(np.unique(y)) | set(np.unique(p)) <= {0, 1}:
        return float(skm.f1_score(y, p, zero_division=0))
    return float(skm.f1_score(y, p, average="macro", zero_division=0))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 averaged over classes (macro)."""
    return float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error over the targets present (a NaN truth, e.g. a keypoint not annotated, is skipped)."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.nanmean(d * d)))


def rmsle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared logarithmic error (Kaggle's RMSLE); predictions below -1 are an error."""
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if (p <= -1).any() or (y <= -1).any():
        raise KitError("rmsle: values must be greater than -1")
    return rmse(np.log1p(y), np.log1p(p))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    return float(skm.mean_absolute_error(y_true, y_pred))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination."""
    return float(skm.r2_score(y_true, y_pred))


BUILTIN: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", accuracy),
    Metric("logloss", log_loss, needs="probs", greater_is_better=False),
    Metric("auc", roc_auc, needs="probs"),
    Metric("f1", f1),
    Metric("f1_macro", f1_macro),
    Metric("f1_samples", f1_samples),
    Metric("f2_samples", f2_samples),
    Metric("rmse", rmse, greater_is_better=False),
    Metric("rmsle", rmsle, greater_is_better=False, target_transform="log1p"),
    Metric("mae", mae, greater_is_better=False),
    Metric("r2", r2),
)}
ALIASES = {"log_loss": "logloss", "roc_auc": "auc", "mean_f2": "f2_samples"}


def get(metric: str | Metric) -> Metric:
    """A built-in metric by name (or the `Metric` given); a KitError listing the names when unknown."""
    if isinstance(metric, Metric):
        return metric
    name = ALIASES.get(str(metric), str(metric))
    if name not in BUILTIN:
        raise KitError(f"unknown metric {metric!r}; built in: {', '.join(BUILTIN)} "
                       "(or declare a kit.metrics.Metric in the competition's folder)")
    return BUILTIN[name]

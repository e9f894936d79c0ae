"""Competition metrics on numpy arrays (each checked against scikit-learn in the tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


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


def label_matrix(label_strings: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Space-separated label strings ('clear primary') -> 0/1 matrix over `classes` (others ignored)."""
    col = {c: j for j, c in enumerate(classes)}
    out = np.zeros((len(label_strings), len(classes)), dtype=np.int64)
    for i, s in enumerate(label_strings):
        for t in str(s).split():
            if t in col:
                out[i, col[t]] = 1
    return out


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f2_samples": f2_samples,
    "rmse": rmse,
}
LOWER_IS_BETTER = {"rmse"}

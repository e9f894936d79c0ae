"""Decision thresholds chosen on out-of-fold predictions.

`best_threshold` sweeps one threshold over a grid (vectorised: one pass over the grid for all rows);
`per_class_thresholds` finds one threshold per label for F-beta averaged over samples by exact
coordinate ascent. scikit-learn's TunedThresholdClassifierCV only handles binary estimators it fits
itself, and no library searches per-class thresholds for a samples-averaged F-beta, hence this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kit import metrics
from kit.metrics import Metric

DEFAULT_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


@dataclass
class ThresholdResult:
    """One threshold for all outputs, with the metric curve it was chosen from."""

    threshold: float
    score: float
    baseline: float  # metric at 0.5
    grid: np.ndarray
    curve: np.ndarray

    def as_dict(self) -> dict:
        """JSON-friendly summary."""
        return {"threshold": self.threshold, "score": self.score, "score_at_0.5": self.baseline}


def _curve_accuracy(y: np.ndarray, probs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    y = np.asarray(y).astype(bool)
    if probs.ndim == 1:
        pred = probs[:, None] >= grid[None, :]  # (n, T)
        return (pred == y[:, None]).mean(axis=0)
    return np.array([metrics.accuracy(y, probs >= t) for t in grid])


def _curve_fbeta(y: np.ndarray, probs: np.ndarray, grid: np.ndarray, beta: float) -> np.ndarray:
    y = np.asarray(y).astype(bool)
    npos = y.sum(axis=1)
    out = np.empty(len(grid))
    # chunks over the grid keep the (n, k, T) boolean block small for 40,000 x 17 inputs
    step = max(1, int(2e7 // max(1, y.size)))
    for s in range(0, len(grid), step):
        g = grid[s : s + step]
        pred = probs[:, :, None] >= g[None, None, :]
        tp = (pred & y[:, :, None]).sum(axis=1)
        npred = pred.sum(axis=1)
        fp = npred - tp
        fn = npos[:, None] - tp
        out[s : s + step] = metrics.fbeta_counts(tp, fp, fn, beta).mean(axis=0)
    return out


def threshold_curve(
    y: np.ndarray,
    probs: np.ndarray,
    metric: Metric | str,
    grid: np.ndarray = DEFAULT_GRID,
    post: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The metric at every threshold of `grid` (one threshold shared by all outputs).

    `post` changes the thresholded 0/1 predictions before scoring (e.g. at least one label per row).
    """
    metric = metrics.get(metric)
    probs = np.asarray(probs, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    if post is None and metric.name == "accuracy":
        return _curve_accuracy(y, probs, grid)
    if post is None and metric.name in ("f2_samples", "f1_samples"):
        return _curve_fbeta(y, probs, grid, beta=2.0 if metric.name == "f2_samples" else 1.0)
    post = post or (lambda pred: pred)
    return np.array([metric(y, post((probs >= t).astype(np.int64))) for t in grid])


def best_threshold(
    y: np.ndarray,
    probs: np.ndarray,
    metric: Metric | str,
    grid: np.ndarray = DEFAULT_GRID,
    post: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ThresholdResult:
    """The grid threshold with the best `metric` (its direction respected); ties go to the threshold nearest 0.5."""
    metric = metrics.get(metric)
    grid = np.asarray(grid, dtype=np.float64)
    curve = threshold_curve(y, probs, metric, grid, post)
    signed = curve if metric.greater_is_better else -curve
    candidates = np.flatnonzero(np.isclose(signed, signed.max(), rtol=0, atol=1e-12))
    i = candidates[np.argmin(np.abs(grid[candidates] - 0.5))]
    baseline = float(threshold_curve(y, probs, metric, np.array([0.5]), post)[0])
    return ThresholdResult(float(grid[i]), float(curve[i]), baseline, grid, curve)


@dataclass
class PerClassResult:
    """Per-class thresholds for samples-averaged F-beta, with what the rare-class guard changed."""

    thresholds: np.ndarray  # the thresholds to use (after the guard)
    raw: np.ndarray  # exact coordinate-ascent optimum before the guard
    global_threshold: float
    score: float  # OOF metric with `thresholds`
    raw_score: float
    global_score: float
    baseline: float  # at 0.5
    n_pos: np.ndarray
    passes: int
    fell_back: bool = False  # guard made things worse than the global threshold: global used
    classes: list[str] = field(default_factory=list)

    def report(self) -> list[dict]:
        """One row per class: positives, raw and guarded threshold."""
        names = self.classes or [str(i) for i in range(len(self.thresholds))]
        return [
            {"class": n, "n_pos": int(p), "raw": float(r), "guarded": float(t), "shift": float(t - r)}
            for n, p, r, t in zip(names, self.n_pos, self.raw, self.thresholds, strict=True)
        ]

    def as_dict(self) -> dict:
        """JSON-friendly summary."""
        return {
            "global_threshold": self.global_threshold,
            "score_at_0.5": self.baseline,
            "score_global": self.global_score,
            "score_per_class_raw": self.raw_score,
            "score_per_class": self.score,
            "fell_back_to_global": self.fell_back,
            "passes": self.passes,
            "classes": self.report(),
        }


def _fbeta_mean(y: np.ndarray, pred: np.ndarray, beta: float) -> float:
    return metrics.fbeta_samples(y, pred, beta)


def per_class_thresholds(
    y: np.ndarray,
    probs: np.ndarray,
    beta: float = 2.0,
    init: float | np.ndarray | None = None,
    max_passes: int = 20,
    shrink: float = 20.0,
    classes: list[str] | None = None,
) -> PerClassResult:
    """Exact coordinate ascent on per-class thresholds for F-beta averaged over samples.

    For class j, with the other classes fixed, each sample's F-beta takes one value if j is predicted
    and another if not; sorting class j's scores makes the total a prefix sum, so the best cut is an
    argmax over n+1 positions (O(n log n)). Passes repeat until no class moves. Each step never lowers
    the score, so the result is never below the starting (global) threshold.
    `shrink`: a class with n_pos positives keeps weight n_pos / (n_pos + shrink) on its own threshold
    and the rest on the global one, so rare classes do not overfit; if that lowers the OOF score below
    the global threshold's, the global threshold is used for every class.
    """
    y = np.asarray(y).astype(bool)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = y.shape
    metric = "f2_samples" if beta == 2.0 else None
    if init is None:
        if metric:
            g = best_threshold(y, probs, metric)
            gthr, gscore = g.threshold, g.score
        else:
            gthr = 0.5
            gscore = _fbeta_mean(y, probs >= 0.5, beta)
    else:
        gthr = float(np.mean(init))
        gscore = _fbeta_mean(y, probs >= init, beta)
    thr = np.full(k, gthr) if init is None or np.ndim(init) == 0 else np.asarray(init, dtype=np.float64).copy()
    pred = probs >= thr
    tp = (pred & y).sum(axis=1).astype(np.float64)
    fp = (pred & ~y).sum(axis=1).astype(np.float64)
    fn = (~pred & y).sum(axis=1).astype(np.float64)
    orders = [np.argsort(-probs[:, j], kind="stable") for j in range(k)]
    passes = 0
    while passes < max_passes:
        passes += 1
        moved = False
        for j in range(k):
            yj, pj = y[:, j], pred[:, j]
            tp0, fp0, fn0 = tp - (pj & yj), fp - (pj & ~yj), fn - (~pj & yj)
            f_off = metrics.fbeta_counts(tp0, fp0, fn0 + yj, beta)
            f_on = metrics.fbeta_counts(tp0 + yj, fp0 + ~yj, fn0, beta)
            order = orders[j]
            s = probs[order, j]
            gain = np.concatenate([[0.0], np.cumsum((f_on - f_off)[order])])
            # a cut after position m is only realisable where the sorted scores change value
            valid = np.ones(n + 1, dtype=bool)
            valid[1:n] = s[:-1] > s[1:]
            current = gain[int(pj.sum())] if valid[int(pj.sum())] else -np.inf
            gain_valid = np.where(valid, gain, -np.inf)
            m = int(np.argmax(gain_valid))
            if gain_valid[m] <= current + 1e-12:
                continue
            if m == 0:
                t = min(1.0, s[0] + 1e-6) if s[0] < 1.0 else np.nextafter(1.0, 2.0)
            elif m == n:
                t = s[-1]
            else:
                t = (s[m - 1] + s[m]) / 2
            thr[j] = t
            newp = probs[:, j] >= t
            tp, fp, fn = tp0 + (newp & yj), fp0 + (newp & ~yj), fn0 + (~newp & yj)
            pred[:, j] = newp
            moved = True
        if not moved:
            break
    raw = thr.copy()
    raw_score = _fbeta_mean(y, probs >= raw, beta)
    n_pos = y.sum(axis=0)
    w = n_pos / (n_pos + shrink) if shrink > 0 else np.ones(k)
    guarded = w * raw + (1 - w) * gthr
    score = _fbeta_mean(y, probs >= guarded, beta)
    fell_back = score < gscore
    if fell_back:
        guarded, score = np.full(k, gthr), gscore
    baseline = _fbeta_mean(y, probs >= 0.5, beta)
    return PerClassResult(
        thresholds=guarded,
        raw=raw,
        global_threshold=gthr,
        score=float(score),
        raw_score=float(raw_score),
        global_score=float(gscore),
        baseline=float(baseline),
        n_pos=n_pos,
        passes=passes,
        fell_back=bool(fell_back),
        classes=list(classes or []),
    )

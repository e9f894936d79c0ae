"""Decision thresholds on OOF predictions: known optima, never below 0.5 or the global threshold, brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kit.metrics import accuracy, fbeta_samples
from kit.thresholds import best_threshold, per_class_thresholds


def test_binary_threshold_recovers_known_cut():
    probs = np.linspace(0, 1, 1001)
    y = (probs >= 0.3).astype(int)
    r = best_threshold(y, probs, "accuracy")
    assert r.threshold == pytest.approx(0.30) and r.score == 1.0
    assert r.baseline == pytest.approx(accuracy(y, probs >= 0.5))
    assert len(r.curve) == len(r.grid) and r.curve.max() == r.score


@pytest.mark.parametrize("seed", range(5))
def test_binary_threshold_never_below_baseline(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    probs = np.clip(0.3 * y + rng.normal(0.4, 0.25, 300), 0, 1)
    r = best_threshold(y, probs, "accuracy")
    assert r.score >= r.baseline
    assert r.score == pytest.approx(accuracy(y, probs >= r.threshold))


def _separable(rng: np.random.Generator, n: int, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = rng.random((n, len(cuts)))
    return (probs >= cuts).astype(int), probs


def test_per_class_recovers_known_thresholds():
    """Labels are exactly `p_j >= cut_j`: the search must find cuts reproducing every label."""
    rng = np.random.default_rng(0)
    cuts = np.array([0.15, 0.35, 0.5, 0.7, 0.9])
    y, probs = _separable(rng, 2000, cuts)
    r = per_class_thresholds(y, probs, shrink=0)
    # rows without any label score 0 whatever is predicted (fbeta_counts' 0/0 convention): the rest score 1
    assert r.score == pytest.approx(y.any(axis=1).mean())
    assert np.array_equal(probs >= r.thresholds, y.astype(bool))
    assert np.abs(r.thresholds - cuts).max() < 0.01  # midpoints between neighbouring scores
    assert r.global_score < r.score and r.baseline < r.score


@pytest.mark.parametrize("seed", range(4))
def test_per_class_never_below_baseline_or_global(seed):
    rng = np.random.default_rng(seed)
    n, k = 500, 6
    y = (rng.random((n, k)) < rng.uniform(0.02, 0.5, k)).astype(int)
    probs = np.clip(0.35 * y + rng.random((n, k)) * 0.7, 0, 1)
    r = per_class_thresholds(y, probs)
    assert r.score >= r.global_score - 1e-12
    assert r.score >= r.baseline - 1e-12
    assert r.raw_score >= r.global_score - 1e-12
    assert r.score == pytest.approx(fbeta_samples(y, probs >= r.thresholds, 2.0))


def _candidates(p: np.ndarray) -> np.ndarray:
    """Every distinct decision for one class: a cut at each score, and one above all of them."""
    return np.concatenate([np.unique(p), [np.inf]])


@pytest.mark.parametrize("seed", range(3))
def test_single_class_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((40, 1)) < 0.4).astype(int)
    probs = np.clip(0.3 * y + rng.random((40, 1)) * 0.8, 0, 1)
    best = max(fbeta_samples(y, probs >= t, 2.0) for t in _candidates(probs[:, 0]))
    r = per_class_thresholds(y, probs, shrink=0)
    assert r.raw_score == pytest.approx(best)


@pytest.mark.parametrize("seed", range(3))
def test_per_class_result_is_coordinate_optimal_by_brute_force(seed):
    """No single class's threshold, moved to any other cut, improves the exact search's result."""
    rng = np.random.default_rng(seed)
    n, k = 30, 3
    y = (rng.random((n, k)) < 0.35).astype(int)
    probs = np.clip(0.3 * y + rng.random((n, k)) * 0.8, 0, 1)
    r = per_class_thresholds(y, probs, shrink=0)
    for j in range(k):
        for t in _candidates(probs[:, j]):
            thr = r.raw.copy()
            thr[j] = t
            assert fbeta_samples(y, probs >= thr, 2.0) <= r.raw_score + 1e-12
    # coordinate ascent is not guaranteed to reach the joint optimum, but on these seeds it does (checked by
    # trying every combination of cuts: 31^3 threshold vectors)
    grid = [_candidates(probs[:, j]) for j in range(k)]
    joint = max(fbeta_samples(y, probs >= np.array(c), 2.0) for c in itertools.product(*grid))
    assert r.raw_score == pytest.approx(joint)


def test_rare_class_guard_shrinks_toward_global_and_reports_it():
    rng = np.random.default_rng(1)
    n = 1000
    y = np.zeros((n, 3), dtype=int)
    y[:, 0] = rng.random(n) < 0.4
    y[:, 1] = rng.random(n) < 0.3
    y[rng.choice(n, 3, replace=False), 2] = 1  # a class with 3 positives
    probs = np.clip(0.3 * y + rng.random((n, 3)) * 0.7, 0, 1)
    r = per_class_thresholds(y, probs, shrink=20, classes=["a", "b", "rare"])
    rows = {row["class"]: row for row in r.report()}
    assert not r.fell_back
    w = 3 / 23
    assert r.thresholds[2] == pytest.approx(w * r.raw[2] + (1 - w) * r.global_threshold)
    assert rows["rare"]["n_pos"] == 3 and rows["rare"]["shift"] == pytest.approx(r.thresholds[2] - r.raw[2])
    # a common class keeps most of its own threshold, the rare one mostly takes the global one
    n_a = int(y[:, 0].sum())
    assert r.thresholds[0] == pytest.approx((n_a * r.raw[0] + 20 * r.global_threshold) / (n_a + 20))
    assert abs(r.thresholds[2] - r.global_threshold) < abs(r.raw[2] - r.global_threshold)
    assert r.score >= r.global_score - 1e-12
    d = r.as_dict()
    for key in ("score_at_0.5", "score_global", "score_per_class_raw", "score_per_class", "classes"):
        assert key in d

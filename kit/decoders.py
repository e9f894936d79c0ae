"""Decoders: how probabilities become predictions, fitted on out-of-fold predictions (scikit-learn style).

`fit(y, probs, metric)` chooses what to use on OOF rows and sets `score_` (the OOF metric with it);
`apply(probs)` decodes; `summary`/`report` format what was chosen for `kit train` and `kit tune` alike;
`to_json`/`from_json` round-trip it through run records. Competitions compose their own on top
(e.g. Planet's weather rules on per-class thresholds).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from kit import thresholds
from kit.errors import KitError
from kit.metrics import Metric


def at_least_one(probs: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Rows of a 0/1 matrix left with no label get their most probable one (an empty tag cell reads as missing)."""
    out = np.asarray(pred).astype(np.int64).copy()
    if out.ndim == 2 and len(out):
        empty = out.sum(axis=1) == 0
        out[empty, np.asarray(probs)[empty].argmax(axis=1)] = 1
    return out


class Decoder:
    """Base: subclasses set `kind` and implement `apply` (and `fit` when something is chosen on OOF)."""

    kind: ClassVar[str]
    score_: float | None = None

    def fit(self, y: np.ndarray, probs: np.ndarray, metric: Metric, classes: list | None = None) -> Decoder:
        """Choose the decoding on OOF predictions; sets `score_`."""
        self.score_ = metric(y, self.apply(probs))
        return self

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Decode probabilities."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line: the OOF score with what was chosen."""
        return f"{self._score():.4f}"

    def report(self, metric: Metric | str) -> list[str]:
        """Readable lines on what was chosen and what it is worth on OOF."""
        return [f"OOF {metric}: {self._score():.4f} (no decision threshold)"]

    def curve(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(threshold grid, OOF metric, chosen threshold) for the plot, when there is one."""
        return None

    def to_json(self) -> dict[str, Any]:
        """JSON-able state (with `kind`)."""
        return {"kind": self.kind, "score": self.score_, **self._state()}

    def _state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Decoder:
        """The decoder `to_json` described."""
        if d.get("kind") != cls.kind:
            raise KitError(f"decoding of kind {d.get('kind')!r} cannot be read as {cls.kind!r}")
        obj = cls._from_state(d)
        obj.score_ = d.get("score")
        return obj

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Decoder:
        return cls()

    def _score(self) -> float:
        if self.score_ is None:
            raise KitError(f"{type(self).__name__} is not fitted")
        return float(self.score_)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state()})"


class Identity(Decoder):
    """Probabilities or values as they are: regression, and probability submissions (log loss, AUC)."""

    kind = "identity"

    def apply(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs)


class Argmax(Decoder):
    """The most probable class."""

    kind = "argmax"

    def apply(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs).argmax(axis=1)


class Threshold(Decoder):
    """One threshold for every output, the best on OOF over a 0.01 grid (ties: the one nearest 0.5)."""

    kind = "threshold"

    def __init__(self, threshold: float = 0.5, at_least_one: bool = False) -> None:
        self.threshold = float(threshold)
        self.at_least_one = at_least_one
        self.baseline_: float | None = None
        self._curve: tuple[np.ndarray, np.ndarray] | None = None

    def fit(self, y: np.ndarray, probs: np.ndarray, metric: Metric, classes: list | None = None) -> Threshold:
        r = thresholds.best_threshold(y, probs, metric, post=self._post(probs))
        self.threshold, self.baseline_, self._curve = r.threshold, r.baseline, (r.grid, r.curve)
        self.score_ = metric(y, self.apply(probs))
        return self

    def _post(self, probs: np.ndarray):
        return (lambda pred: at_least_one(probs, pred)) if self.at_least_one else None

    def apply(self, probs: np.ndarray) -> np.ndarray:
        pred = (np.asarray(probs) >= self.threshold).astype(np.int64)
        return at_least_one(probs, pred) if self.at_least_one else pred

    def summary(self) -> str:
        base = f" ({self.baseline_:.4f} at 0.5)" if self.baseline_ is not None else ""
        return f"{self._score():.4f} at threshold {self.threshold:.2f}{base}"

    def report(self, metric: Metric | str) -> list[str]:
        lines = [f"OOF {metric} at 0.5: {self.baseline_:.4f}"] if self.baseline_ is not None else []
        return lines + [f"OOF {metric} at the best threshold {self.threshold:.2f}: {self._score():.4f}"]

    def curve(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        return (*self._curve, self.threshold) if self._curve is not None else None

    def _state(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "at_least_one": self.at_least_one, "score_at_0.5": self.baseline_}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Threshold:
        obj = cls(d["threshold"], bool(d.get("at_least_one", False)))
        obj.baseline_ = d.get("score_at_0.5")
        return obj


class PerClassThresholds(Decoder):
    """One threshold per label for F-beta over samples: the best global threshold, then exact coordinate ascent
    with the rare-class guard (kit.thresholds.per_class_thresholds)."""

    kind = "per_class"

    def __init__(self, beta: float = 2.0, shrink: float = 20.0, at_least_one: bool = True,
                 thresholds_: list[float] | None = None) -> None:
        self.beta, self.shrink, self.at_least_one = float(beta), float(shrink), at_least_one
        self.thresholds_ = np.asarray(thresholds_, dtype=np.float64) if thresholds_ is not None else None
        self.result_: dict[str, Any] = {}
        self._curve: tuple[np.ndarray, np.ndarray, float] | None = None

    def fit(self, y: np.ndarray, probs: np.ndarray, metric: Metric, classes: list | None = None) -> PerClassThresholds:
        g = thresholds.best_threshold(y, probs, metric)  # start from the best global threshold
        r = thresholds.per_class_thresholds(y, probs, beta=self.beta, init=g.threshold, shrink=self.shrink,
                                            classes=[str(c) for c in classes] if classes is not None else None)
        self.thresholds_ = r.thresholds
        self.result_ = r.as_dict()
        self._curve = (g.grid, g.curve, g.threshold)
        self.score_ = metric(y, self.apply(probs))
        return self

    def apply(self, probs: np.ndarray) -> np.ndarray:
        if self.thresholds_ is None:
            raise KitError("PerClassThresholds is not fitted")
        pred = (np.asarray(probs) >= self.thresholds_).astype(np.int64)
        return at_least_one(probs, pred) if self.at_least_one else pred

    def summary(self) -> str:
        r = self.result_
        if not r:
            return super().summary()
        return (f"{self._score():.4f} with per-class thresholds ({r['score_global']:.4f} at the best global "
                f"threshold {r['global_threshold']:.2f}, {r['score_at_0.5']:.4f} at 0.5)")

    def report(self, metric: Metric | str) -> list[str]:
        r = self.result_
        if not r:
            return super().report(metric)
        lines = [
            f"OOF {metric} at 0.5: {r['score_at_0.5']:.4f}",
            f"OOF {metric} at the best global threshold {r['global_threshold']:.2f}: {r['score_global']:.4f}",
            f"OOF {metric} with per-class thresholds: {r['score_per_class_raw']:.4f} raw, "
            f"{r['score_per_class']:.4f} after the rare-class guard"
            + (" (guard fell back to the global threshold)" if r.get("fell_back_to_global") else ""),
            f"{'class':<20} {'n_pos':>6} {'raw':>6} {'guarded':>8} {'shift':>7}",
        ]
        for c in r.get("classes", []):
            lines.append(f"{c['class']:<20} {c['n_pos']:>6d} {c['raw']:>6.3f} {c['guarded']:>8.3f} {c['shift']:>+7.3f}")
        return lines

    def curve(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        return self._curve

    def _state(self) -> dict[str, Any]:
        return {"beta": self.beta, "shrink": self.shrink, "at_least_one": self.at_least_one,
                "thresholds": None if self.thresholds_ is None else [float(t) for t in self.thresholds_],
                "search": self.result_}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> PerClassThresholds:
        obj = cls(d.get("beta", 2.0), d.get("shrink", 20.0), bool(d.get("at_least_one", True)), d.get("thresholds"))
        obj.result_ = d.get("search") or {}
        return obj


class Temperature(Decoder):
    """Temperature scaling of class probabilities (Guo et al. 2017), one scalar T chosen on OOF.

    Calibrated probabilities are softmax(log p / T) (binary, one column: sigmoid(logit p / T)): T > 1 softens
    an overconfident model, T < 1 sharpens a timid one; the argmax never changes. `fit` minimises the metric
    (log loss) over log T in [log 0.05, log 20] with scipy's bounded Brent search (`minimize_scalar`), and keeps
    T = 1 unless that improves the OOF metric, so it never makes OOF worse than the probabilities as they are.
    """

    kind = "temperature"
    EPS: ClassVar[float] = 1e-15  # Kaggle's log-loss clipping: log p stays finite for a probability of 0
    BOUNDS: ClassVar[tuple[float, float]] = (0.05, 20.0)

    def __init__(self, temperature: float = 1.0) -> None:
        if not temperature > 0:
            raise KitError(f"temperature must be > 0 (got {temperature})")
        self.temperature = float(temperature)
        self.baseline_: float | None = None

    def fit(self, y: np.ndarray, probs: np.ndarray, metric: Metric, classes: list | None = None) -> Temperature:
        from scipy.optimize import minimize_scalar

        sign = -1.0 if metric.greater_is_better else 1.0
        z = self._logits(probs)
        self.baseline_ = float(metric(y, np.asarray(probs, dtype=np.float64)))  # T = 1: the input as it is
        lo, hi = np.log(self.BOUNDS[0]), np.log(self.BOUNDS[1])
        r = minimize_scalar(lambda t: sign * metric(y, self._scale(z, float(np.exp(t)))), bounds=(lo, hi),
                            method="bounded", options={"xatol": 1e-4})
        t = float(np.exp(r.x))
        score = float(metric(y, self._scale(z, t)))
        self.temperature = t if sign * score < sign * self.baseline_ else 1.0
        self.score_ = score if self.temperature != 1.0 else self.baseline_
        return self

    @classmethod
    def _logits(cls, probs: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(probs, dtype=np.float64), cls.EPS, 1 - cls.EPS)
        return np.log(p / (1 - p)) if p.ndim == 1 else np.log(p)

    @staticmethod
    def _scale(z: np.ndarray, t: float) -> np.ndarray:
        if z.ndim == 1:
            return 1.0 / (1.0 + np.exp(-z / t))
        s = z / t
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        if self.temperature == 1.0:
            return np.asarray(probs, dtype=np.float64)
        return self._scale(self._logits(probs), self.temperature)

    def summary(self) -> str:
        base = f" ({self.baseline_:.4f} at T=1)" if self.baseline_ is not None else ""
        return f"{self._score():.4f} at temperature {self.temperature:.3f}{base}"

    def report(self, metric: Metric | str) -> list[str]:
        lines = [f"OOF {metric} of the probabilities as they are (T=1): {self.baseline_:.4f}"] \
            if self.baseline_ is not None else []
        return lines + [f"OOF {metric} at temperature {self.temperature:.3f}: {self._score():.4f}"]

    def _state(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "score_at_1": self.baseline_}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Temperature:
        obj = cls(float(d.get("temperature", 1.0)))
        obj.baseline_ = d.get("score_at_1")
        return obj


BUILTIN: dict[str, type[Decoder]] = {c.kind: c for c in (Identity, Argmax, Threshold, PerClassThresholds,
                                                            Temperature)}


def from_json(d: dict[str, Any]) -> Decoder:
    """A built-in decoder from its `to_json` dict (competitions read their own kinds with `Cls.from_json`)."""
    kind = d.get("kind")
    if kind not in BUILTIN:
        raise KitError(f"unknown decoder kind {kind!r}; built in: {', '.join(BUILTIN)}")
    return BUILTIN[kind].from_json(d)

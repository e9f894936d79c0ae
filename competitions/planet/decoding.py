"""Planet's label structure: the four weather tags are exclusive, and "cloudy" tiles carry no other tag.

Two decoding rules built on that, each used only when it raises OOF F2 (on the real competition some teams
found them to hurt): `weather_argmax` keeps exactly one weather tag per image (the most probable), and
`cloudy_alone` drops every other tag from an image decoded as cloudy.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np

from kit import metrics
from kit.decoders import Decoder, PerClassThresholds
from kit.metrics import Metric

TAGS = [
    "agriculture", "artisinal_mine", "bare_ground", "blooming", "blow_down", "clear", "cloudy",
    "conventional_mine", "cultivation", "habitation", "haze", "partly_cloudy", "primary", "road",
    "selective_logging", "slash_burn", "water",
]
WEATHER = ["clear", "partly_cloudy", "haze", "cloudy"]


def weather_columns(classes: Sequence[str]) -> list[int]:
    """Column indices of the weather tags present in `classes`."""
    return [classes.index(t) for t in WEATHER if t in classes]


def apply_rules(
    probs: np.ndarray,
    pred: np.ndarray,
    weather_cols: Sequence[int],
    cloudy_col: int | None,
    weather_argmax: bool,
    cloudy_alone: bool,
    at_least_one: bool = True,
) -> np.ndarray:
    """Thresholded 0/1 predictions `pred` with the chosen rules applied (a new array).

    `at_least_one`: a row left with no tag gets its most probable tag; an empty prediction scores 0 on any
    image that has tags, and it could not be written to the submission CSV (an empty cell reads as missing).
    """
    out = np.asarray(pred).astype(np.int64).copy()
    probs = np.asarray(probs)
    wc = list(weather_cols)
    if weather_argmax and wc:
        best = np.asarray(wc)[probs[:, wc].argmax(axis=1)]
        out[:, wc] = 0
        out[np.arange(len(out)), best] = 1
    if cloudy_alone and cloudy_col is not None:
        cloudy = out[:, cloudy_col] == 1
        out[cloudy] = 0
        out[cloudy, cloudy_col] = 1
    if at_least_one and len(out):
        empty = out.sum(axis=1) == 0
        out[empty, probs[empty].argmax(axis=1)] = 1
    return out


def choose_rules(
    y: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | float, classes: Sequence[str]
) -> dict[str, Any]:
    """Score every combination of the two rules on OOF and keep the best (ties: fewer rules); JSON-able."""
    classes = list(classes)
    wc = weather_columns(classes)
    cc = classes.index("cloudy") if "cloudy" in classes else None
    pred = (np.asarray(probs) >= thresholds).astype(np.int64)
    scores: dict[str, float] = {}
    best_key, best = "none", -np.inf
    for argmax, alone in product([False, True], [False, True]):
        key = "+".join([n for n, on in (("weather_argmax", argmax), ("cloudy_alone", alone)) if on]) or "none"
        s = metrics.f2_samples(y, apply_rules(probs, pred, wc, cc, argmax, alone))
        scores[key] = round(float(s), 6)
        if s > best + 1e-9:  # strictly better: a rule must earn its place
            best_key, best = key, s
    return {
        "weather_argmax": "weather_argmax" in best_key,
        "cloudy_alone": "cloudy_alone" in best_key,
        "chosen": best_key,
        "scores": scores,
        "weather_columns": wc,
        "cloudy_column": cc,
        "score": float(best),
    }


def f2_tag_strings(true_tags: Sequence[str], pred_tags: Sequence[str]) -> float:
    """Mean per-image F2 of predicted vs true tag strings (Kaggle's Planet score)."""
    classes = sorted(set().union(*(str(s).split() for s in [*true_tags, *pred_tags])))
    return metrics.f2_samples(metrics.label_matrix(true_tags, classes), metrics.label_matrix(pred_tags, classes))


class WeatherRules(Decoder):
    """Per-class thresholds, then the weather rules that raise OOF F2 (`choose_rules`); every row keeps a tag."""

    kind = "planet_weather"

    def __init__(self, base: PerClassThresholds | None = None) -> None:
        self.base = base or PerClassThresholds(beta=2.0)
        self.rules_: dict[str, Any] = {}

    def fit(self, y: np.ndarray, probs: np.ndarray, metric: Metric, classes: list | None = None) -> WeatherRules:
        self.base.fit(y, probs, metric, classes)
        self.rules_ = choose_rules(y, probs, self.base.thresholds_, list(classes or []))
        self.score_ = metric(y, self.apply(probs))
        return self

    def apply(self, probs: np.ndarray) -> np.ndarray:
        w = self.rules_
        return apply_rules(probs, self.base.apply(probs), w.get("weather_columns", []), w.get("cloudy_column"),
                           bool(w.get("weather_argmax")), bool(w.get("cloudy_alone")))

    def summary(self) -> str:
        return f"{self.base.summary()}; weather rules: {self.rules_.get('chosen', 'none')} -> {self._score():.4f}"

    def report(self, metric: Metric | str) -> list[str]:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in self.rules_.get("scores", {}).items())
        return [*self.base.report(metric), f"weather rules on OOF: {scores}",
                f"OOF {metric} after the weather rules ({self.rules_.get('chosen', 'none')}): {self._score():.4f}"]

    def curve(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        return self.base.curve()

    def _state(self) -> dict[str, Any]:
        return {"base": self.base.to_json(), "weather": self.rules_}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> WeatherRules:
        obj = cls(PerClassThresholds.from_json(d["base"]))
        obj.rules_ = d.get("weather") or {}
        return obj

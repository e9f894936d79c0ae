"""Task objects: what the kind of target (binary, multiclass, multi-label, regression) decides.

A task owns the target encoding (labels <-> indices for any label type, classes kept as found in the data),
the fastai loss (which carries its own `activation` and `decodes`), the number of outputs, the default fold
splitter, the fold-wise target scaling (regression) and the default decoder for a metric. Code elsewhere asks
the task instead of branching on its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from sklearn.model_selection import KFold, StratifiedKFold

from kit import decoders
from kit.errors import DataError, KitError
from kit.io import show
from kit.metrics import Metric

TRANSFORMS = ("log1p",)


@dataclass
class TargetScaler:
    """Regression targets standardised on the training fold (after an optional transform), undone on predictions."""

    transform: str | None = None
    mean: np.ndarray | float = 0.0
    std: np.ndarray | float = 1.0
    identity: bool = False
    lower: float | None = None  # predictions clipped to [lower, upper] (points: the image)
    upper: float | None = None
    factor: float = 1.0  # log1p: 1 + prediction scaled by this (the mean restored, kit.nets.fit.mean_factor)

    def fit(self, y: np.ndarray) -> TargetScaler:
        """Learn mean and standard deviation from the training fold's targets."""
        if self.identity:
            return self
        z = self._forward(np.asarray(y, dtype=np.float64))
        self.mean = np.nanmean(z, axis=0)
        std = np.nanstd(z, axis=0)
        self.std = np.where(std > 0, std, 1.0) if np.ndim(std) else (std if std > 0 else 1.0)
        return self

    def _forward(self, y: np.ndarray) -> np.ndarray:
        return np.log1p(y) if self.transform == "log1p" else y

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        """Targets -> the model's training space."""
        if self.identity:
            return y
        return (self._forward(np.asarray(y, dtype=np.float64)) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Model outputs -> target units."""
        if self.identity:
            return z
        out = np.asarray(z, dtype=np.float64) * self.std + self.mean
        if self.transform == "log1p":
            out = np.expm1(out) if self.factor == 1.0 else np.exp(out) * self.factor - 1.0
            out = np.clip(out, 0.0, None)  # log1p targets are >= 0 (checked at load)
        if self.lower is not None or self.upper is not None:
            out = np.clip(out, self.lower, self.upper)
        return out


def _first(mask: np.ndarray | pd.Series) -> int:
    return int(np.asarray(mask).argmax())


def _missing(values: pd.Series, where: str) -> None:
    na = values.isna()
    if na.any():
        i = _first(na)
        raise DataError(f"{where}: row {i + 2}, column {values.name}: missing target")


def _classes(values: pd.Series) -> list:
    uniq = pd.unique(values)
    try:
        return sorted(uniq.tolist())
    except TypeError:  # mixed types: order as text
        return sorted(uniq.tolist(), key=str)


def _index(values: pd.Series, classes: Sequence) -> np.ndarray:
    pos = {c: i for i, c in enumerate(classes)}
    return np.fromiter((pos[v] for v in values.tolist()), dtype=np.int64, count=len(values))


class Task:
    """Base class of the four task kinds; subclasses set `name` and `default_metric` and override what differs."""

    name: ClassVar[str]
    default_metric: ClassVar[str]
    classification: ClassVar[bool] = True
    single_label: ClassVar[bool] = False  # exactly one class per row (probabilities sum to 1)
    multi_label: ClassVar[bool] = False  # any subset of the classes per row
    positive_probability: ClassVar[bool] = False  # probabilities are one column: the positive class's

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def for_metric(self, metric: Metric, transform: str | None = None) -> Task:
        """The task as it should run for `metric` (regression picks its target transform here)."""
        return self

    # ---- targets ------------------------------------------------------------------------------------
    def encode(self, values: pd.Series, where: str) -> tuple[np.ndarray, list | None]:
        """Target column -> (y, classes): class indices (or a 0/1 matrix) and the labels they stand for."""
        raise NotImplementedError

    def labels(self, decoded: np.ndarray, classes: Sequence | None) -> np.ndarray:
        """Decoded predictions -> the values written to a label submission."""
        return np.asarray(classes, dtype=object)[np.asarray(decoded, dtype=np.int64)]

    def n_outputs(self, y: np.ndarray, classes: Sequence | None) -> int:
        """Model outputs needed for this target."""
        return 1

    def target_dtype(self) -> Any:
        """numpy dtype of the targets the loss expects."""
        return np.float32

    def fit_target(self, y: np.ndarray) -> TargetScaler:
        """The training fold's target scaling (identity for classification)."""
        return TargetScaler(identity=True)

    # ---- loss and predictions -----------------------------------------------------------------------
    def loss(self, smoothing: float = 0.0) -> Any:
        """The fastai loss (with its `activation` and `decodes`); `smoothing` > 0: label smoothing, for the
        classification tasks (regression ignores it)."""
        raise NotImplementedError

    def outputs_to_probs(self, probs: np.ndarray) -> np.ndarray:
        """Activated model outputs -> the task's prediction shape ((n,) for one output)."""
        probs = np.asarray(probs, dtype=np.float64)
        return probs[:, 0] if probs.ndim == 2 and probs.shape[1] == 1 else probs

    def decode_default(self, probs: np.ndarray) -> np.ndarray:
        """Predictions at the untuned decoding (threshold 0.5 / argmax / the values)."""
        return probs

    # ---- folds and decoding -------------------------------------------------------------------------
    def splitter(self, n_folds: int, seed: int) -> Any:
        """The default scikit-learn splitter (shuffled with `seed`)."""
        return KFold(n_splits=n_folds, shuffle=True, random_state=seed)

    def check_folds(self, y: np.ndarray, n_folds: int) -> None:
        """Raise KitError when `y` cannot be split into `n_folds` folds."""

    def default_decoder(self, metric: Metric) -> decoders.Decoder:
        """The decoder chosen on OOF predictions for `metric`."""
        return decoders.Identity()


class _SingleLabel(Task):
    single_label = True

    def target_dtype(self) -> Any:
        return np.int64

    def splitter(self, n_folds: int, seed: int) -> Any:
        return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)

    def check_folds(self, y: np.ndarray, n_folds: int) -> None:
        counts = np.bincount(np.asarray(y, dtype=np.int64))
        present = np.flatnonzero(counts)
        k = int(present[counts[present].argmin()])
        if counts[k] < n_folds:
            fix = f"pass --folds {counts[k]} or fewer, or merge" if counts[k] >= 2 else "merge or drop"
            raise KitError(f"class {k} (of the sorted training labels) has {counts[k]} rows, fewer than {n_folds} "
                           f"folds: {fix} the rare classes")


class Binary(_SingleLabel):
    """Two classes; one output, BCE with logits, the positive class is the larger label (1, 'yes', True)."""

    name = "binary"
    default_metric = "accuracy"
    positive_probability = True

    def encode(self, values: pd.Series, where: str) -> tuple[np.ndarray, list]:
        _missing(values, where)
        classes = _classes(values)
        if len(classes) == 1:
            raise DataError(f"{where}: column {values.name}: a binary target needs two classes, found only "
                            f"{show(classes[0])}")
        if len(classes) > 2:
            # the odd one out: anything but 0/1 when those are there, else a value after the first two seen
            keep = {0, 1} if {0, 1} <= set(classes) else set(pd.unique(values)[:2].tolist())
            i = _first(~values.isin(list(keep)))
            raise DataError(f"{where}: row {i + 2}, column {values.name}: {show(values.iloc[i])} is a third class "
                            f"in a binary target ({len(classes)} classes); declare task = 'multiclass'")
        return _index(values, classes), classes

    def loss(self, smoothing: float = 0.0) -> Any:
        from fastai.losses import BCEWithLogitsLossFlat

        if smoothing > 0:
            from kit.losses import SmoothBCEWithLogitsLossFlat

            return SmoothBCEWithLogitsLossFlat(eps=smoothing)
        return BCEWithLogitsLossFlat()

    def target_dtype(self) -> Any:
        return np.float32  # BCE takes float targets

    def decode_default(self, probs: np.ndarray) -> np.ndarray:
        return (np.asarray(probs) >= 0.5).astype(np.int64)

    def default_decoder(self, metric: Metric) -> decoders.Decoder:
        return decoders.Identity() if metric.takes_probs else decoders.Threshold()


class Multiclass(_SingleLabel):
    """One of k classes (integers from any start, or text); k outputs, cross-entropy, argmax."""

    name = "multiclass"
    default_metric = "accuracy"

    def encode(self, values: pd.Series, where: str) -> tuple[np.ndarray, list]:
        _missing(values, where)
        classes = _classes(values)
        if len(classes) < 2:
            raise DataError(f"{where}: column {values.name}: only one class ({show(classes[0])})")
        return _index(values, classes), classes

    def n_outputs(self, y: np.ndarray, classes: Sequence | None) -> int:
        return len(classes) if classes is not None else int(np.max(y)) + 1

    def loss(self, smoothing: float = 0.0) -> Any:
        from fastai.losses import CrossEntropyLossFlat, LabelSmoothingCrossEntropyFlat

        return LabelSmoothingCrossEntropyFlat(eps=smoothing) if smoothing > 0 else CrossEntropyLossFlat()

    def outputs_to_probs(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        return probs / probs.sum(axis=1, keepdims=True)  # float32 softmax rows sum to 1 only within ~1e-7

    def decode_default(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs).argmax(axis=1)

    def default_decoder(self, metric: Metric) -> decoders.Decoder:
        # log loss pays for calibration, which nets and boosted trees rarely have out of the box: one temperature
        # fitted on OOF (kept at 1 unless it helps) costs nothing else; other probability metrics (AUC) as they are
        if metric.name == "logloss":
            return decoders.Temperature()
        return decoders.Identity() if metric.takes_probs else decoders.Argmax()


class Multilabel(Task):
    """Any subset of k tags (space-separated in one column); k outputs, BCE with logits, thresholds."""

    name = "multilabel"
    default_metric = "f2_samples"
    multi_label = True
    FBETA: ClassVar[dict[str, float]] = {"f1_samples": 1.0, "f2_samples": 2.0}

    def encode(self, values: pd.Series, where: str) -> tuple[np.ndarray, list]:
        tags = [str(v).split() if isinstance(v, str) else [] for v in values.tolist()]
        classes = sorted(set().union(*tags)) if tags else []
        if not classes:
            raise DataError(f"{where}: column {values.name}: no row has any label")
        col = {c: j for j, c in enumerate(classes)}
        y = np.zeros((len(tags), len(classes)), dtype=np.int64)
        for i, row in enumerate(tags):
            y[i, [col[t] for t in row]] = 1
        return y, classes

    def labels(self, decoded: np.ndarray, classes: Sequence | None) -> np.ndarray:
        names = np.asarray(classes, dtype=object)
        return np.array([" ".join(names[np.asarray(row).astype(bool)]) for row in decoded], dtype=object)

    def n_outputs(self, y: np.ndarray, classes: Sequence | None) -> int:
        return int(np.shape(y)[1])

    def loss(self, smoothing: float = 0.0) -> Any:
        from fastai.losses import BCEWithLogitsLossFlat

        if smoothing > 0:
            from kit.losses import SmoothBCEWithLogitsLossFlat

            return SmoothBCEWithLogitsLossFlat(eps=smoothing)
        return BCEWithLogitsLossFlat()

    def outputs_to_probs(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs, dtype=np.float64)

    def decode_default(self, probs: np.ndarray) -> np.ndarray:
        return (np.asarray(probs) >= 0.5).astype(np.int64)

    def splitter(self, n_folds: int, seed: int) -> Any:
        return MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)

    def default_decoder(self, metric: Metric) -> decoders.Decoder:
        if metric.takes_probs:
            return decoders.Identity()
        if metric.name in self.FBETA:
            return decoders.PerClassThresholds(beta=self.FBETA[metric.name])
        return decoders.Threshold(at_least_one=True)


@dataclass
class Regression(Task):
    """Numbers; MSE on targets standardised per training fold (after `transform`, e.g. log1p for RMSLE)."""

    transform: str | None = None
    name: ClassVar[str] = "regression"
    default_metric: ClassVar[str] = "rmse"
    classification: ClassVar[bool] = False
    _declared: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.transform not in (None, *TRANSFORMS):
            raise KitError(f"unknown target transform {self.transform!r}; known: {', '.join(TRANSFORMS)} or None")

    def __str__(self) -> str:
        return self.name

    def for_metric(self, metric: Metric, transform: str | None = None) -> Task:
        if transform is not None:
            return Regression(None if transform == "none" else transform, _declared=True)
        if self.transform is None and not self._declared and metric.target_transform:
            return Regression(metric.target_transform)
        return self

    def encode(self, values: pd.Series, where: str) -> tuple[np.ndarray, None]:
        _missing(values, where)
        num = pd.to_numeric(values, errors="coerce")
        bad = num.isna() | ~np.isfinite(num.fillna(0).to_numpy(dtype=np.float64))
        if bad.any():
            i = _first(bad)
            raise DataError(f"{where}: row {i + 2}, column {values.name}: {show(values.iloc[i])} is not a finite "
                            "number")
        y = num.to_numpy(dtype=np.float64)
        if self.transform == "log1p" and (y <= -1).any():
            i = _first(y <= -1)
            raise DataError(f"{where}: row {i + 2}, column {values.name}: {show(values.iloc[i])} is <= -1, "
                            "outside log1p's domain (declare target_transform = 'none')")
        return y, None

    def labels(self, decoded: np.ndarray, classes: Sequence | None) -> np.ndarray:
        return np.asarray(decoded, dtype=np.float64)

    def fit_target(self, y: np.ndarray) -> TargetScaler:
        return TargetScaler(transform=self.transform).fit(y)

    def loss(self, smoothing: float = 0.0) -> Any:
        from fastai.losses import MSELossFlat

        return MSELossFlat()

    def n_outputs(self, y: np.ndarray, classes: Sequence | None) -> int:
        return 1 if np.ndim(y) == 1 else int(np.shape(y)[1])


@dataclass
class Points(Regression):
    """Image regression of points: x0, y0, x1, y1, ... in pixels of an `extent`-pixel image, NaN where absent.

    Targets are scaled to (-1, 1) (the model's `y_range`), the loss is MSE masked to the points present,
    predictions are mapped back to pixels and clipped to the image. `flip_pairs`: indices of keypoints that
    swap under a left-right mirror (left eye <-> right eye), for augmentation and TTA.
    """

    extent: float = 96.0
    flip_pairs: tuple[tuple[int, int], ...] = ()
    name: ClassVar[str] = "points"

    def for_metric(self, metric: Metric, transform: str | None = None) -> Task:
        return self

    y_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)

    def encode(self, values: pd.Series, where: str) -> tuple[np.ndarray, None]:
        raise KitError("points are read by the competition's load (one column per coordinate)")

    def fit_target(self, y: np.ndarray) -> TargetScaler:
        return TargetScaler(mean=self.extent / 2, std=self.extent / 2, lower=0.0, upper=self.extent)

    def loss(self, smoothing: float = 0.0) -> Any:
        from fastai.losses import BaseLoss

        from kit.losses import MaskedMSELoss

        return BaseLoss(MaskedMSELoss, flatten=False, floatify=True)

    def flip_perm(self, n_outputs: int) -> np.ndarray:
        """Output-column permutation that swaps the paired keypoints' (x, y) columns."""
        perm = np.arange(n_outputs)
        for a, b in self.flip_pairs:
            perm[[2 * a, 2 * a + 1, 2 * b, 2 * b + 1]] = [2 * b, 2 * b + 1, 2 * a, 2 * a + 1]
        return perm


TASKS: dict[str, type[Task]] = {t.name: t for t in (Binary, Multiclass, Multilabel, Regression, Points)}


def get(task: str | Task) -> Task:
    """A task by name (or the `Task` given); a KitError listing the names when unknown."""
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise KitError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    return TASKS[task]()

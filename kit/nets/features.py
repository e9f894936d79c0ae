"""Fold-safe input encoding for the tabular nets, fit on the training fold only.

Numbers: median imputation plus a missing-indicator column where the training fold has NaNs, robust scaling
(median and inter-quartile range; min-max range where the IQR is 0) and a smooth clip x / sqrt(1 + (x / 3)^2)
(Holzmüller et al. 2024, RealMLP): outliers in test rows cannot push the net far outside the range it was
trained on, which plain standardisation allows (one extreme row dominated RMSE before). `quantile` maps
each column through its training-fold quantiles to a normal instead (TabM's choice).

Numeric columns with at most CODED_VALUES (two) distinct values in the training fold (flags, a constant, an
all-missing column) become value codes like categories' instead: any function of a two-valued column is
affine in it, so a periodic embedding of one adds cost and nothing else (choice tables with such columns, 2 x 5
folds paired: DoctorContacts, RWM5YR, OFP tied, flchain +0.0006 +- 0.0005 AUC, at 0.86-0.99x the time;
bench/results/tabular-ab.md, "Two-valued numbers as codes").

Categories become integer codes 1..L of their `max_levels` most frequent training levels that have at least
`min_count` rows, with 0 for missing, rare and unseen levels; the net one-hot encodes small ones and embeds
large ones (`kit.nets.modules.InputEncoder`). So a 100k-level column costs at most `max_levels` embedding
rows, and a test level never seen in the training fold cannot crash inference. Each numeric column with NaNs
in the training fold also gets a missing indicator, as a 2-level code.

Categories with more than `te_min_levels` levels are also target-encoded (scikit-learn's `TargetEncoder`: the
mean target of the level, shrunk toward the overall mean, one column per class for multi-class), as numbers:
an embedding of a 200-level column learns from a few rows per level, the encoding from all of them (the nets
lost 0.02 AUC to the trees on a table whose key column has 194 levels without it). On the training fold the
encoder's own cross-fitting gives each row an encoding its own label took no part in (`fit_transform`); valid
and test rows get the encoder fit on the whole training fold.

The output is one float32 matrix [numbers | codes]; the module splits it by the sizes the encoder records
(`n_numeric`, `cardinalities`), so kit's single-tensor data path and its saved fold pipelines serve the nets
unchanged (codes up to 2^24 are exact in float32).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import QuantileTransformer

from kit.errors import KitError

NUM_TRANSFORMS = ("robust", "quantile", "standard")
CODED_VALUES = 2  # numeric columns with at most this many distinct training values are coded, not scaled


def smooth_clip(x: np.ndarray, bound: float = 3.0) -> np.ndarray:
    """x / sqrt(1 + (x / bound)^2): the identity near 0, tending to +-bound."""
    return x / np.sqrt(1.0 + (x / bound) ** 2)


def target_encoder(target_type: str, seed: int) -> Any:
    """scikit-learn's TargetEncoder cross-fitting on 5 shuffled folds seeded by `seed` (stratified for classes)."""
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.preprocessing import TargetEncoder

    if TargetEncoder().get_params().get("shuffle") != "deprecated":  # scikit-learn < 1.9: no splitter as `cv`
        return TargetEncoder(target_type=target_type, shuffle=True, random_state=seed)
    # from 1.9 the folds are given as a splitter (`shuffle`/`random_state` warn there): the same splitter 1.9 built
    # from those two keys, so the same encodings
    split = KFold if target_type == "continuous" else StratifiedKFold
    return TargetEncoder(target_type=target_type, cv=split(5, shuffle=True, random_state=seed))


class NetFeatures(TransformerMixin, BaseEstimator):
    """Numbers scaled and smoothly clipped (or quantile-normalised), categoricals and missing indicators as
    integer codes; all fit on the training fold."""

    _parameter_constraints: dict[str, Any] = {
        "num_transform": NUM_TRANSFORMS, "max_levels": (1, None), "min_count": (1, None),
    }

    def __init__(self, numeric: list[str], categorical: list[str], num_transform: str = "robust",
                 max_levels: int = 1000, min_count: int = 3, target_type: str | None = None,
                 te_min_levels: int = 9, seed: int = 0) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.num_transform = num_transform
        self.max_levels = max_levels
        self.min_count = min_count
        self.target_type = target_type
        self.te_min_levels = te_min_levels
        self.seed = seed

    def _check(self) -> None:
        if self.num_transform not in NUM_TRANSFORMS:
            raise KitError(f"num_transform must be one of {', '.join(NUM_TRANSFORMS)} (got {self.num_transform!r})")
        for key in ("max_levels", "min_count"):
            if int(getattr(self, key)) < 1:
                raise KitError(f"{key} must be >= 1 (got {getattr(self, key)})")

    @staticmethod
    def _column(df: pd.DataFrame, c: str) -> np.ndarray:
        return pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)

    def _numbers(self, df: pd.DataFrame, encoded: np.ndarray | None = None) -> np.ndarray:
        cols = [self._column(df, c) for c in getattr(self, "scaled_", self.numeric)]
        x = np.column_stack(cols) if cols else np.zeros((len(df), 0))
        return x if encoded is None else np.hstack([x, np.asarray(encoded, dtype=np.float64)])

    def _value_codes(self, df: pd.DataFrame, c: str) -> np.ndarray:
        """Column c's values as codes 1..L of its training values (0: missing or a value not seen in training)."""
        v, values = self._column(df, c), self.coded_[c]
        at = np.minimum(np.searchsorted(values, v), max(len(values) - 1, 0))
        seen = np.isfinite(v) & (values[at] == v) if len(values) else np.zeros(len(v), bool)
        return np.where(seen, at + 1, 0)

    @staticmethod
    def _strings(col: pd.Series) -> pd.Series:
        return col.where(col.isna(), col.astype(str))

    def _te_input(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({c: self._strings(X[c]).fillna("\0missing").astype(str).to_numpy(dtype=object)
                             for c in self.te_columns_})

    def fit(self, X: pd.DataFrame, y: Any = None) -> NetFeatures:
        """Learn medians, scales, which columns get an indicator, each categorical's levels and encodings."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit on the training fold and encode it (target encodings cross-fitted: no row sees its own label)."""
        self._check()
        self.levels_: dict[str, list[str]] = {}
        for c in self.categorical:
            counts = self._strings(X[c]).value_counts()
            kept = counts[counts >= min(self.min_count, counts.max() if len(counts) else 1)].head(self.max_levels)
            self.levels_[c] = sorted(kept.index)
        self.coded_: dict[str, np.ndarray] = {}
        for c in self.numeric:
            v = self._column(X, c)
            values = np.unique(v[np.isfinite(v)])
            if len(values) <= CODED_VALUES:
                self.coded_[c] = values
        self.scaled_ = [c for c in self.numeric if c not in self.coded_]
        self.te_columns_ = [c for c in self.categorical if len(self.levels_[c]) >= self.te_min_levels]
        if self.target_type is None or y is None:
            self.te_columns_ = []
        encoded = None
        if self.te_columns_:
            self.te_ = target_encoder(self.target_type, self.seed)
            encoded = self.te_.fit_transform(self._te_input(X), np.asarray(y))
        x = self._numbers(X, encoded)
        finite = np.where(np.isfinite(x), x, np.nan)
        with warnings.catch_warnings():  # an all-NaN column's median is NaN (said once by numpy): 0 then
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median_ = np.nan_to_num(np.nanmedian(finite, axis=0)) if x.shape[1] else np.zeros(0)
        self.indicate_ = np.isnan(finite).any(axis=0) if x.shape[1] else np.zeros(0, bool)
        filled = np.where(np.isnan(finite), self.median_, finite)
        if self.num_transform == "quantile" and filled.shape[1]:
            # a little noise breaks ties of discrete columns, as TabM's reference preprocessing does
            rng = np.random.default_rng(self.seed)
            noisy = filled + rng.normal(0.0, 1e-5, filled.shape) * np.maximum(filled.std(axis=0), 1e-12)
            self.quantile_ = QuantileTransformer(n_quantiles=max(min(len(filled) // 30, 1000), 10),
                                                 output_distribution="normal", subsample=10**9,
                                                 random_state=self.seed).fit(noisy)
        elif filled.shape[1]:
            if self.num_transform == "robust":
                q1, q3 = np.percentile(filled, [25, 75], axis=0)
                scale = q3 - q1
                span = filled.max(axis=0) - filled.min(axis=0)
                scale = np.where(scale > 0, scale, np.where(span > 0, span, 1.0))
                self.center_, self.scale_ = self.median_, scale
            else:
                std = filled.std(axis=0)
                self.center_, self.scale_ = filled.mean(axis=0), np.where(std > 0, std, 1.0)
        self.n_numeric = int(x.shape[1])
        # code 0: missing, rare or unseen; indicators: 0 present, 1 missing
        self.cardinalities = ([2] * int(self.indicate_.sum()) + [len(v) + 1 for v in self.coded_.values()]
                              + [len(v) + 1 for v in self.levels_.values()])
        return self._encode(X, encoded)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The float32 matrix [numbers, target encodings | indicator and category codes]."""
        return self._encode(X, self.te_.transform(self._te_input(X)) if self.te_columns_ else None)

    def _encode(self, X: pd.DataFrame, encoded: np.ndarray | None) -> np.ndarray:
        x = self._numbers(X, encoded)
        finite = np.where(np.isfinite(x), x, np.nan)
        missing = np.isnan(finite)
        filled = np.where(missing, self.median_, finite)
        if filled.shape[1]:
            if self.num_transform == "quantile":
                filled = self.quantile_.transform(filled)
            else:
                filled = smooth_clip((filled - self.center_) / self.scale_)
        blocks = [filled, missing[:, self.indicate_].astype(np.float64)]
        blocks += [self._value_codes(X, c).reshape(-1, 1).astype(np.float64) for c in getattr(self, "coded_", {})]
        for c, levels in self.levels_.items():
            cat = pd.Categorical(self._strings(X[c]), categories=levels)
            blocks.append((cat.codes.astype(np.int64) + 1).reshape(-1, 1).astype(np.float64))
        return np.hstack(blocks).astype(np.float32) if blocks else np.zeros((len(X), 0), np.float32)

"""Feature steps any tabular competition can declare in `feature_steps` (scikit-learn transformers on frames)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour")


class DateParts(BaseEstimator, TransformerMixin):
    """Each date column -> numeric `<col>_<part>` columns (year, month, day, dayofweek, ...); the column itself is
    left as it is. Unparseable or missing dates give NaN parts (imputed by the numeric pipeline). Learns nothing."""

    def __init__(self, columns: Sequence[str] = (), parts: Sequence[str] = ("year", "month", "day", "dayofweek")):
        self.columns = columns
        self.parts = parts

    def fit(self, X: pd.DataFrame, y=None) -> DateParts:  # noqa: N803 (scikit-learn's naming)
        unknown = [p for p in self.parts if p not in DATE_PARTS]
        if unknown:
            raise ValueError(f"DateParts: unknown part(s) {unknown}; known: {', '.join(DATE_PARTS)}")
        return self

    def __sklearn_is_fitted__(self) -> bool:  # learns nothing: fitted from the start
        return True

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        out = X.copy()
        for col in self.columns:
            when = pd.to_datetime(out[col], errors="coerce", format="mixed")
            for part in self.parts:
                out[f"{col}_{part}"] = getattr(when.dt, part).astype("float64")
        return out

    @staticmethod
    def names(columns: Sequence[str], parts: Sequence[str]) -> list[str]:
        """The columns `transform` adds, in order."""
        return [f"{c}_{p}" for c in columns for p in parts]


TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


class Booleans(BaseEstimator, TransformerMixin):
    """Yes/no columns (True/False, yes/no, t/f, 1/0 in any case) -> 1.0 / 0.0 in place; anything else NaN (imputed
    by the numeric pipeline). Learns nothing."""

    def __init__(self, columns: Sequence[str] = ()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None) -> Booleans:  # noqa: N803
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        out = X.copy()
        for col in self.columns:
            text = out[col].map(lambda v: str(v).strip().lower() if v is not None and v == v else "")
            out[col] = text.map(lambda s: 1.0 if s in TRUE_WORDS else 0.0 if s in FALSE_WORDS else float("nan"))
        return out

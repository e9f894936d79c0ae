"""Shared tabular preprocessing: a ColumnTransformer built from numeric and categorical column lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def make_preprocessor(numeric: Sequence[str], categorical: Sequence[str]) -> ColumnTransformer:
    """Median-impute + scale numeric columns, mode-impute + one-hot categorical ones (unknown categories -> zeros).

    Fit it on the training fold only; transform validation and test rows with what it learned there.
    """
    num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    cat = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)),
        ]
    )
    return ColumnTransformer(
        [("numeric", num, list(numeric)), ("categorical", cat, list(categorical))],
        remainder="drop",
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )

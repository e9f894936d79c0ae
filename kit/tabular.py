"""Tabular competitions: declare columns, feature steps and a model; kit does the fold pipeline and training."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.pipeline import Pipeline
from torch import nn

from kit import train
from kit.errors import DataError
from kit.io import read_csv, show
from kit.preprocess import make_preprocessor
from kit.spec import Competition, Data, FoldOutput


def mlp(n_in: int, n_out: int, width: int = 128, depth: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """inputs -> `depth` x (Linear(width) -> ReLU -> Dropout) -> Linear(n_out); depth=1, width=128 is the seeds' MLP."""
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = width
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


class TabularCompetition(Competition):
    """A competition on one training table: raw columns in, sklearn features, fastai model on the result."""

    raw_columns: ClassVar[list[str]] = []  # must exist in train and test
    raw_numeric: ClassVar[list[str]] = []  # must parse as numbers where present
    numeric_features: ClassVar[list[str]] = []  # after the feature steps: imputed + scaled
    categorical_features: ClassVar[list[str]] = []  # after the feature steps: one-hot

    def feature_steps(self, params: dict[str, Any]) -> list[tuple[str, TransformerMixin]]:
        """sklearn steps run before the shared ColumnTransformer (fit on the training fold, with its labels)."""
        return []

    def model(self, n_in: int, n_out: int, params: dict[str, Any]) -> nn.Module:
        """The network for `n_in` features and `n_out` outputs."""
        return mlp(n_in, n_out, params.get("width", 128), params.get("depth", 1), params.get("dropout", 0.0))

    def pipeline(self, params: dict[str, Any]) -> Pipeline:
        """Feature steps followed by the shared ColumnTransformer."""
        steps = [*self.feature_steps(params), ("columns", make_preprocessor(self.numeric_features,
                                                                           self.categorical_features))]
        return Pipeline(steps)

    def load(self, data_dir: Path) -> Data:
        """Read train, test and sample submission, checking columns, numbers and ids."""
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        paths = {k: data_dir / f for k, f in
                 (("train", self.train_file), ("test", self.test_file), ("sample", self.sample_file))}
        for p in paths.values():
            if not p.is_file():
                raise DataError(f"{p}: file not found; {hint}")
        train = read_csv(paths["train"], required=[self.id_col, self.target_col, *self.raw_columns],
                         numeric=[self.target_col, *self.raw_numeric])
        test = read_csv(paths["test"], required=[self.id_col, *self.raw_columns], numeric=self.raw_numeric)
        sample = read_csv(paths["sample"], required=[self.id_col])
        for name, df in (("train", train), ("test", test)):
            dup = df[self.id_col].duplicated()
            if dup.any():
                i = int(dup.to_numpy().argmax())
                raise DataError(f"{paths[name]}: row {i + 2}, column {self.id_col}: duplicate id "
                                f"{show(df[self.id_col].iloc[i])}")
        missing = set(sample[self.id_col].astype(str)) - set(test[self.id_col].astype(str))
        if missing:
            raise DataError(f"{paths['sample']}: {len(missing)} id(s) not in {paths['test'].name} "
                            f"(e.g. {sorted(missing)[0]})")
        y = self.target(train, paths["train"])
        groups = train[self.group_col].to_numpy() if self.group_col else None
        return Data(train=train, test=test, sample=sample, y=y, files=paths, groups=groups)

    def target(self, train: pd.DataFrame, path: Path) -> np.ndarray:
        """The target column as an array, checked against the task."""
        y = train[self.target_col]
        if y.isna().any():
            i = int(y.isna().to_numpy().argmax())
            raise DataError(f"{path}: row {i + 2}, column {self.target_col}: missing target")
        if self.task == "binary":
            bad = ~y.isin([0, 1])
            if bad.any():
                i = int(bad.to_numpy().argmax())
                raise DataError(f"{path}: row {i + 2}, column {self.target_col}: {show(y.iloc[i])} is not 0 or 1")
            return y.to_numpy().astype(np.int64)
        if self.task == "multiclass":
            return y.to_numpy().astype(np.int64)
        return y.to_numpy().astype(np.float64)

    def n_outputs(self, data: Data) -> int:
        """1 for binary/regression, the number of classes otherwise."""
        if self.task == "multiclass":
            return int(data.y.max()) + 1
        if self.task == "multilabel":
            return int(data.y.shape[1])
        return 1

    def fold_arrays(
        self, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit the pipeline on the training fold (with its labels only); transform valid and test rows."""
        pipe = self.pipeline(params)
        x_train = pipe.fit_transform(data.train.iloc[train_idx], data.y[train_idx])
        x_valid = pipe.transform(data.train.iloc[valid_idx])
        x_test = pipe.transform(data.test)
        return (np.asarray(x_train, dtype=np.float32), np.asarray(x_valid, dtype=np.float32),
                np.asarray(x_test, dtype=np.float32))

    def fit_fold(
        self,
        data: Data,
        train_idx: np.ndarray,
        valid_idx: np.ndarray,
        params: dict[str, Any],
        seed: int,
        callbacks: list | None = None,
        progress: bool = True,
    ) -> FoldOutput:
        """Features on the fold, then `n_models` fastai Learners (seeds seed, seed+1000, ...) averaged."""
        x_train, x_valid, x_test = self.fold_arrays(data, train_idx, valid_idx, params)
        valid, test, hist = [], [], []
        for m in range(int(params.get("n_models", 1))):
            train.seed_everything(seed + 1000 * m)
            dls, test_dl = train.tensor_dataloaders(
                x_train, data.y[train_idx], x_valid, data.y[valid_idx], x_test, int(params.get("bs", 64)), self.task
            )
            model = self.model(x_train.shape[1], self.n_outputs(data), params)
            learn = train.make_learner(dls, model, self.task, params)
            # pruning callbacks watch the first model only: later ones would report the same epochs again
            train.fit(learn, params, cbs=callbacks if m == 0 else None, progress=progress)
            hist = hist or train.history(learn)  # before predicting: get_preds resets the Recorder
            valid.append(train.predict(learn, dls.valid, self.task))
            test.append(train.predict(learn, test_dl, self.task))
        return FoldOutput(valid=np.mean(valid, axis=0), test=np.mean(test, axis=0), history=hist)

    def submission(self, data: Data, test_pred: np.ndarray) -> pd.DataFrame:
        """`id, target` in the sample submission's order."""
        pred = pd.Series(np.asarray(test_pred), index=data.test[self.id_col].to_numpy())
        ids = data.sample[self.id_col].to_numpy()
        return pd.DataFrame({self.id_col: ids, self.target_col: pred.loc[ids].to_numpy()})

"""The nets as model families: `mlp` (the seeds' MLP, or kit.nets' modern one, by `arch`) and `tabm`.

`arch` of the mlp family: `seed` (the seeds' MLP on the shared one-hot/standardised ColumnTransformer, fastai's
`tabular`-style loop below), `modern` (kit.nets: quantile numbers, periodic embeddings, best epoch), `auto`
(the template's default: the seeds' MLP under AUTO_SEED_ROWS training rows, the modern one from there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kit.families.base import Family
from kit.nets.params import AUTO_SEED_ROWS, SEED_PARAMS, MLPParams, TabMParams, auto_models, fold_parts
from kit.spec import Data, FoldOutput

# torch and fastai (kit.learner, kit.nets.fit, kit.predictors) are imported where a net trains: importing them
# took ~4.5 s, which every command that imports a competition paid (blend, submit, board, a tree's train)


def net_space(trial: Any) -> dict[str, Any]:
    """The modern nets' hyper-parameters for one trial (epochs and batch size stay chosen by data size)."""
    return {
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "width": trial.suggest_categorical("width", [128, 256, 512]),
        "depth": trial.suggest_int("depth", 1, 4),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "wd": trial.suggest_float("wd", 1e-6, 1e-2, log=True),
        "label_smoothing": trial.suggest_categorical("label_smoothing", [0.0, 0.1]),
        "num_emb": trial.suggest_categorical("num_emb", ["periodic", "ple", "none"]),
        "front_scale": trial.suggest_categorical("front_scale", [0.0, 6.0]),
    }


class MLP(Family):
    """`--model mlp` (the default): the seeds' MLP or the modern one, by `arch` and the training rows."""

    name, package, params = "mlp", "fastai", MLPParams

    def defaults(self, comp: Any) -> dict[str, Any]:
        """The competition's declared `default_params` (written for this family)."""
        return dict(type(comp).default_params)

    def kind(self, params: dict[str, Any], n_rows: int | None = None) -> str:
        """`seed` or `mlp` (modern); `arch=auto` is the seeds' MLP under AUTO_SEED_ROWS training rows (`n_rows`;
        unknown: the modern one)."""
        arch = params.get("arch", "seed")
        if arch == "auto":
            return "seed" if n_rows is not None and n_rows < AUTO_SEED_ROWS else "mlp"
        return "mlp" if arch == "modern" else "seed"

    def search_space(self, trial: Any, defaults: dict[str, Any]) -> dict[str, Any]:
        """The seeds' MLP: lr, epochs, width, depth, dropout, weight decay, batch size; the modern one: lr, width,
        depth, dropout, weight decay, label smoothing, numerical embeddings, input scale."""
        if self.kind(defaults) != "seed":
            return net_space(trial)
        return {
            "lr": trial.suggest_float("lr", 3e-4, 3e-2, log=True),
            "epochs": trial.suggest_int("epochs", 5, 40, step=5),
            "width": trial.suggest_categorical("width", [32, 64, 128, 256]),
            "depth": trial.suggest_int("depth", 1, 3),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "wd": trial.suggest_float("wd", 1e-4, 0.3, log=True),
            "bs": trial.suggest_categorical("bs", [32, 64, 128]),
        }

    def fit_fold(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, callbacks: list | None = None, progress: bool = True) -> FoldOutput:
        """The modern net (kit.nets.fit), or the seeds' MLP below."""
        from kit.nets import fit as nets_fit

        if self.kind(params, len(train_idx)) != "seed":
            return nets_fit.fit_fold("mlp", comp, data, train_idx, valid_idx, params, seed, callbacks, progress)
        if params.get("arch") == "auto":  # parameters left at the modern net's defaults take the seeds' MLP's
            modern = MLPParams.defaults()
            params = {**params, **{k: v for k, v in SEED_PARAMS.items() if params.get(k) == modern.get(k)}}
        return fit_seed_mlp(comp, data, train_idx, valid_idx, params, seed, callbacks, progress)

    def parts(self, params: dict[str, Any], n_rows: int) -> int:
        """The modern MLP's nets of a fold (kit.nets.params.fold_parts); the seeds' MLP is one part."""
        return 1 if self.kind(params, n_rows) == "seed" else fold_parts("mlp", params)

    def fit_part(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, part: int) -> FoldOutput:
        """The modern MLP's net `part` of the fold."""
        if self.parts(params, len(train_idx)) == 1:
            return super().fit_part(comp, data, train_idx, valid_idx, params, seed, part)
        from kit.nets import fit as nets_fit

        return nets_fit.fit_fold("mlp", comp, data, train_idx, valid_idx, params, seed, progress=False, members=[part])


def fit_seed_mlp(comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, callbacks: list | None = None, progress: bool = True) -> FoldOutput:
    """The seeds' MLP: the competition's pipeline (feature steps + ColumnTransformer) fit on the training fold,
    then `n_models` fastai Learners (seeds seed, seed+1000, ...) averaged; regression targets scaled on the
    training fold (the task's TargetScaler) and predictions unscaled."""
    from kit import learner
    from kit.nets import fit as nets_fit
    from kit.predictors import MLPPredictor, cpu_copy

    p = MLPParams.of(params)
    pipe = comp.pipeline(params)
    x_train = np.asarray(pipe.fit_transform(data.train.iloc[train_idx], data.y[train_idx]), dtype=np.float32)
    x_valid = np.asarray(pipe.transform(data.train.iloc[valid_idx]), dtype=np.float32)
    scaler = comp.task.fit_target(data.y[train_idx])
    y_train, y_valid = scaler.transform_y(data.y[train_idx]), scaler.transform_y(data.y[valid_idx])
    n_out = comp.task.n_outputs(data.y, data.classes)
    bs = p.bs or nets_fit.auto_batch_size(len(train_idx))
    epochs = p.epochs or nets_fit.auto_epochs(len(train_idx))
    params = {**params, "bs": bs, "epochs": epochs}
    valid, models, hist = [], [], []
    for m in range(p.n_models or auto_models("seed")):
        learner.seed_everything(seed + 1000 * m)
        dls, _ = learner.tensor_dataloaders(x_train, y_train, x_valid, y_valid, x_valid[:0], bs, comp.task)
        learn = learner.make_learner(dls, comp.model(x_train.shape[1], n_out, params), comp.task, p.lr, p.wd,
                                     metrics=[learner.competition_metric(comp, scaler)])
        # pruning callbacks watch the first model only: later ones would report the same epochs again
        learner.fit(learn, epochs, p.lr, p.wd, cbs=callbacks if m == 0 else None, progress=progress)
        hist = hist or learner.history(learn)  # before predicting: get_preds resets the Recorder
        valid.append(scaler.inverse(learner.predict(learn, dls.valid, comp.task)))
        models.append(cpu_copy(learn.model))
    predictor = MLPPredictor(pipe, models, scaler, max(bs, 256))
    return FoldOutput(valid=np.mean(valid, axis=0), test=predictor.predict(comp, data), history=hist,
                      predictor=predictor)


class TabM(Family):
    """`--model tabm`: k heads in one BatchEnsemble net, the mean loss over heads, the mean probability."""

    name, package, params = "tabm", "tabm", TabMParams

    def kind(self, params: dict[str, Any], n_rows: int | None = None) -> str:
        """Always `tabm`."""
        return "tabm"

    def search_space(self, trial: Any, defaults: dict[str, Any]) -> dict[str, Any]:
        """The modern nets' space and the number of heads."""
        return {**net_space(trial), "k": trial.suggest_categorical("k", [8, 16, 32])}

    def fit_fold(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, callbacks: list | None = None, progress: bool = True) -> FoldOutput:
        """kit.nets.fit with the TabM module."""
        from kit.nets import fit as nets_fit

        return nets_fit.fit_fold("tabm", comp, data, train_idx, valid_idx, params, seed, callbacks, progress)

    def parts(self, params: dict[str, Any], n_rows: int) -> int:
        """TabM's nets of a fold (one unless `n_models` asks for more: kit.nets.params.fold_parts)."""
        return fold_parts("tabm", params)

    def fit_part(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, part: int) -> FoldOutput:
        """TabM's net `part` of the fold."""
        from kit.nets import fit as nets_fit

        return nets_fit.fit_fold("tabm", comp, data, train_idx, valid_idx, params, seed, progress=False, members=[part])

"""One fold of a tabular net (`mlp` or `tabm`) in fastai's Learner.

The fold's feature steps, then `NetFeatures` (fit on the training fold); the task's loss (label smoothing for
classification unless the metric scores probabilities, the mean over heads for TabM); batch size and epochs
chosen from the training rows when left at 0; `fit_one_cycle` (or `fit_flat_cos`) with the weights of the
best validation epoch restored (`BestEpoch`). Regression targets are standardised on the training fold, on the
scale kit.nets.targets chooses (log1p for a skewed target unless the metric scores squared error; under RMSE,
log1p with the mean restored where a probe on the training fold finds it pays), and predictions are clipped to the
training fold's target range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from kit import learner
from kit.learner import BF16Autocast
from kit.losses import EnsembleLoss
from kit.nets.callbacks import BestEpoch
from kit.nets.features import NetFeatures
from kit.nets.modules import TabM, TabularMLP
from kit.nets.params import MLPParams, TabMParams, auto_models
from kit.nets.targets import fold_target, mean_factor
from kit.predictors import MLPPredictor, cpu_copy
from kit.spec import Data, FoldOutput

# Rows per batch of the auto batch size (was 64): the same epochs in fewer, larger steps. A small net's step on a
# CPU is mostly fixed cost (fastai's callbacks, the optimiser, dropout's random numbers), so a batch up to 512 rows
# costs about what 64 did; measured on the choice tables in bench/results/tabular-ab-batch.md.
PER_BATCH = 32
CLASSIFICATION_PER_BATCH = 16
REFERENCE_ROWS = 64  # the old rule's rows per batch: 1,024 from ~46k rows, and the unit of the epoch budget
# Rows seen per fold at most: the epoch budget of large tables (a cost that grows with the rows, like a tree
# ensemble's). The MLP's regression batches (rows/32, up to 512) are half its classification's (rows/16, up to
# 1,024), so it takes twice the optimiser steps for the same rows, and needs fewer rows (bench/results/
# tabular-ab.md, "Epochs of the MLP's regression"; choice tables, 2 x 5 folds): half the epochs (8 of 16) tied on
# the generated 38,400-row folds of prices (-2.6 +- 6.3 RMSE) at 0.50x the time, 20 of 25 tied on BudgetFood
# (15,300 a fold) at 0.74x, 23 of 30 lost 1 % on DoctorContacts (12,900 a fold: +0.039 +- 0.010); the same
# budget lost on the generated binary table (8 of 16 epochs: -0.0009 +- 0.0006 AUC), so classification keeps it.
# 400,000 leaves every regression table up to ~15,000 rows a fold as it was and trains 16 -> 10 epochs at 38,400.
ROWS_SEEN = 600_000
REGRESSION_ROWS_SEEN = 400_000


def _pow2(x: float, lo: int, hi: int) -> int:
    """The power of two nearest x (in log scale), between 2**lo and 2**hi."""
    return int(2 ** np.clip(round(np.log2(max(x, 1e-9))), lo, hi))


def _reference_batch(n_rows: int) -> int:
    """The old rule's batch: a power of two near n/64, between 32 and 1024."""
    return _pow2(n_rows / REFERENCE_ROWS, 5, 10)


def auto_batch_size(n_rows: int, per: int = PER_BATCH, cap: int = 512) -> int:
    """A power of two near n/`per` between 32 and `cap`, or the n/64 rule's when that is larger (1024 from ~46k
    rows): a fixed 64 made a 500k-row table take 6,000+ steps an epoch."""
    return max(_pow2(n_rows / per, 5, int(np.log2(cap))), _reference_batch(n_rows))


def fold_batch_size(kind: str, task: Any, n_rows: int) -> int:
    """The auto batch of a fold: rows/16 up to 1,024 for the modern MLP's classification, else auto_batch_size's."""
    if kind == "mlp" and task.classification:
        return auto_batch_size(n_rows, per=CLASSIFICATION_PER_BATCH, cap=1024)
    return auto_batch_size(n_rows)


def auto_epochs(n_rows: int, steps: int = 1500, rows: float = ROWS_SEEN, lo: int = 4, hi: int = 40) -> int:
    """Epochs of about `steps` optimiser steps of a rows/64 batch (16-33 epochs for most tables, whatever batch
    is used), but at most `rows` rows seen per fold (between `lo` and `hi` epochs): small tables get the passes a
    net needs, large ones a cost that grows like a tree ensemble's, with the rows."""
    per_epoch = max(1, n_rows // _reference_batch(n_rows))
    return int(np.clip(round(min(steps / per_epoch, rows / max(n_rows, 1))), lo, hi))


def fold_epochs(kind: str, task: Any, n_rows: int) -> int:
    """The auto epochs of a fold: auto_epochs's, with REGRESSION_ROWS_SEEN for the modern MLP's regression."""
    if kind == "mlp" and not task.classification:
        return auto_epochs(n_rows, rows=REGRESSION_ROWS_SEEN)
    return auto_epochs(n_rows)


def target_type(task: Any) -> str | None:
    """scikit-learn TargetEncoder's name for the task's targets (None: multi-label, which it cannot encode)."""
    if task.multi_label:
        return None
    if not task.classification:
        return "continuous"
    return "binary" if task.name == "binary" else "multiclass"


def smoothing(comp: Any, p: MLPParams | TabMParams) -> float:
    """Label smoothing for classification, none when the metric scores probabilities' calibration."""
    if not comp.task.classification or comp.metric.name in ("logloss",):
        return 0.0
    return float(p.label_smoothing)


def numeric_bins(x: np.ndarray, n_bins: int) -> list:
    """Piecewise-linear embeddings' bin edges of each number column of the training fold: its quantiles
    (`rtdl_num_embeddings.compute_bins`), or two edges around a constant column's value."""
    from rtdl_num_embeddings import compute_bins

    x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    bins: list = [torch.stack([x[0, j] - 1, x[0, j] + 1]) for j in range(x.shape[1])]
    varies = [j for j in range(x.shape[1]) if bool((x[:, j] != x[0, j]).any())]
    if varies and len(x) > 2:
        for j, b in zip(varies, compute_bins(x[:, varies], n_bins=min(n_bins, len(x) - 1)), strict=True):
            bins[j] = b
    return bins


def build(kind: str, enc: NetFeatures, n_out: int, comp: Any, p: MLPParams | TabMParams, bins: list | None = None):
    """The fold's module for `kind` (mlp | tabm); `bins`: num_emb=ple's edges (numeric_bins)."""
    common = dict(width=int(p.width), depth=int(p.depth), dropout=float(p.dropout), num_emb=p.num_emb,
                  d_emb=int(p.d_emb), emb_scale=float(p.emb_scale), bins=bins,
                  front_scale=float(p.front_scale))
    if kind == "tabm":
        task = comp.task
        combine = "identity" if not task.classification else ("softmax" if task.single_label and n_out > 1
                                                               else "sigmoid")
        return TabM(enc.n_numeric, enc.cardinalities, n_out, combine, k=int(p.k), arch_type=p.arch_type, **common)
    return TabularMLP(enc.n_numeric, enc.cardinalities, n_out, **common)


# `precision=auto` autocasts batches of at least this many rows: on the AMX CPU of bench/results/tabular-ab.md a run
# at 512-1,024 rows a batch took 0.74-0.96x the time of float32, at 256 (benefits) 0.99x, and at 128 (MedExp)
# 1.0-1.4x (casting the weights every step costs more than the small matmuls gain).
BF16_MIN_BATCH = 512


def bf16(precision: str, bs: int = BF16_MIN_BATCH) -> bool:
    """Whether training batches run under bfloat16 autocast: `bf16`, or `auto` on a CPU with AMX tiles for
    batches of BF16_MIN_BATCH rows or more."""
    if precision == "auto":
        return bs >= BF16_MIN_BATCH and learner.cpu_bf16(precision)
    return precision == "bf16"


def fit_fold(
    kind: str,
    comp: Any,
    data: Data,
    train_idx: np.ndarray,
    valid_idx: np.ndarray,
    params: dict[str, Any],
    seed: int,
    callbacks: list | None = None,
    progress: bool = True,
    members: Sequence[int] | None = None,
) -> FoldOutput:
    """Features on the fold, then `n_models` nets (seeds seed, seed + 1000, ...) averaged; `members`: only those
    of the nets (a part of the fold: fold_parts)."""
    p = (TabMParams if kind == "tabm" else MLPParams).of(params)
    enc = NetFeatures(list(comp.numeric_features), list(comp.categorical_features), num_transform=p.num_transform,
                      max_levels=int(p.max_levels), target_type=target_type(comp.task) if p.target_encode else None,
                      seed=seed)
    pipe = Pipeline([*comp.feature_steps(params), ("net", enc)])
    x_train = np.asarray(pipe.fit_transform(data.train.iloc[train_idx], data.y[train_idx]), dtype=np.float32)
    x_valid = np.asarray(pipe.transform(data.train.iloc[valid_idx]), dtype=np.float32)
    scaler, restore_mean = fold_target(comp.task, data.y[train_idx], p.target_transform, comp.metric.name,
                                       x_train, seed, threads=torch.get_num_threads())
    y_train, y_valid = scaler.transform_y(data.y[train_idx]), scaler.transform_y(data.y[valid_idx])
    n_out = comp.task.n_outputs(data.y, data.classes)
    bs = int(p.bs) or fold_batch_size(kind, comp.task, len(train_idx))
    epochs = int(p.epochs) or fold_epochs(kind, comp.task, len(train_idx))
    loss = comp.task.loss(smoothing(comp, p))
    if kind == "tabm":
        loss = EnsembleLoss(loss)
    valid, fitted, models, hist = [], [], [], []
    autocast = bf16(p.precision, bs)
    bins = numeric_bins(x_train[:, : enc.n_numeric], int(p.n_bins)) if p.num_emb == "ple" and enc.n_numeric else None
    for m in range(int(p.n_models) or auto_models(kind)) if members is None else members:
        learner.seed_everything(seed + 1000 * m)
        dls, train_dl = learner.tensor_dataloaders(x_train, y_train, x_valid, y_valid,
                                                   x_train if restore_mean else x_valid[:0], bs, comp.task)
        learn = learner.make_learner(dls, build(kind, enc, n_out, comp, p, bins), comp.task, p.lr, p.wd,
                                     metrics=[learner.competition_metric(comp, scaler)], loss_func=loss,
                                     opt_func=learner.torch_adamw)
        best = BestEpoch()
        cbs = [best, *([BF16Autocast()] if autocast else []),
               *((callbacks or []) if m == 0 else [])]  # pruning watches the first model only
        learner.fit(learn, epochs, p.lr, p.wd, cbs=cbs, progress=progress, schedule=p.schedule)
        hist = hist or learner.history(learn)
        valid.append(learner.predict(learn, dls.valid, comp.task))
        if restore_mean:
            fitted.append(scaler.inverse(learner.predict(learn, train_dl, comp.task)))
        models.append(cpu_copy(learn.model))
    if restore_mean:
        scaler.factor = mean_factor(data.y[train_idx], np.mean(fitted, axis=0))
    valid = [scaler.inverse(v) for v in valid]
    predictor = MLPPredictor(pipe, models, scaler, max(bs, 1024))
    return FoldOutput(valid=np.mean(valid, axis=0), test=predictor.predict(comp, data), history=hist,
                      predictor=predictor)

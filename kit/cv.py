"""Folds and the cross-validation loop: out-of-fold predictions for every row, test = mean of fold models."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from kit import tasks
from kit.checkpoint import FoldCheckpoint
from kit.errors import KitError
from kit.spec import Competition, Data
from kit.tasks import Task

log = logging.getLogger(__name__)


def make_folds(
    task: Task | str, y: np.ndarray, n_folds: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Fold id (0..n_folds-1) of every row: the task's splitter (stratified for classification,
    multilabel-stratified for multi-label, k-fold for regression), grouped when groups are given; shuffled
    with `seed`."""
    task = tasks.get(task)
    y = np.asarray(y)
    n = len(y)
    if n_folds < 2:
        raise KitError(f"--folds must be at least 2 (got {n_folds})")
    if n < n_folds:
        raise KitError(f"{n} training rows cannot be split into {n_folds} folds")
    x = np.zeros((n, 1))
    if groups is not None:
        # GroupKFold ignores random_state unless shuffle=True (scikit-learn >= 1.6)
        splits = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y, groups)
    else:
        task.check_folds(y, n_folds)
        splits = task.splitter(n_folds, seed).split(x, y)
    folds = np.full(n, -1, dtype=np.int64)
    for k, (_, valid) in enumerate(splits):
        folds[valid] = k
    return folds


def release_accelerator_memory() -> None:
    """Give a finished fold's GPU memory back before the next fold builds its model."""
    torch = sys.modules.get("torch")  # not imported: nothing can hold GPU memory (a tree's folds never import it)
    if torch is not None and torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


@dataclass
class CVResult:
    """Out-of-fold and test predictions of one cross-validated configuration."""

    folds: np.ndarray
    oof: np.ndarray
    test: np.ndarray
    fold_scores: list[float]
    params: dict[str, Any]
    seed: int
    metric: str  # its name
    seconds: float = 0.0
    histories: list[list[dict]] = field(default_factory=list)
    predictors: list = field(default_factory=list)  # one per fold when kept (kit.predictors), for saving the run

    @property
    def mean(self) -> float:
        """Mean of the per-fold scores."""
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        """Standard deviation of the per-fold scores."""
        return float(np.std(self.fold_scores))

    def summary(self) -> str:
        """`accuracy 0.8316 ± 0.0150 over 5 folds`."""
        return f"{self.metric} {self.mean:.4f} ± {self.std:.4f} over {len(self.fold_scores)} folds"

    def as_record(self) -> dict[str, Any]:
        """JSON-friendly summary for run records."""
        return {
            "metric": self.metric,
            "fold_scores": [round(s, 6) for s in self.fold_scores],
            "mean": round(self.mean, 6),
            "std": round(self.std, 6),
            "n_folds": len(self.fold_scores),
            "seconds": round(self.seconds, 2),
        }


def cross_validate(
    comp: Competition,
    data: Data,
    params: dict[str, Any],
    seed: int,
    n_folds: int | None = None,
    callbacks: Callable[[int], list] | None = None,
    on_fold: Callable[[int, float], None] | None = None,
    folds: np.ndarray | None = None,
    progress: bool = True,
    checkpoint: FoldCheckpoint | None = None,
    keep_predictors: bool = False,
    jobs: int | None = 1,
    threads: int | None = None,
) -> CVResult:
    """Fit one model per fold; every training row gets an out-of-fold prediction, the test set the fold mean.

    `callbacks(fold)` supplies extra fastai callbacks for that fold's training (e.g. Optuna pruning);
    `on_fold(fold, score)` runs after each fold, and may raise (e.g. optuna.TrialPruned) to stop early.
    Fold scores use the default decoding (threshold 0.5), so they are not tuned on the rows they score.
    `checkpoint`: finished folds are kept there and reused when the same run is started again;
    `keep_predictors`: return each fold's predictor (to save the run's models); `jobs` > 1: the folds side by side
    in that many worker processes of `threads` torch threads (kit.workers; not with `callbacks`/`on_fold`, which
    watch a fold as it trains); `jobs=None`: the competition's `fold_jobs`, `threads=None`: the cores shared out.
    """
    n_folds = n_folds or comp.n_folds
    if folds is None:
        folds = make_folds(comp.task, data.y, n_folds, seed, comp.fold_groups(data))
    n_folds = int(folds.max()) + 1
    oof: np.ndarray | None = None
    test_sum: np.ndarray | None = None
    scores: list[float] = []
    histories: list[list[dict]] = []
    predictors: list = []
    start = time.perf_counter()
    if jobs is None:
        jobs = comp.fold_jobs(params, len(data.y), n_folds)
    if jobs > 1 and (callbacks is not None or on_fold is not None):
        raise KitError("folds in worker processes (jobs > 1) cannot take callbacks or on_fold")
    ready = _parallel_folds(comp, data, params, seed, folds, checkpoint, keep_predictors, jobs, threads) \
        if jobs > 1 else {}
    for k in range(n_folds):
        train_idx, valid_idx = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        out = ready.pop(k) if k in ready else _resumed(checkpoint, k, n_folds)
        if out is None:
            log.info("fold %d/%d: training on %d rows, validating on %d", k + 1, n_folds, len(train_idx),
                     len(valid_idx))
            out = comp.fit_fold(
                data, train_idx, valid_idx, params, seed=seed + k, callbacks=callbacks(k) if callbacks else None,
                progress=progress,
            )
            if checkpoint is not None:
                checkpoint.save(k, out)
            release_accelerator_memory()
        if oof is None:
            oof = np.full((len(data.y), *out.valid.shape[1:]), np.nan, dtype=np.float64)
            test_sum = np.zeros(out.test.shape, dtype=np.float64)
        oof[valid_idx] = out.valid
        test_sum += out.test
        score = comp.score(data.y[valid_idx], out.valid)
        scores.append(score)
        histories.append(out.history)
        if keep_predictors:
            predictors.append(out.predictor)
        if jobs == 1:
            _log_fold(comp, k, n_folds, k + 1, score, start)
        if on_fold is not None:
            on_fold(k, score)
    assert oof is not None and test_sum is not None
    if np.isnan(oof).any():
        raise KitError("internal error: some rows got no out-of-fold prediction")
    return CVResult(
        folds=folds,
        oof=oof,
        test=test_sum / n_folds,
        fold_scores=scores,
        params=dict(params),
        seed=seed,
        metric=str(comp.metric),
        seconds=time.perf_counter() - start,
        histories=histories,
        predictors=predictors,
    )


def _resumed(checkpoint: FoldCheckpoint | None, k: int, n_folds: int) -> Any:
    """Fold k's output kept by an interrupted run of the same configuration, or None."""
    out = checkpoint.load(k) if checkpoint is not None else None
    if out is not None:  # a warning, so that --quiet still says the run resumed
        log.warning("fold %d/%d: finished in an interrupted run, reused from %s", k + 1, n_folds,
                    checkpoint.directory)
    return out


def _log_fold(comp: Competition, k: int, n_folds: int, finished: int, score: float, start: float) -> None:
    """`fold 3/5: auc 0.8812 (41 s so far, about 27 s to go)` after `finished` of the folds."""
    elapsed = time.perf_counter() - start
    eta = f", about {elapsed / finished * (n_folds - finished):.0f} s to go" if finished < n_folds else ""
    log.info("fold %d/%d: %s %.4f (%.0f s so far%s)", k + 1, n_folds, comp.metric, score, elapsed, eta)


def _parallel_folds(comp: Competition, data: Data, params: dict[str, Any], seed: int, folds: np.ndarray,
                    checkpoint: FoldCheckpoint | None, keep_predictors: bool, jobs: int, threads: int | None) -> dict:
    """Every fold's output: the checkpointed ones reused, the others trained by `jobs` worker processes
    (kit.workers), each saved to the checkpoint as it finishes."""
    from kit.devices import threads_per_job
    from kit.workers import fit_folds, split_pays

    n_folds = int(folds.max()) + 1
    ready = {k: out for k in range(n_folds) if (out := _resumed(checkpoint, k, n_folds)) is not None}
    todo = [k for k in range(n_folds) if k not in ready]
    if not todo:
        return ready
    threads = threads or threads_per_job(jobs)  # before the jobs shrink to the folds left: a resumed run's threads
    jobs = min(jobs, len(todo))  # (and so its sums) are those of the run it resumes
    parts = comp.fold_parts(params, int((folds != todo[0]).sum()))
    parts = parts if split_pays(len(todo), jobs, parts) else 1
    log.info("folds %s: training in %d worker processes of %d thread%s%s", ", ".join(str(k + 1) for k in todo),
             jobs, threads, "s" if threads > 1 else "", f", each fold in {parts} parts" if parts > 1 else "")
    start = time.perf_counter()
    for k, out in fit_folds(comp, data, params, folds, todo, seed, jobs, threads, keep_predictors, parts):
        if checkpoint is not None:
            checkpoint.save(k, out)
        ready[k] = out
        valid_idx = np.flatnonzero(folds == k)
        _log_fold(comp, k, n_folds, len(ready), comp.score(data.y[valid_idx], out.valid), start)
    return ready

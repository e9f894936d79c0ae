"""The Optuna objective: a competition's cross-validated metric, reported per epoch and per fold for pruning."""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

import numpy as np
import optuna
import torch
from fastai.callback.core import Callback, CancelFitException

from kit.cv import cross_validate
from kit.errors import KitError
from kit.spec import Competition, Data

log = logging.getLogger(__name__)

# Intermediate values of fold k use steps k*EPOCH_STEPS + epoch, and (k+1)*EPOCH_STEPS - 1 for the fold's end,
# so a given step means the same point (fold, epoch) in every trial whatever its number of epochs.
EPOCH_STEPS = 1000


def fold_end_step(fold: int) -> int:
    """The step at which the running CV mean is reported after fold `fold`."""
    return (fold + 1) * EPOCH_STEPS - 1


class EpochPruningCallback(Callback):
    """Reports the competition metric on the validation fold after every epoch; cancels the fit when pruned.

    Written instead of optuna-integration's FastAIV2PruningCallback, which runs fine with fastai 2.8 but
    (1) reports `step=self.epoch`, which restarts at 0 in every CV fold, so Optuna drops the later folds'
    values as repeated steps, and (2) can only monitor what the Learner's Recorder records: kit's learners
    record losses, which fall while the competition metric (the study's maximised objective) rises, and
    Optuna's pruners compare intermediate values in the study's direction.
    """

    order = 60  # after Recorder, like fastai's TrackerCallback
    remove_on_fetch = True
    _only_train_loop = True

    def __init__(self, trial: optuna.Trial, comp: Competition, fold: int) -> None:
        self.trial, self.comp, self.fold = trial, comp, fold
        self.pruned_epoch: int | None = None
        self.epochs_seen = 0  # counts across fits: fine_tune runs a frozen fit, then an unfrozen one
        self._preds: list[torch.Tensor] = []
        self._targs: list[torch.Tensor] = []

    def before_validate(self) -> None:
        self._preds, self._targs = [], []

    def after_batch(self) -> None:
        if not self.training:
            self._preds.append(self.pred.detach().float().cpu())
            self._targs.append(self.yb[0].detach().cpu())

    def after_epoch(self) -> None:
        if not self._preds:
            return
        # the loss's own activation, as in prediction; regression scores in the fold's scaled target space,
        # the same for every trial at a given step, which is all a pruner compares
        act = getattr(self.learn.loss_func, "activation", lambda x: x)
        probs = self.comp.task.outputs_to_probs(act(torch.cat(self._preds)).numpy())
        y = torch.cat(self._targs).numpy()
        if self.comp.task.classification:
            y = y.astype(np.int64)
        value = self.comp.score(y, probs)
        epoch, self.epochs_seen = self.epochs_seen, self.epochs_seen + 1
        self.trial.report(value, step=self.fold * EPOCH_STEPS + min(epoch, EPOCH_STEPS - 2))
        if self.trial.should_prune():
            self.pruned_epoch = epoch
            raise CancelFitException()

    def after_fit(self) -> None:
        if self.pruned_epoch is not None:
            raise optuna.TrialPruned(f"pruned at fold {self.fold + 1}, epoch {self.pruned_epoch + 1}")


class FixedParams:
    """A trial whose `suggest_*` returns the `--set` value for fixed names without recording them as searched.

    (Optuna's PartialFixedSampler records them as trial parameters, which breaks retrying a trial whose
    fixed value lies outside the declared range, e.g. epochs=2 for a smoke test.)
    """

    def __init__(self, trial: optuna.Trial | optuna.trial.FixedTrial, fixed: dict[str, Any]) -> None:
        self._trial, self._fixed = trial, fixed

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._trial, name)
        if not name.startswith("suggest_"):
            return attr

        def suggest(param: str, *args: Any, **kwargs: Any) -> Any:
            if param in self._fixed:
                return self._fixed[param]
            try:
                return attr(param, *args, **kwargs)
            except ValueError as e:  # Optuna's storages refuse another set of choices under a stored name
                if "dynamic value space" not in str(e):
                    raise
                now = kwargs.get("choices", args[0] if args else None)
                raise KitError(f"{param}: this study's earlier trials chose from other values than {now!r} "
                               "(a study made by another kit version?); start a new --study") from None

        return suggest


def trial_params(comp: Competition, trial: Any, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The competition's full, checked parameters for `trial` (a live Trial or a FixedTrial of stored params)."""
    fixed = fixed or {}
    return comp.params({**comp.search_space(FixedParams(trial, fixed)), **fixed})


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with values JSON can store (numpy scalars to Python, anything else to str)."""
    return json.loads(json.dumps(params, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def objective(
    trial: optuna.Trial,
    comp: Competition,
    data: Data,
    seed: int,
    splits: np.ndarray | list[np.ndarray],
    fixed: dict[str, Any] | None = None,
) -> float:
    """Mean CV metric of the trial's parameters over every fold of every split (repeated k-fold; `fixed` ones
    override the search), with its standard error; prunable per epoch and fold."""
    splits = [splits] if isinstance(splits, np.ndarray) else list(splits)
    params = trial_params(comp, trial, fixed)
    trial.set_user_attr("params", jsonable(params))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    scores: list[float] = []
    n_folds = int(splits[0].max()) + 1

    def on_fold(k: int, score: float, offset: int = 0) -> None:
        scores.append(score)
        trial.report(float(np.mean(scores)), step=fold_end_step(offset + k))
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after fold {offset + k + 1} (CV so far {np.mean(scores):.4f})")

    try:
        for r, folds in enumerate(splits):
            off = r * n_folds
            cross_validate(
                comp, data, params, seed + 1000 * r, folds=folds, progress=False,
                callbacks=lambda k, off=off: [EpochPruningCallback(trial, comp, off + k)],
                on_fold=lambda k, score, off=off: on_fold(k, score, off),
            )
    except optuna.TrialPruned as e:
        # fastai prefixes exceptions raised in callbacks with a line naming the event; keep Optuna's log one line
        raise optuna.TrialPruned(str(e).strip().splitlines()[-1].strip()) from None
    se = float(np.std(scores, ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else float("nan")
    trial.set_user_attr("fold_scores", [round(s, 6) for s in scores])
    trial.set_user_attr("cv_std", round(float(np.std(scores)), 6))
    trial.set_user_attr("cv_se", round(se, 6))
    log.info("trial %d: %s %.4f ± %.4f (standard error over %d folds = %d split(s) x %d)", trial.number,
             comp.metric, np.mean(scores), se, len(scores), len(splits), n_folds)
    return float(np.mean(scores))


def _probe_trial() -> optuna.Trial:
    """A trial of a throwaway in-memory study (Optuna's creation log line kept quiet), to read a search space."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    finally:
        optuna.logging.set_verbosity(verbosity)


def holds(dist: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether `dist` can sample `value` (in range, on its step, one of its choices), from public attributes only."""
    try:
        internal = dist.to_internal_repr(value)  # a categorical's index; raises for a value not among its choices
    except (ValueError, TypeError):
        return False
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return True
    if isinstance(dist, (optuna.distributions.IntDistribution, optuna.distributions.FloatDistribution)):
        if not dist.low <= internal <= dist.high:
            return False
        if dist.step is None:
            return True
        k = (internal - dist.low) / dist.step  # Optuna's own tolerance for a float step
        return abs(k - round(k)) < 1.0e-8
    return False


def default_trial(comp: Competition, fixed: dict[str, Any]) -> dict[str, Any]:
    """The competition's default parameters as values of the searched distributions (the ones a distribution
    can hold), for the study's first trial: the baseline a tuned result must beat."""
    trial = _probe_trial()
    comp.search_space(FixedParams(trial, fixed))
    defaults = comp.params(dict(fixed))
    out = {}
    for name, dist in trial.distributions.items():
        if name in defaults and holds(dist, defaults[name]):
            out[name] = defaults[name]
    return out


def paired_gain(best: list[float], base: list[float], greater_is_better: bool) -> tuple[float, float]:
    """Mean per-fold gain of `best` over `base` (positive: better) and its standard error."""
    d = np.asarray(best, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    if not greater_is_better:
        d = -d
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
    return float(d.mean()), se


def probe_search_space(comp: Competition, fixed: dict[str, Any]) -> None:
    """Sample the search space in memory and check its bounds with the competition, before touching the study."""
    trial = _probe_trial()
    params = {**comp.search_space(FixedParams(trial, fixed)), **fixed}
    comp.params(params)
    for name, dist in trial.distributions.items():
        if name not in params:
            continue
        categorical = isinstance(dist, optuna.distributions.CategoricalDistribution)
        values = dist.choices if categorical else (dist.low, dist.high)
        for v in values:
            try:
                comp.params({**params, name: v})
            except KitError as e:
                raise KitError(f"search space of {comp.name} offers {name}={v!r}, which it rejects: {e}") from None

"""Studies and their workers for `kit tune`: samplers, pruners, opening a shared study, worker processes."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from kit.devices import threads_per_job
from kit.errors import KitError
from kit.tune import PRUNERS, SAMPLERS
from kit.tune.storage import fail_stale_trials, masked, open_storage
from kit.workers import die_with_parent

log = logging.getLogger(__name__)


@dataclass
class TuneConfig:
    """Everything a worker needs (picklable, so worker processes can be spawned with it)."""

    comp: str
    data_dir: Path
    storage: str
    study: str
    n_trials: int
    timeout: float | None
    sampler: str
    pruner: str
    seed: int
    n_folds: int | None
    heartbeat: int
    fixed: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    model: str | None = None  # tabular model family (None: the competition's own)
    runs: Path | None = None  # run root: caches (decoded images) under runs/<comp>/cache
    repeats: int = 1  # repeated k-fold in the objective (small data: the CV of one split is too noisy to rank)
    quiet: bool = False  # --quiet: spawned workers log warnings and errors only


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """tpe | random | cmaes, seeded."""
    if name == "tpe":
        # constant_liar keeps parallel workers from all sampling next to the same running trial
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        # categorical parameters (CMA-ES cannot) are sampled independently
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise KitError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, n_folds: int) -> optuna.pruners.BasePruner:
    """median | hyperband | none; steps are fold * EPOCH_STEPS + epoch (see kit.tune.objective)."""
    from kit.tune.objective import EPOCH_STEPS

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=n_folds * EPOCH_STEPS, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise KitError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")

def sampler_seed(seed: int, worker: int, n_existing: int) -> int:
    """The sampler's seed for `worker` joining a study that already holds `n_existing` trials.

    Mixing in the trial count makes a resumed run propose new parameters instead of replaying the first run's
    (a sampler re-seeded identically repeats its random start-up proposals); mixing rather than adding keeps
    (worker 1, 0 trials) and (worker 0, 1 trial) apart.
    """
    return int(np.random.SeedSequence([seed, worker, n_existing]).generate_state(1)[0])


def load_study(cfg: TuneConfig, comp, worker: int = 0, create: bool = False) -> optuna.Study:
    """Open (or create) the study in the configured storage, with this worker's sampler and pruner."""
    storage = open_storage(cfg.storage, cfg.heartbeat)
    direction = comp.metric.direction
    sampler = make_sampler(cfg.sampler, cfg.seed + worker)  # replaced below, once the trial count is known
    pruner = make_pruner(cfg.pruner, (cfg.n_folds or comp.n_folds) * cfg.repeats)
    try:
        fresh = create
        if create:
            try:  # an existing study is loaded quietly (Optuna would log a line before a settings error)
                storage.get_study_id_from_name(cfg.study)
                fresh = False
            except KeyError:
                pass
        if fresh:
            study = optuna.create_study(storage=storage, study_name=cfg.study, direction=direction,
                                        sampler=sampler, pruner=pruner, load_if_exists=True)
        else:
            study = optuna.load_study(study_name=cfg.study, storage=storage, sampler=sampler, pruner=pruner)
    except KitError:
        raise
    except Exception as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise KitError(f"storage {masked(cfg.storage)}: cannot open study {cfg.study!r}: "
                       f"{masked(cfg.storage, why)}") from None
    owner = study.user_attrs.get("competition")
    if owner is not None and owner != comp.name:
        raise KitError(f"study {cfg.study!r} in {masked(cfg.storage)} belongs to competition {owner!r}, "
                       f"not {comp.name!r}; choose another --study")
    if study.direction.name.lower() != direction:
        raise KitError(f"study {cfg.study!r} is set to {study.direction.name.lower()}, but {comp.metric} needs "
                       f"{direction}; choose another --study")
    if owner is None and create:
        study.set_user_attr("competition", comp.name)
        study.set_user_attr("metric", str(comp.metric))
    study.sampler = make_sampler(cfg.sampler, sampler_seed(cfg.seed, worker, len(study.get_trials(deepcopy=False))))
    return study


def study_settings(cfg: TuneConfig, comp, data) -> dict[str, Any]:
    """The settings every trial of a study must share: folds, seed, SHA-256 of the data files, `--set` values."""
    from kit.io import sha256_file
    from kit.tune.objective import jsonable

    h = hashlib.sha256()
    for name, path in sorted((data.files or {}).items()):
        h.update(f"{name}={sha256_file(path)}\n".encode())
    return {"folds": int(cfg.n_folds or comp.n_folds), "seed": int(cfg.seed), "data_sha256": h.hexdigest(),
            "set": jsonable(dict(sorted(cfg.fixed.items()))), "repeats": int(cfg.repeats)}


def _describe(key: str, settings: dict[str, Any]) -> str:
    if key == "set":
        return " ".join(f"--set {k}={v}" for k, v in settings["set"].items()) or "no --set"
    if key == "data_sha256":
        return f"data sha256 {settings[key][:12]}"
    return f"--{key} {settings[key]}"


def check_settings(study: optuna.Study, settings: dict[str, Any], storage: str) -> None:
    """Record `settings` on a study that has none; refuse (one line) a run whose settings differ from the study's."""
    have = study.user_attrs.get("settings")
    if have is None:
        study.set_user_attr("settings", settings)
        return
    diff = [k for k in ("folds", "seed", "data_sha256", "set") if have.get(k) != settings.get(k)]
    if diff:
        was = ", ".join(_describe(k, have) for k in diff)
        now = ", ".join(_describe(k, settings) for k in diff)
        raise KitError(f"study {study.study_name!r} in {masked(storage)} was created with {was}; this run has {now}: "
                       "its trials would not be comparable; rerun with the study's settings or choose a new --study")


def worker_competition(cfg: TuneConfig):
    """The competition as the `kit tune` that made `cfg` prepared it (kit.prepare): its model family, caches
    and the `--set` values' decode size, so a spawned worker decodes images at the run's size."""
    from kit.prepare import prepare

    return prepare(cfg.comp, cfg.model, cfg.fixed, cfg.runs).comp


def run_worker(cfg: TuneConfig, worker: int = 0, data=None) -> None:
    """Run `cfg.n_trials` trials (or until the timeout) of the shared study; `worker` offsets the sampler seed."""
    from kit.tune.objective import objective

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    logging.getLogger("kit.cv").setLevel(logging.WARNING)  # Optuna's per-trial line is the progress
    comp = worker_competition(cfg)
    data = data if data is not None else comp.load(cfg.data_dir)
    splits = repeated_folds(comp, data, cfg.n_folds or comp.n_folds, cfg.seed, cfg.repeats)
    study = load_study(cfg, comp, worker)
    fail_stale_trials(study)
    study.optimize(lambda t: objective(t, comp, data, cfg.seed, splits, cfg.fixed),
                   n_trials=cfg.n_trials, timeout=cfg.timeout, catch=())


def repeated_folds(comp, data, n_folds: int, seed: int, repeats: int) -> list:
    """`repeats` fold assignments (seed, seed + 1000, ...): the objective's repeated k-fold, the same in every
    trial and worker, so trials are compared fold by fold."""
    from kit.cv import make_folds

    return [make_folds(comp.task, data.y, n_folds, seed + 1000 * r, comp.fold_groups(data)) for r in range(repeats)]


def auto_repeats(comp, n_rows: int, declared: int | None) -> int:
    """Repeats of k-fold for the objective: `--repeats`, else the competition's `tune_repeats`, else 3 under
    5,000 training rows (one split's CV error there is about the size of the differences a search chases)."""
    if declared is not None:
        if declared < 1:
            raise KitError(f"--repeats must be at least 1 (got {declared})")
        return declared
    own = getattr(comp, "tune_repeats", None)
    return int(own) if own else (3 if n_rows < 5000 else 1)


def _spawned_worker(cfg: TuneConfig, worker: int, parent: int) -> None:
    from kit.cli import run, setup_logging

    die_with_parent(parent)
    setup_logging(quiet=cfg.quiet)

    def go(_argv: Sequence[str] | None) -> int:
        run_worker(cfg, worker)
        return 0

    sys.exit(run(go, None))


def run_workers(cfg: TuneConfig, n_jobs: int, first_worker: int = 0, data=None) -> None:
    """`n_jobs` worker processes on the study, sharing the trials exactly (n_trials split between them)."""
    if n_jobs == 1:
        run_worker(cfg, first_worker, data)
        return
    if cfg.storage.startswith("sqlite"):
        log.warning("SQLite locks under concurrent writers; prefer --storage journal:PATH for --n-jobs > 1")
    ctx = multiprocessing.get_context("spawn")  # fork after torch/fastai initialised is unsafe
    shares = [cfg.n_trials // n_jobs + (i < cfg.n_trials % n_jobs) for i in range(n_jobs)]
    threads = cfg.threads or threads_per_job(n_jobs)
    procs = []
    for i, share in enumerate(shares):
        if share == 0:
            continue
        wcfg = TuneConfig(**{**cfg.__dict__, "n_trials": share, "threads": threads})
        p = ctx.Process(target=_spawned_worker, args=(wcfg, first_worker * n_jobs + i, os.getpid()),
                        name=f"tune-worker-{i}")
        p.start()
        procs.append(p)
    bad = []
    for p in procs:
        p.join()
        if p.exitcode != 0:
            bad.append(f"{p.name} exit {p.exitcode}")
    if bad:
        raise KitError(f"tuning workers failed: {', '.join(bad)}")

"""`kit tune --comp NAME` (≡ `python -m kit tune`): Optuna search over a competition's declared search space.

Resumable (trials live in a storage: SQLite by default, PostgreSQL for many machines, a journal file for
many processes on one machine), prunable (per epoch and per fold), distributable (workers sharing a study
name share the study). After the search the best parameters are refitted, decision thresholds chosen on
their out-of-fold predictions, and a validated submission written whose sidecar names the study and trial.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.commands import args as cargs
from kit.errors import KitError
from kit.tune import PRUNERS, SAMPLERS

if TYPE_CHECKING:  # the library is imported after the arguments are parsed: `--help` needs no optuna
    import optuna

    from kit.tune.study import TuneConfig

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit tune`."""
    p = argparse.ArgumentParser(prog="kit tune", description=__doc__.splitlines()[0])
    cargs.add_comp(p)
    cargs.add_data_dir(p)
    p.add_argument("--n-trials", type=int, default=20, help="trials to add in this run (split among --n-jobs)")
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--sampler", default="tpe", help=f"one of {', '.join(SAMPLERS)}")
    p.add_argument("--pruner", default="median", help=f"one of {', '.join(PRUNERS)}")
    cargs.add_cv(p)
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (default sqlite:///runs/<comp>/optuna.db; postgresql://...; journal:PATH)")
    p.add_argument("--study", default=None, help="study name (default: the competition's name)")
    p.add_argument("--heartbeat", type=int, default=60,
                   help="seconds between worker heartbeats; a trial silent for twice this is failed and retried")
    p.add_argument("--model", default=None,
                   help="tabular competitions: mlp, tabm, lightgbm, xgboost or catboost (default: the competition's)")
    cargs.add_overrides(p, help="fix a hyper-parameter instead of searching it (repeatable), e.g. --set epochs=3")
    p.add_argument("--worker", type=int, default=0,
                   help="this machine's index when several machines share a study (0, 1, ...): the sampler is "
                   "seeded with --seed + index so machines propose different trials")
    cargs.add_threads(p, help="torch threads per worker (default: torch's own for one worker, cores / n-jobs for "
                      "several); 1 is fastest for small tabular models on busy machines")
    p.add_argument("--repeats", type=int, default=None,
                   help="repeated k-fold in the objective (default: the competition's tune_repeats, else 3 under "
                   "5,000 training rows, else 1)")
    p.add_argument("--no-refit", action="store_true", help="search only: no refit, thresholds or submission")
    cargs.add_outputs(p)
    cargs.add_quiet(p, "no per-trial lines, in every worker")
    return p


def check_args(args: argparse.Namespace) -> None:
    """One-line errors for option values argparse cannot check."""
    if args.sampler not in SAMPLERS:
        raise KitError(f"unknown sampler {args.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if args.pruner not in PRUNERS:
        raise KitError(f"unknown pruner {args.pruner!r}; choose one of {', '.join(PRUNERS)}")
    if args.n_trials < 1:
        raise KitError(f"--n-trials must be at least 1 (got {args.n_trials})")
    if args.n_jobs < 1:
        raise KitError(f"--n-jobs must be at least 1 (got {args.n_jobs})")
    if args.timeout is not None and args.timeout <= 0:
        raise KitError(f"--timeout must be positive (got {args.timeout})")
    if args.worker < 0:
        raise KitError(f"--worker must be >= 0 (got {args.worker})")
    if args.threads is not None and args.threads < 1:
        raise KitError(f"--threads must be at least 1 (got {args.threads})")
    if args.heartbeat < 1:
        raise KitError(f"--heartbeat must be at least 1 second (got {args.heartbeat})")


def refit_and_report(cfg: TuneConfig, comp, study: optuna.Study, args: argparse.Namespace, data) -> dict[str, Any]:
    """Best params -> outputs under runs/<comp>/<study>/; unless --no-refit: refit, thresholds, submission."""
    import optuna

    from kit.io import atomic_write_json
    from kit.tune import outputs as tune_outputs
    from kit.tune.objective import jsonable, trial_params
    from kit.tune.selection import choose_trial, cv_confirm
    from kit.tune.storage import masked

    out_dir = Path(args.runs) / comp.name / cfg.study
    counts = tune_outputs.state_counts(study)
    tune_outputs.write_trials(study, out_dir)
    if not counts.get("COMPLETE"):
        raise KitError(f"study {cfg.study!r} has no completed trial yet ({counts}); run more trials")
    best = study.best_trial
    confirm = cv_confirm(comp, data, cfg.n_folds or comp.n_folds, cfg.seed, cfg.repeats)
    chosen, choice = choose_trial(study, best, comp.greater_is_better, confirm)
    print(choice)
    # exactly what the chosen trial ran with (recorded by the objective); rebuilt only for trials that lack it
    params = chosen.user_attrs.get("params") or jsonable(trial_params(comp, optuna.trial.FixedTrial(chosen.params),
                                                                      cfg.fixed))
    tune = {"study": cfg.study, "storage": masked(cfg.storage), "best_trial": best.number,
            "best_value": best.value, "chosen_trial": chosen.number, "choice": choice, "trials": counts,
            "sampler": cfg.sampler, "pruner": cfg.pruner, "fixed": cfg.fixed, "repeats": cfg.repeats}
    tune_outputs.write_best(study, params, out_dir, {"storage": tune["storage"], "seed": cfg.seed,
                                                     "choice": choice}, chosen)
    tune_outputs.write_study_plots(study, out_dir)
    se = best.user_attrs.get("cv_se")
    print(f"study {cfg.study}: {counts}; best trial {best.number}: {comp.metric} {best.value:.4f}"
          + (f" ± {se:.4f} (standard error)" if se is not None else ""))
    print(f"best params: {params}")
    result: dict[str, Any] = {"tune": tune, "params": params, "study_dir": str(out_dir)}
    if not args.no_refit:
        from kit.run import train_and_submit

        run = train_and_submit(comp, cfg.data_dir, params, seed=cfg.seed, n_folds=cfg.n_folds, out=args.out,
                               runs=args.runs, record_extra={"tune": tune}, progress=False, data=data)
        tune_outputs.write_thresholds(run.decoder, comp.metric, out_dir)
        for line in run.decoder.report(comp.metric):
            print(line)
        print(f"refit CV {run.cv.summary()}")
        print(f"submission: {run.submission}")
        result.update(refit_cv=run.cv.as_record(), oof_score=run.oof_score, submission=str(run.submission),
                      run_dir=str(run.run_dir))
    atomic_write_json(out_dir / "tune_result.json", result)
    print(f"study folder: {out_dir}")
    return result


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.cli import setup_logging
    from kit.cv import make_folds
    from kit.params import parse_overrides
    from kit.prepare import prepare
    from kit.tune.objective import default_trial, probe_search_space
    from kit.tune.storage import default_url, masked
    from kit.tune.study import TuneConfig, auto_repeats, check_settings, load_study, run_workers, study_settings
    setup_logging(quiet=args.quiet)
    check_args(args)
    comp = registry.get(args.comp)
    if args.model is not None:
        comp = comp.with_model(args.model)
    if args.threads is None and args.n_jobs == 1:
        args.threads = comp.threads
    cargs.set_threads(args.threads)
    data_dir = cargs.data_dir(args, comp.name)
    # everything that can be wrong is checked before the storage is opened, so bad input leaves the study untouched
    fixed = parse_overrides(args.overrides, comp.default_params)
    comp = prepare(comp, overrides=fixed, runs=args.runs).comp  # image competitions decode at a --set size once
    data = comp.load(data_dir)
    make_folds(comp.task, data.y, args.folds or comp.n_folds, args.seed, comp.fold_groups(data))
    repeats = auto_repeats(comp, len(data.y), args.repeats)
    probe_search_space(comp, fixed)
    # one study per model family: their parameters differ
    own = args.model is None or args.model == getattr(type(comp), "model_family", None)  # the declared family
    study_name = args.study or (comp.name if own else f"{comp.name}-{args.model}")
    cfg = TuneConfig(comp=comp.name, data_dir=data_dir, storage=args.storage or default_url(args.runs, comp.name),
                     study=study_name, n_trials=args.n_trials, timeout=args.timeout,
                     sampler=args.sampler, pruner=args.pruner, seed=args.seed, n_folds=args.folds,
                     heartbeat=args.heartbeat, fixed=fixed, threads=args.threads, model=args.model,
                     runs=args.runs, repeats=repeats, quiet=args.quiet)
    settings = study_settings(cfg, comp, data)
    study = load_study(cfg, comp, create=True)
    check_settings(study, settings, cfg.storage)
    if args.worker == 0 and not any(t.user_attrs.get("defaults") for t in study.get_trials(deepcopy=False)):
        # the first trial runs the defaults: the refit keeps them unless a trial beats them by more than its SE.
        # Only worker 0 queues it: machines started together on one study would otherwise each queue (and run)
        # the defaults; skip_if_exists covers a second worker-0 process racing this one.
        study.enqueue_trial(default_trial(comp, fixed), user_attrs={"defaults": True}, skip_if_exists=True)
    log.info("study %s in %s: %d trial(s) so far", cfg.study, masked(cfg.storage), len(study.trials))
    run_workers(cfg, args.n_jobs, args.worker, data)
    refit_and_report(cfg, comp, study, args, data)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit tune`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

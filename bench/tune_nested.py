"""Nested estimate of what `kit tune` is worth on small data: search on the training part of each outer fold,
score the refit on its held-out part; defaults vs the tuned choice (with kit's keep-the-defaults rule) vs the
best trial taken as is. Kaggle's Titanic train.csv, the MLP.

Usage: python bench/tune_nested.py [--data-dir ../shared/data/titanic] [--trials 15] [--outer 5] [--seed 0]
Appends its section to bench/results/tune.md (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import optuna
from machine import cpu_model, load_text

from kit import registry
from kit.cv import cross_validate, make_folds
from kit.io import atomic_write_text
from kit.spec import Data
from kit.tune.objective import default_trial, objective
from kit.tune.selection import choose_trial, cv_confirm
from kit.tune.study import repeated_folds

ROOT = Path(__file__).resolve().parents[1]
MARK = "## Nested estimate: is tuning worth it on 891 rows?"


def held_out_accuracy(comp, inner: Data, y_outer: np.ndarray, params: dict, seed: int) -> float:
    """Refit as `kit tune` does (5-fold CV on the inner rows, decoding chosen on their OOF), score the outer rows."""
    cv = cross_validate(comp, inner, params, seed, n_folds=5, progress=False)
    decoder = comp.decoder().fit(inner.y, cv.oof, comp.metric, inner.classes)
    return float(comp.metric(y_outer, decoder.apply(cv.test)))


def main(argv: list[str] | None = None) -> int:
    """Run the nested comparison and write its section of bench/results/tune.md."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "titanic")
    p.add_argument("--trials", type=int, default=15)
    p.add_argument("--outer", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tune.md")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started, load0, t0 = dt.datetime.now(dt.UTC), os.getloadavg(), time.perf_counter()
    comp = registry.get("titanic")
    data = comp.load(a.data_dir)
    outer = make_folds(comp.task, data.y, a.outer, a.seed + 500)
    arms: dict[str, list[float]] = {"defaults": [], "tuned (kit's rule)": [], "best trial as is": []}
    kept = 0
    for o in range(a.outer):
        tr, te = np.flatnonzero(outer != o), np.flatnonzero(outer == o)
        inner = Data(train=data.train.iloc[tr].reset_index(drop=True), test=data.train.iloc[te].reset_index(drop=True),
                     sample=data.sample, y=data.y[tr], files=data.files, classes=data.classes)
        splits = repeated_folds(comp, inner, 5, a.seed, 3)
        study = optuna.create_study(direction=comp.metric.direction,
                                    sampler=optuna.samplers.TPESampler(seed=a.seed + o),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
        study.enqueue_trial(default_trial(comp, {}), user_attrs={"defaults": True})
        study.optimize(lambda t, inner=inner, splits=splits: objective(t, comp, inner, a.seed, splits),
                       n_trials=a.trials)
        confirm = cv_confirm(comp, inner, 5, a.seed, 3)  # kit's rule: a margin must survive fresh splits
        chosen, why = choose_trial(study, study.best_trial, comp.greater_is_better, confirm)
        kept += chosen.user_attrs.get("defaults", False)
        y_outer = data.y[te]
        arms["defaults"].append(held_out_accuracy(comp, inner, y_outer, comp.params(), a.seed))
        arms["tuned (kit's rule)"].append(held_out_accuracy(comp, inner, y_outer, chosen.user_attrs["params"], a.seed))
        arms["best trial as is"].append(held_out_accuracy(comp, inner, y_outer, study.best_trial.user_attrs["params"],
                                                          a.seed))
        print(f"outer fold {o + 1}/{a.outer}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in arms.items())
              + f" — {why}", flush=True)
    base = np.asarray(arms["defaults"])
    lines = [MARK, "",
             f"`python bench/tune_nested.py --trials {a.trials} --outer {a.outer} --seed {a.seed}` "
             f"({started.strftime('%Y-%m-%d %H:%M UTC')}, {time.perf_counter() - t0:.0f} s; {cpu_model()}, "
             f"{os.cpu_count()} cores, load {load_text(load0)} → {load_text(os.getloadavg())}). For each of "
             f"{a.outer} outer folds of Kaggle's train.csv: a {a.trials}-trial TPE search (trial 0 = the defaults; "
             "objective: 3 × 5-fold repeated CV of the inner rows), then a refit on the inner rows (5-fold CV, "
             "threshold chosen on their OOF) scored on the held-out outer rows. The defaults were kept in "
             f"{kept} of {a.outer} outer folds.", "",
             "| arm | held-out accuracy (mean ± std over outer folds) | vs defaults, paired ± SE |", "|---|---:|---:|"]
    for name, v in arms.items():
        d = np.asarray(v) - base
        se = d.std(ddof=1) / np.sqrt(len(d))
        lines.append(f"| {name} | {np.mean(v):.4f} ± {np.std(v):.4f} | "
                     + ("—" if name == "defaults" else f"{d.mean():+.4f} ± {se:.4f}") + " |")
    d = np.asarray(arms["tuned (kit's rule)"]) - base
    se = d.std(ddof=1) / np.sqrt(len(d))
    lines += ["", f"- Target \"tuned-vs-default nested difference ≥ 0 (no harm from tuning)\": {d.mean():+.4f} ± "
              f"{se:.4f} — {'met' if d.mean() >= -se else 'NOT met'} (a difference within one SE counts as a tie)."]
    old = a.out.read_text() if a.out.is_file() else ""
    keep = old.split(MARK)[0].rstrip() if MARK in old else old.rstrip()
    text = (keep + "\n\n" if keep else "") + "\n".join(lines) + "\n"
    atomic_write_text(a.out, text)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

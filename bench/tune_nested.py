"""Nested estimate of what `kit tune` is worth: search on the training part of each outer fold, score the
refit on its held-out part; defaults vs the tuned choice (with kit's keep-the-defaults rule) vs the best trial
taken as is. Kaggle's Titanic train.csv with its MLP, or one of bench/tabular.py's real tables (`--table`) with
any family (`--family`).

Usage: python bench/tune_nested.py [--data-dir ../shared/data/titanic] [--trials 15] [--outer 5] [--seed 0]
       python bench/tune_nested.py --table doctorcontacts --family lightgbm [--outer 3] [--repeats 2] ...
Appends its section to bench/results/tune.md (replacing an earlier one for the same data and family).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
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
MARK = "## Nested estimate: is tuning worth it on 891 rows?"  # Titanic's section (its title since the first run)


def mark(table: str | None, family: str, rows: int) -> str:
    """The section's title: one section per data set and family."""
    return MARK if table is None else f"## Nested estimate: is tuning worth it on {table} ({rows:,} rows, {family})?"


def held_out_score(comp, inner: Data, y_outer: np.ndarray, params: dict, seed: int) -> float:
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
    p.add_argument("--table", default=None, help="one of bench/tabular.py's tables instead of Titanic")
    p.add_argument("--family", default=None, help="the model family (default: the competition's own)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the inner 5-fold CV (objective and confirm)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tune.md")
    a = p.parse_args(argv)
    import torch

    if a.table is None:
        torch.set_num_threads(1)  # Titanic's MLP is tiny
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started, load0, t0 = dt.datetime.now(dt.UTC), os.getloadavg(), time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="kit-bench-nested-")  # the table's files, kept for the whole run
    comp, data, what = load(a, Path(tmp.name))
    family = a.family or comp.model_family
    comp = comp.with_model(family) if a.family else comp
    outer = make_folds(comp.task, data.y, a.outer, a.seed + 500)
    arms: dict[str, list[float]] = {"defaults": [], "tuned (kit's rule)": [], "best trial as is": []}
    kept = 0
    for o in range(a.outer):
        tr, te = np.flatnonzero(outer != o), np.flatnonzero(outer == o)
        inner = Data(train=data.train.iloc[tr].reset_index(drop=True), test=data.train.iloc[te].reset_index(drop=True),
                     sample=data.sample, y=data.y[tr], files=data.files, classes=data.classes)
        splits = repeated_folds(comp, inner, 5, a.seed, a.repeats)
        study = optuna.create_study(direction=comp.metric.direction,
                                    sampler=optuna.samplers.TPESampler(seed=a.seed + o),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
        study.enqueue_trial(default_trial(comp, {}), user_attrs={"defaults": True})
        study.optimize(lambda t, inner=inner, splits=splits: objective(t, comp, inner, a.seed, splits),
                       n_trials=a.trials)
        confirm = cv_confirm(comp, inner, 5, a.seed, a.repeats)  # kit's rule: a margin must survive fresh splits
        chosen, why = choose_trial(study, study.best_trial, comp.greater_is_better, confirm)
        kept += chosen.user_attrs.get("defaults", False)
        y_outer = data.y[te]
        arms["defaults"].append(held_out_score(comp, inner, y_outer, comp.params(), a.seed))
        arms["tuned (kit's rule)"].append(held_out_score(comp, inner, y_outer, chosen.user_attrs["params"], a.seed))
        arms["best trial as is"].append(held_out_score(comp, inner, y_outer, study.best_trial.user_attrs["params"],
                                                          a.seed))
        print(f"outer fold {o + 1}/{a.outer}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in arms.items())
              + f" — {why}", flush=True)
    base = np.asarray(arms["defaults"])
    title = mark(a.table, family, len(data.y))
    command = " ".join(["python bench/tune_nested.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [title, "",
             f"`{command}` "
             f"({started.strftime('%Y-%m-%d %H:%M UTC')}, {time.perf_counter() - t0:.0f} s; {cpu_model()}, "
             f"{os.cpu_count()} cores, load {load_text(load0)} → {load_text(os.getloadavg())}). For each of "
             f"{a.outer} outer folds of {what}: a {a.trials}-trial TPE search of `{family}` (trial 0 = the defaults; "
             f"objective: {a.repeats} × 5-fold repeated CV of the inner rows; kit's rule confirms a winner on "
             f"{a.repeats} × 5 fresh folds), then a refit on the inner rows (5-fold CV, decoding chosen on their "
             "OOF) scored on the held-out outer rows. The defaults were kept in "
             f"{kept} of {a.outer} outer folds.", "",
             f"| arm | held-out {comp.metric} (mean ± std over outer folds) | vs defaults, paired ± SE |",
             "|---|---:|---:|"]
    for name, v in arms.items():
        d = np.asarray(v) - base
        se = d.std(ddof=1) / np.sqrt(len(d))
        lines.append(f"| {name} | {np.mean(v):.4f} ± {np.std(v):.4f} | "
                     + ("—" if name == "defaults" else f"{d.mean():+.4f} ± {se:.4f}") + " |")
    d = np.asarray(arms["tuned (kit's rule)"]) - base
    d = d if comp.greater_is_better else -d
    se = d.std(ddof=1) / np.sqrt(len(d))
    lines += ["", f"- Target \"tuned at least as good as the defaults (no harm from tuning)\": gain {d.mean():+.4f} ± "
              f"{se:.4f} — {'met' if d.mean() >= -se else 'NOT met'} (a difference within one SE counts as a tie)."]
    old = a.out.read_text() if a.out.is_file() else ""
    text = replace_section(old, title, "\n".join(lines))
    atomic_write_text(a.out, text)
    print("\n".join(lines))
    return 0


def load(a: argparse.Namespace, tmp: Path) -> tuple:
    """(competition, data, what it is) for Titanic or a bench/tabular.py table written in Kaggle's layout."""
    if a.table is None:
        comp = registry.get("titanic")
        return comp, comp.load(a.data_dir), "Kaggle's Titanic train.csv"
    from tabular import TABLES, write_table

    if a.table not in TABLES:
        raise SystemExit(f"--table {a.table}: not a table; choose from {', '.join(sorted(TABLES))}")
    t = TABLES[a.table]
    os.environ["KIT_COMPETITIONS_PATH"] = str(tmp / "comps")
    data_dir, _, _ = write_table(t, tmp)
    comp = registry.get(t.name)
    return comp, comp.load(data_dir), f"the training rows of {t.key} ({t.note.split(':')[0]}, a {t.role} table)"


def replace_section(old: str, title: str, section: str) -> str:
    """`old` with the section under `title` replaced by `section` (appended when absent); the others kept."""
    chunks = ("\n" + old).split("\n## ")
    head, sections = chunks[0].strip(), ["## " + c.rstrip() for c in chunks[1:]]
    kept = [c for c in sections if c.splitlines()[0] != title]
    return "\n\n".join([x for x in (head, *kept, section) if x]) + "\n"


if __name__ == "__main__":
    sys.exit(main())

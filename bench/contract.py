"""The competition contract on real data: kit's default tabular MLP vs scikit-learn baselines, declarations only.

Three small data sets shipped with scikit-learn are written in Kaggle's layout (train.csv with an id column,
test.csv with 20 % of the rows held out, sample_submission.csv) into a temporary folder, each with a competition
folder holding nothing but the README template's declarations (no default_params, no search space, no feature
steps), found by kit through KIT_COMPETITIONS_PATH:

- wine: multiclass, text labels (barolo / grignolino / barbera), accuracy; ~5 % NaNs in two numeric columns
  and a text column (binned alcohol: low / mid / high) for the template's categorical path;
- diabetes: regression on the raw-scale target (mean ~150), rmse; `sex` as text (f / m);
- breast_cancer: binary, text labels (benign / malignant), logloss, a probability submission (id,target=0.5).

Every model sees the same folds (kit's make_folds, one 5-fold split per seed) and the same features (kit's
fold pipeline, fit on each training fold); every fold is scored with the competition's metric exactly as
`Competition.score` does. torch runs on 1 CPU thread.

Usage: python bench/contract.py [--seeds 0 1 2] [--only wine ...] [--set epochs=40 ...] [--out FILE]
Writes bench/results/contract.md (`make bench-contract ARGS='...'`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import cpu_model, load_text, versions
from sklearn import datasets
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from kit import registry
from kit.cv import cross_validate, make_folds
from kit.errors import KitError
from kit.io import atomic_write_text
from kit.params import parse_overrides
from kit.spec import Competition, Data
from kit.tabular import DEFAULT_PARAMS

ROOT = Path(__file__).resolve().parents[1]

FOLDS = 5
TEST_SIZE = 0.2
PREFIX = "contract_"  # competition names: contract_wine, ... (no clash with the repository's competitions)
KIT = "kit MLP (defaults)"

# The README's "Adding a competition" template with only its declarations: no default_params, no feature_steps,
# no search_space, so kit's own defaults (kit.tabular.DEFAULT_PARAMS) are what is measured.
TEMPLATE = '''\
# competitions/{name}/__init__.py (written by bench/contract.py from the README's template, declarations only)
from kit.tabular import TabularCompetition


class {cls}(TabularCompetition):
    name, slug = "{name}", "{name}-slug"
    task = "{task}"
    id_col, target_col = "id", "target"
    train_file, test_file, sample_file = "train.csv", "test.csv", "sample_submission.csv"
    metric = "{metric}"
    n_folds = {folds}
    group_col = None
    raw_columns = {raw!r}
    raw_numeric = {numeric!r}
    numeric_features = {numeric!r}
    categorical_features = {categorical!r}


COMPETITION = {cls}()
'''


# ---- the data sets ---------------------------------------------------------------------------------------------
def _snake(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.strip().lower()).strip("_")


def wine(rng: np.random.Generator) -> tuple[pd.DataFrame, list[str], list[str]]:
    """178 wines, 13 measurements, 3 cultivars as text; NaNs in magnesium and color_intensity; binned alcohol."""
    b = datasets.load_wine()
    df = pd.DataFrame(b.data, columns=[_snake(c) for c in b.feature_names])
    numeric = list(df.columns)
    for col in ("magnesium", "color_intensity"):
        df.loc[rng.random(len(df)) < 0.05, col] = np.nan
    df["alcohol_level"] = pd.qcut(df["alcohol"], 3, labels=["low", "mid", "high"]).astype(str)
    df["target"] = np.array(["barolo", "grignolino", "barbera"], dtype=object)[b.target]
    return df, numeric, ["alcohol_level"]


def diabetes(rng: np.random.Generator) -> tuple[pd.DataFrame, list[str], list[str]]:
    """442 patients, 10 baseline variables on their raw scale, disease progression after a year (mean ~152)."""
    b = datasets.load_diabetes(scaled=False)
    df = pd.DataFrame(b.data, columns=[_snake(c) for c in b.feature_names])
    df["sex"] = np.where(df["sex"] == 1, "f", "m")
    df["target"] = b.target
    return df, [c for c in df.columns if c not in ("sex", "target")], ["sex"]


def breast_cancer(rng: np.random.Generator) -> tuple[pd.DataFrame, list[str], list[str]]:
    """569 tumours, 30 measurements, benign / malignant as text."""
    b = datasets.load_breast_cancer()
    df = pd.DataFrame(b.data, columns=[_snake(c) for c in b.feature_names])
    numeric = list(df.columns)
    df["target"] = np.where(b.target == 0, "malignant", "benign")  # sklearn: 0 = malignant, 1 = benign
    return df, numeric, []


@dataclass
class DataSet:
    key: str
    task: str
    metric: str
    build: Callable[[np.random.Generator], tuple[pd.DataFrame, list[str], list[str]]]
    sample: Callable[[pd.DataFrame], Any]  # the sample submission's constant, from the training rows
    note: str

    @property
    def name(self) -> str:
        return PREFIX + self.key


DATASETS = {d.key: d for d in (
    DataSet("wine", "multiclass", "accuracy", wine, lambda tr: tr["target"].iloc[0],
            "load_wine: text labels, 5 % NaNs in magnesium and color_intensity, binned alcohol as text"),
    DataSet("diabetes", "regression", "rmse", diabetes, lambda tr: round(float(tr["target"].mean()), 1),
            "load_diabetes(scaled=False): raw-scale target, sex as f/m"),
    DataSet("breast_cancer", "binary", "logloss", breast_cancer, lambda tr: 0.5,
            "load_breast_cancer: benign/malignant as text, probability submission id,target=0.5"),
)}


def write_dataset(ds: DataSet, root: Path, seed: int = 0) -> tuple[Path, pd.Series, dict[str, int]]:
    """competitions/<name>/ under root/comps and Kaggle's files under root/data/<name>; the held-out targets."""
    rng = np.random.default_rng(seed)
    df, numeric, categorical = ds.build(rng)
    strat = df["target"] if ds.task != "regression" else None
    train, test = train_test_split(df, test_size=TEST_SIZE, random_state=seed, stratify=strat)
    train = train.reset_index(drop=True)
    test = test.reset_index(drop=True)
    train.insert(0, "id", np.arange(1, len(train) + 1))
    test.insert(0, "id", np.arange(len(train) + 1, len(train) + len(test) + 1))
    data_dir = root / "data" / ds.name
    data_dir.mkdir(parents=True, exist_ok=True)  # the same files again (deterministic in seed)
    train.to_csv(data_dir / "train.csv", index=False)
    test.drop(columns="target").to_csv(data_dir / "test.csv", index=False)
    test[["id"]].assign(target=ds.sample(train)).to_csv(data_dir / "sample_submission.csv", index=False)
    pkg = root / "comps" / ds.name
    pkg.mkdir(parents=True, exist_ok=True)
    cls = "".join(p.capitalize() for p in ds.name.split("_"))
    (pkg / "__init__.py").write_text(TEMPLATE.format(
        name=ds.name, cls=cls, task=ds.task, metric=ds.metric, folds=FOLDS, raw=[*numeric, *categorical],
        numeric=numeric, categorical=categorical))
    return data_dir, test["target"], {"train": len(train), "test": len(test), "features": len(numeric) +
                                      len(categorical)}


# ---- the models ------------------------------------------------------------------------------------------------
def baselines(task: str) -> dict[str, Callable[[int], Any]]:
    """scikit-learn baselines for the task (default hyper-parameters, a high max_iter for the linear model)."""
    if task == "regression":
        return {"Ridge": lambda seed: Ridge(),
                "HistGradientBoosting": lambda seed: HistGradientBoostingRegressor(random_state=seed)}
    return {"LogisticRegression": lambda seed: LogisticRegression(max_iter=10_000),
            "HistGradientBoosting": lambda seed: HistGradientBoostingClassifier(random_state=seed)}


def predict(model: Any, x: np.ndarray, comp: Competition) -> np.ndarray:
    """Predictions in kit's shape: P(positive) for binary, (n, k) probabilities for multiclass, values else."""
    if not comp.task.classification:
        return model.predict(x)
    probs = model.predict_proba(x)
    assert list(model.classes_) == list(range(probs.shape[1])), model.classes_  # every class in the fold
    return probs[:, 1] if comp.task.name == "binary" else probs


def baseline_cv(comp: Competition, data: Data, folds: np.ndarray, params: dict[str, Any], make: Callable,
                seed: int) -> tuple[list[float], np.ndarray, float]:
    """Fold scores (the competition's metric, as Competition.score), fold-mean test predictions, seconds."""
    scores, test, start = [], [], time.perf_counter()
    for k in range(int(folds.max()) + 1):
        tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        x_tr, x_va, x_te = comp.fold_arrays(data, tr, va, params)  # kit's pipeline, fit on the training fold
        model = make(seed).fit(x_tr, data.y[tr])
        scores.append(comp.score(data.y[va], predict(model, x_va, comp)))
        test.append(predict(model, x_te, comp))
    return scores, np.mean(test, axis=0), time.perf_counter() - start


@dataclass
class Outcome:
    """One data set's results: per model, per seed, the fold scores; times; held-out scores; failures."""

    ds: DataSet
    comp: Competition | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, list[list[float]]] = field(default_factory=dict)
    seed_seconds: dict[str, list[float]] = field(default_factory=dict)
    heldout: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, model: str, scores: list[float], secs: float, heldout: float) -> None:
        self.scores.setdefault(model, []).append(scores)
        self.seed_seconds.setdefault(model, []).append(secs)
        self.heldout.setdefault(model, []).append(heldout)

    def seconds(self, model: str) -> float:
        return float(sum(self.seed_seconds[model]))

    def flat(self, model: str) -> np.ndarray:
        return np.concatenate(self.scores[model])


def run_dataset(ds: DataSet, root: Path, seeds: list[int], overrides: list[str]) -> Outcome:
    """Write the data set, load it through the registry, cross-validate kit and the baselines on the same folds."""
    out = Outcome(ds)
    data_dir, y_test_raw, out.sizes = write_dataset(ds, root)
    try:
        comp = out.comp = registry.get(ds.name)
        data = comp.load(data_dir)
        out.params = comp.params(parse_overrides(overrides, comp.default_params))
    except Exception:
        out.errors.append(f"loading {ds.name}:\n{traceback.format_exc()}")
        print(out.errors[-1], file=sys.stderr, flush=True)
        return out
    if data.classes is not None:
        pos = {c: i for i, c in enumerate(data.classes)}
        y_test = np.array([pos[v] for v in y_test_raw], dtype=np.int64)
    else:
        y_test = y_test_raw.to_numpy(dtype=np.float64)
    print(f"[{ds.key}] {out.sizes['train']} train / {out.sizes['test']} test rows, {comp.task}, {comp.metric}; "
          f"classes {data.classes}; kit params {out.params}", flush=True)
    kit_ok = True
    for seed in seeds:
        folds = make_folds(comp.task, data.y, FOLDS, seed)
        if kit_ok:
            try:
                res = cross_validate(comp, data, out.params, seed, folds=folds, progress=False)
                out.add(KIT, res.fold_scores, res.seconds, comp.score(y_test, res.test))
            except Exception:
                kit_ok = False
                out.errors.append(f"kit cross_validate on {ds.name}, seed {seed}:\n{traceback.format_exc()}")
                print(out.errors[-1], file=sys.stderr, flush=True)
        for name, make in baselines(ds.task).items():
            try:
                scores, test, secs = baseline_cv(comp, data, folds, out.params, make, seed)
                out.add(name, scores, secs, comp.score(y_test, test))
            except Exception:
                out.errors.append(f"{name} on {ds.name}, seed {seed}:\n{traceback.format_exc()}")
                print(out.errors[-1], file=sys.stderr, flush=True)
        line = ", ".join(f"{m} {np.mean(s[-1]):.4f} ({out.seed_seconds[m][-1]:.1f} s)" for m, s in out.scores.items())
        print(f"[{ds.key}] seed {seed}: {comp.metric} {line}", flush=True)
    return out


# ---- the report ------------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    best: str
    kit: float
    best_mean: float
    diff: np.ndarray  # kit - best, per fold
    se: float
    ratio: float
    within: bool
    verdict: str


def compare(o: Outcome) -> Comparison | None:
    """kit against the best baseline (by mean over all folds), paired over the same folds."""
    base = [m for m in o.scores if m != KIT]
    if KIT not in o.scores or not base or o.comp is None:
        return None
    hib = o.comp.greater_is_better
    best = (max if hib else min)(base, key=lambda m: float(np.mean(o.flat(m))))
    kit, best_mean = float(np.mean(o.flat(KIT))), float(np.mean(o.flat(best)))
    diff = o.flat(KIT) - o.flat(best)
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
    gain = diff.mean() if hib else -diff.mean()  # > 0: kit is better
    verdict = "beats" if gain > se else "ties" if gain >= -se else "loses to"
    within = kit >= 0.98 * best_mean if hib else kit <= 1.02 * best_mean
    return Comparison(best, kit, best_mean, diff, se, kit / best_mean, within, verdict)










def report(outcomes: list[Outcome], a: argparse.Namespace, started: dt.datetime, load0: tuple, load1: tuple,
           wall: float, threads: int, device: str) -> str:
    """The markdown file."""
    n_cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else n_cores
    cmd = "python bench/contract.py" + ("" if not a.argv else " " + shlex.join(a.argv))
    lines = [
        "# Contract benchmark: kit's default tabular MLP vs scikit-learn baselines",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; total wall time {wall:.0f} s",
        f"- command: `{cmd}` (`make bench-contract ARGS='...'`)",
        f"- machine: {cpu_model()}, {n_cores} cores ({usable} usable); load average (1/5/15 min) at start "
        f"{load_text(load0)}, at end {load_text(load1)}",
        f"- kit on {device}, torch CPU threads {threads} (`torch.set_num_threads(1)`: fastest for these tiny MLPs); "
        "the baselines on 1 thread too (threadpoolctl: OpenMP and BLAS limited to 1)",
        f"- versions: {versions()}",
        f"- kit's parameters: the competitions declare none, so kit.tabular.DEFAULT_PARAMS `{DEFAULT_PARAMS}`"
        + (f", with `--set {' '.join(a.set)}`" if a.set else ""),
        "",
        "Each data set from scikit-learn is written in Kaggle's layout into a temporary folder (train.csv with an id "
        f"column, test.csv = {TEST_SIZE:.0%} of the rows held out, sample_submission.csv), with a competition folder "
        "holding only the README template's declarations (no default_params, no search space), found through "
        "KIT_COMPETITIONS_PATH and loaded with `registry.get(name).load(dir)`. Every model sees the same "
        f"{FOLDS}-fold splits (`make_folds(comp.task, data.y, {FOLDS}, seed)`, seeds {', '.join(map(str, a.seeds))}) "
        "and the same features: kit's fold pipeline (median impute + scale, mode impute + one-hot) fit on each "
        "training fold. Every fold is scored with the competition's metric as `Competition.score` does "
        "(argmax / threshold 0.5 for labels, probabilities for logloss). Baselines use scikit-learn's defaults "
        "(LogisticRegression with max_iter=10000). mean ± std over all folds; \"held-out\": the fold-mean "
        "test predictions scored on the held-out rows (mean over seeds; few rows, so noisy).",
        "",
        "## Summary",
        "",
        "| data set | task, metric | train/test rows | kit | best baseline | kit − best, paired (± SE) | kit/best "
        "| within 2 % of best | kit time (s) | best's time (s) |",
        "|---|---|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for o in outcomes:
        c = compare(o)
        head = f"| {o.ds.key} | {o.ds.task}, {o.ds.metric} | {o.sizes.get('train', '?')}/{o.sizes.get('test', '?')} |"
        if c is None:
            lines.append(head + " failed, see below | | | | | | |")
            continue
        arrow = "higher" if o.comp.greater_is_better else "lower"
        lines.append(
            f"{head} {c.kit:.4f} ± {np.std(o.flat(KIT)):.4f} | {c.best} {c.best_mean:.4f} ± "
            f"{np.std(o.flat(c.best)):.4f} | {c.diff.mean():+.4f} ± {c.se:.4f} | {c.ratio:.4f} ({arrow} is better) "
            f"| {'yes' if c.within else '**no**'} | {o.seconds(KIT):.1f} | {o.seconds(c.best):.1f} |")
    for o in outcomes:
        lines += ["", f"## {o.ds.key}", "", f"{o.ds.note}; {o.sizes.get('features', '?')} raw feature columns.", ""]
        if o.scores:
            c = compare(o)
            lines += [
                f"| model | {o.ds.metric} mean ± std ({len(o.flat(next(iter(o.scores))))} folds) | per-seed means "
                "| held-out | wall time (s, all seeds) | vs best baseline |",
                "|---|---:|---|---:|---:|---:|",
            ]
            for m, per_seed in o.scores.items():
                flat = o.flat(m)
                ratio = f"{np.mean(flat) / c.best_mean:.4f}×" if c else ""
                lines.append(f"| {m} | {np.mean(flat):.4f} ± {np.std(flat):.4f} | "
                             f"{', '.join(f'{np.mean(s):.4f}' for s in per_seed)} | {np.mean(o.heldout[m]):.4f} | "
                             f"{o.seconds(m):.1f} | {ratio} |")
            if c is not None:
                hib = o.comp.greater_is_better
                better = int(((c.diff > 0) if hib else (c.diff < 0)).sum())
                worse = int(((c.diff < 0) if hib else (c.diff > 0)).sum())
                lines += [
                    "",
                    f"- Paired over the same {len(c.diff)} folds, kit − {c.best} = {c.diff.mean():+.4f} (standard "
                    f"error of the mean difference {c.se:.4f}; kit better on {better} folds, worse on {worse}, "
                    f"equal on {len(c.diff) - better - worse}): kit **{c.verdict}** the best baseline (tie = within "
                    "one standard error; folds of different seeds share rows, so the SE is somewhat optimistic).",
                    f"- kit/best = {c.ratio:.4f}: {'within' if c.within else '**not** within'} 2 % of the best "
                    f"baseline's {o.ds.metric} ({'kit ≥ 0.98 × best' if hib else 'kit ≤ 1.02 × best'}).",
                ]
        for err in o.errors:
            lines += ["", "Failure:", "", "```", err.rstrip(), "```"]
    lines.append("")
    return "\n".join(lines)


def sweep_report(sweep: dict[str, list[Comparison | None]], keys: list[str], seeds: list[int]) -> str:
    """The --sweep section: kit/best baseline per data set for each setting, on the sweep's own splits."""
    lines = ["", f"## Sweep of kit's defaults (splits {', '.join(map(str, seeds))}: not the report's)", "",
             "kit / best baseline (lower-is-better metrics: below 1.02 passes; higher-is-better: above 0.98).", "",
             "| setting | " + " | ".join(keys) + " | all within 2 %? |", "|---|" + "---:|" * len(keys) + "---|"]
    for name, comps in sweep.items():
        cells = [f"{c.ratio:.3f}" if c else "error" for c in comps]
        ok = all(c is not None and c.within for c in comps)
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison on the chosen data sets and write the markdown report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one 5-fold split per seed")
    p.add_argument("--only", action="append", choices=list(DATASETS), default=[],
                   help="run only this data set (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of kit's default parameters, as `kit train --set` (repeatable)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "contract.md")
    p.add_argument("--workdir", type=Path, default=None,
                   help="write the data and competition folders here and keep them (default: a temporary folder)")
    p.add_argument("--sweep", action="append", default=[], metavar="K=V[,K=V]",
                   help="also try these settings on --sweep-seeds (other splits than the report's, so a default "
                   "chosen from the sweep is judged on folds it was not chosen on); repeatable")
    p.add_argument("--sweep-seeds", type=int, nargs="+", default=[3, 4, 5, 6])
    a = p.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    try:  # a typo in --set: one line now, not a traceback per data set later
        parse_overrides(a.set, DEFAULT_PARAMS)
    except KitError as e:
        p.error(str(e))

    import torch

    from kit.learner import default_device

    torch.set_num_threads(1)
    started, load0, t0 = dt.datetime.now(dt.UTC), os.getloadavg(), time.perf_counter()
    print(f"torch threads {torch.get_num_threads()}, device {default_device()}, load average {load_text(load0)}",
          flush=True)
    tmp = None
    if a.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="kit-contract-")
        root = Path(tmp.name)
    else:
        root = a.workdir.resolve()
        root.mkdir(parents=True, exist_ok=True)
    os.environ[registry.PATH_ENV] = os.pathsep.join(
        [str(root / "comps"), *filter(None, os.environ.get(registry.PATH_ENV, "").split(os.pathsep))])
    try:
        # every model on one thread: comparable timings, and no OpenMP threads spinning on cores shared with
        # other jobs (HistGradientBoosting's times swung from 0.3 to 10 s per seed on 2 busy cores without it)
        with threadpool_limits(limits=1):
            outcomes = [run_dataset(DATASETS[k], root, a.seeds, a.set) for k in (a.only or DATASETS)]
            sweep = {cand or "defaults": [compare(run_dataset(DATASETS[k], root, a.sweep_seeds,
                                                              [*a.set, *filter(None, cand.split(","))]))
                                          for k in (a.only or DATASETS)]
                     for cand in ([""] + a.sweep if a.sweep else [])}
    finally:
        if tmp is not None:
            tmp.cleanup()
        else:
            print(f"data and competition folders kept in {root}", flush=True)
    text = report(outcomes, a, started, load0, os.getloadavg(), time.perf_counter() - t0, torch.get_num_threads(),
                  str(default_device()))
    if sweep:
        text += sweep_report(sweep, [DATASETS[k].key for k in (a.only or DATASETS)], a.sweep_seeds)
    atomic_write_text(a.out, text)
    print(text)
    print(f"wrote {a.out}", flush=True)
    return 1 if any(o.errors for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

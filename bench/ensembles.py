"""Model families and blends on the same folds: Titanic (Kaggle's train.csv) MLP, LightGBM, CatBoost and their
mean / hill-climbing / stacked blends; Planet (generated) the cpu preset at two image sizes and their blend.

Usage: python bench/ensembles.py [--data-dir ../shared/data/titanic] [--seeds 0 1 2] [--skip-planet]
Writes bench/results/ensembles.md. Every model and blend of a seed is scored on that seed's same 5 folds with the
competition's metric at its untuned decoding (`comp.score`); paired differences are over all folds of all seeds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model, load_text, versions

from kit import registry
from kit.cv import cross_validate, make_folds
from kit.ensemble.blend import blend
from kit.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("mlp", "lightgbm", "catboost")
BLENDS = ("mean", "hill", "stack")


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the per-fold differences a - b and its standard error."""
    d = np.asarray(a) - np.asarray(b)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def titanic(data_dir: Path, seeds: list[int]) -> tuple[list[str], dict]:
    """Three families and three blends on the same folds of each seed."""
    base = registry.get("titanic")
    data = base.load(data_dir)
    scores: dict[str, list[float]] = {m: [] for m in [*FAMILIES, *BLENDS, "hill (nested)"]}
    secs: dict[str, float] = dict.fromkeys(scores, 0.0)
    weights: list[list[float]] = []
    for seed in seeds:
        folds = make_folds(base.task, data.y, 5, seed)
        oofs, tests = [], []
        for fam in FAMILIES:
            comp = base.with_model(fam)
            t = time.perf_counter()
            cv = cross_validate(comp, data, comp.params(), seed, folds=folds, progress=False)
            secs[fam] += time.perf_counter() - t
            scores[fam] += cv.fold_scores
            oofs.append(cv.oof)
            tests.append(cv.test)
            print(f"[titanic] seed {seed} {fam}: accuracy {cv.mean:.4f}", flush=True)
        for method in BLENDS:
            t = time.perf_counter()
            b = blend(base, data.y, folds, oofs, tests, method, seed=seed)
            secs[method] += time.perf_counter() - t
            scores[method] += b.fold_scores
            if method == "hill":
                scores["hill (nested)"] += b.detail["cv_nested"]
                weights.append([round(w, 3) for w in b.weights])
            print(f"[titanic] seed {seed} blend {method}: accuracy {np.mean(b.fold_scores):.4f}", flush=True)
    best = max(FAMILIES, key=lambda m: np.mean(scores[m]))
    lines = [f"## Titanic (Kaggle's train.csv, {len(data.y)} rows; seeds {', '.join(map(str, seeds))} x 5 folds)", "",
             "Accuracy at threshold 0.5 per fold (the OOF-chosen threshold is not part of this comparison). "
             "Each model with its defaults (`--model`), no tuning. `hill (nested)`: per fold, the hill-climbing "
             "weights chosen on the other folds' OOF rows and scored on this fold (the honest estimate of the hill "
             "blend; `hill` itself chooses its weights on all OOF rows, including the scored fold).", "",
             f"| model | accuracy mean ± std ({len(scores[best])} folds) | vs best single ({best}), paired ± SE "
             "| wall time (s) |", "|---|---:|---:|---:|"]
    for m, s in scores.items():
        d, se = paired(s, scores[best])
        word = "tie" if abs(d) <= se else "better" if d > 0 else "worse"
        verdict = "—" if m == best else f"{d:+.4f} ± {se:.4f} ({word})"
        t = f"{secs[m]:.1f}" if m in secs and secs[m] else "(in hill)"
        lines.append(f"| {m} | {np.mean(s):.4f} ± {np.std(s):.4f} | {verdict} | {t} |")
    lines += ["", f"Hill-climbing weights (mlp, lightgbm, catboost) per seed: {weights}", ""]
    blend_best = max(BLENDS, key=lambda m: np.mean(scores[m]))
    d, se = paired(scores[blend_best], scores[best])
    dn, sen = paired(scores["hill (nested)"], scores[best])
    lines.append(f"- Target \"the blend's CV at least ties the best single model\": best blend `{blend_best}` "
                 f"{d:+.4f} ± {se:.4f} vs {best} — {'met' if d >= -se else 'NOT met'}; the nested hill estimate "
                 f"{dn:+.4f} ± {sen:.4f} — {'met' if dn >= -sen else 'NOT met'}.")
    return lines, scores


def planet(seed: int, n_train: int, sizes: tuple[int, int]) -> list[str]:
    """The cpu preset at two image sizes on the same folds, and their mean / hill / stack blends."""
    synth = importlib.import_module("competitions.planet.synthetic")
    comp = registry.get("planet")
    with tempfile.TemporaryDirectory(prefix="kit-bench-ens-") as tmp:
        d = Path(tmp) / "planet"
        synth.generate(d, n_train=n_train, n_test=200, seed=seed, size=128)
        data = comp.load(d)
        folds = make_folds(comp.task, data.y, 5, seed)
        scores, oofs, tests, secs = {}, [], [], {}
        for size in sizes:
            params = comp.params({"preset": "cpu", "size": size})
            t = time.perf_counter()
            cv = cross_validate(comp, data, params, seed, folds=folds, progress=False)
            secs[f"cpu preset, {size} px"] = time.perf_counter() - t
            scores[f"cpu preset, {size} px"] = cv.fold_scores
            oofs.append(cv.oof)
            tests.append(cv.test)
            print(f"[planet] {size} px: F2 {cv.mean:.4f}", flush=True)
        for method in BLENDS:
            b = blend(comp, data.y, folds, oofs, tests, method, seed=seed)
            scores[f"blend {method}"] = b.fold_scores
            if method == "hill":
                scores["blend hill (nested)"] = b.detail["cv_nested"]
    best = max([k for k in scores if k.startswith("cpu")], key=lambda k: np.mean(scores[k]))
    lines = [f"## Planet (generated, {n_train} tiles, seed {seed}, 5 folds): two image sizes and their blends", "",
             "F2 (samples) at threshold 0.5 per fold.", "",
             f"| model | F2 mean ± std | vs best single ({best}), paired ± SE | wall time (s) |",
             "|---|---:|---:|---:|"]
    for m, s in scores.items():
        d, se = paired(s, scores[best])
        verdict = "—" if m == best else f"{d:+.4f} ± {se:.4f}"
        lines.append(f"| {m} | {np.mean(s):.4f} ± {np.std(s):.4f} | {verdict} | {secs.get(m, 0):.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write the markdown report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "titanic")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--skip-planet", action="store_true")
    p.add_argument("--planet-n", type=int, default=2000)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ensembles.md")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # Titanic's models are tiny; LightGBM/CatBoost follow torch's thread count
    started, load0, t0 = dt.datetime.now(dt.UTC), os.getloadavg(), time.perf_counter()
    body, _ = titanic(a.data_dir, a.seeds)
    if not a.skip_planet:
        torch.set_num_threads(os.cpu_count() or 1)
        body += ["", *planet(a.seeds[0], a.planet_n, (48, 64))]
    import catboost
    import lightgbm

    head = ["# Ensembles: model families and blends on the same folds", "",
            f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; total wall time {time.perf_counter() - t0:.0f} s",
            f"- command: `python bench/ensembles.py {' '.join(sys.argv[1:] if argv is None else argv)}`"
            " (`make bench-ensembles`)",
            f"- machine: {cpu_model()}, {os.cpu_count()} cores; load average at start {load_text(load0)}, at end "
            f"{load_text(os.getloadavg())} (other engineers' jobs share the cores: wall times are indicative)",
            f"- versions: {versions(lightgbm=lightgbm.__version__, catboost=catboost.__version__)}", ""]
    text = "\n".join(head + body) + "\n"
    atomic_write_text(a.out, text)
    print(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

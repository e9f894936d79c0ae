"""Tuning benchmark: Titanic search with and without pruning; per-class threshold search vs a naive grid.

Usage: python bench/tune.py --data-dir ../shared/data/titanic [--trials 40] [--seed 42]
Writes bench/results/tune.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from kit.commands.tune import main as tune_main
from kit.io import atomic_write_text
from kit.metrics import fbeta_samples
from kit.thresholds import per_class_thresholds

ROOT = Path(__file__).resolve().parents[1]


def search(data_dir: Path, pruner: str, trials: int, seed: int, work: Path) -> dict:
    """One `kit tune` search (no refit) in its own SQLite storage: wall time, best CV, trial states."""
    start = time.perf_counter()
    rc = tune_main(["--comp", "titanic", "--data-dir", str(data_dir), "--n-trials", str(trials), "--seed", str(seed),
                    "--pruner", pruner, "--study", pruner, "--runs", str(work / pruner), "--no-refit", "--repeats", "1",
                    "--threads", "1"])
    seconds = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"kit tune failed with exit code {rc}")
    study = optuna.load_study(study_name=pruner, storage=f"sqlite:///{work / pruner / 'titanic' / 'optuna.db'}")
    states = {s: sum(t.state.name == s for t in study.trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    best = study.best_trial
    return {"seconds": seconds, "best": best.value, "std": best.user_attrs.get("cv_std", float("nan")),
            "trial": best.number, "states": states}


def naive_grid(y: np.ndarray, probs: np.ndarray, beta: float = 2.0, start: float = 0.2) -> tuple[np.ndarray, float]:
    """The Planet forums' loop: for each class in turn, try 0.00..0.99 with the others fixed, keep the best."""
    thr = np.full(probs.shape[1], start)
    best = fbeta_samples(y, probs >= thr, beta)
    for j in range(probs.shape[1]):
        for t in np.arange(100) / 100:
            trial = thr.copy()
            trial[j] = t
            score = fbeta_samples(y, probs >= trial, beta)
            if score > best:
                best, thr = score, trial
    return thr, best


def planet_like(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with Planet-like prevalences (a few common, many rare classes) and noisy, informative scores."""
    rng = np.random.default_rng(seed)
    prevalence = np.sort(rng.uniform(0.002, 0.9, k) ** 2)[::-1]
    y = (rng.random((n, k)) < prevalence).astype(np.int64)
    logits = rng.normal(0, 1, (n, k)) + 2.5 * y - 1.5
    return y, 1 / (1 + np.exp(-logits))


def threshold_bench(n: int, k: int, seed: int) -> dict:
    """Time and score of kit's exact per-class search and of the naive grid on the same data."""
    y, probs = planet_like(n, k, seed)
    start = time.perf_counter()
    r = per_class_thresholds(y, probs, beta=2.0)
    kit_s = time.perf_counter() - start
    start = time.perf_counter()
    _, naive_score = naive_grid(y, probs)
    naive_s = time.perf_counter() - start
    return {"kit_s": kit_s, "naive_s": naive_s, "kit_raw": r.raw_score, "kit_guarded": r.score,
            "global": r.global_score, "baseline": r.baseline, "naive": naive_score, "passes": r.passes,
            "n_pos_min": int(y.sum(axis=0).min()), "n_pos_max": int(y.sum(axis=0).max())}


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and write the markdown report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "titanic")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tune.md")
    a = p.parse_args(argv)

    thr = threshold_bench(40_000, 17, a.seed)
    print(f"per-class thresholds: kit {thr['kit_s']:.2f} s, naive grid {thr['naive_s']:.2f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="kit-bench-tune-") as tmp:
        runs = {name: search(a.data_dir, name, a.trials, a.seed, Path(tmp)) for name in ("none", "median")}
    none, med = runs["none"], runs["median"]
    saved = 1 - med["seconds"] / none["seconds"]
    equal = abs(med["best"] - none["best"]) <= max(none["std"], med["std"])
    load = os.getloadavg()
    lines = [
        "# Tuning benchmark (`make bench-tune`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"optuna {optuna.__version__}. Load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(1/5/15 min): the cores are shared with other work, so the timings are noisy.",
        "",
        f"## Titanic search: pruning vs none ({a.trials} trials, TPE seed {a.seed}, 5-fold CV, "
        f"`kit tune --no-refit --threads 1`)",
        "",
        "| pruner | wall time (s) | best CV accuracy | best trial fold-std | best trial | complete / pruned / failed |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in (("none", none), ("median", med)):
        s = r["states"]
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['best']:.4f} | {r['std']:.4f} | {r['trial']} | "
                     f"{s['COMPLETE']} / {s['PRUNED']} / {s['FAIL']} |")
    lines += [
        "",
        f"Wall-time ratio median/none: **{med['seconds'] / none['seconds']:.2f}** "
        f"(pruning saves **{100 * saved:.0f} %**; target ≥ 40 %). Best CV difference "
        f"{med['best'] - none['best']:+.4f}: {'within' if equal else 'NOT within'} one fold-std "
        f"({max(none['std'], med['std']):.4f}). Both runs use the same sampler seed; TPE's proposals diverge "
        "after the first pruned trial, since pruned trials feed its model differently.",
        "",
        "## Per-class thresholds, 40,000 × 17 (Planet-like prevalences, noisy scores), F2 averaged over samples",
        "",
        "| method | time (s) | OOF F2 |",
        "|---|---:|---:|",
        f"| 0.5 for every class | – | {thr['baseline']:.5f} |",
        f"| best global threshold | – | {thr['global']:.5f} |",
        f"| naive per-class grid 0.00–0.99, one pass from 0.2 (Planet forums) | {thr['naive_s']:.2f} | "
        f"{thr['naive']:.5f} |",
        f"| kit exact coordinate ascent ({thr['passes']} passes), raw | {thr['kit_s']:.2f} | {thr['kit_raw']:.5f} |",
        f"| kit, after the rare-class guard (shrink 20) | (same run) | {thr['kit_guarded']:.5f} |",
        "",
        f"Speed-up {thr['naive_s'] / thr['kit_s']:.0f}× (target: kit ≤ 1 s: "
        f"{'met' if thr['kit_s'] <= 1 else 'NOT met'}). Class positives range from {thr['n_pos_min']} to "
        f"{thr['n_pos_max']}.",
        "",
        "The two searches optimise over different sets, so their scores are close but not identical: the grid "
        "only tries 100 values per class in a single pass, while kit's search tries every cut between two sorted "
        "scores of a class (the exact optimum for that class with the others fixed) and repeats passes until no "
        "class moves, so it usually ends at least as high (both are coordinate-wise searches, neither is a joint "
        "optimum); the guarded one trades a little OOF F2 for thresholds of rare classes that are not fitted to "
        "a handful of positives.",
        "",
    ]
    atomic_write_text(a.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

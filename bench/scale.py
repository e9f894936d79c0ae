"""Scale: the generated Playground-style 500,000-row table through kit, against a hand-written LightGBM loop.

bench/tabular.py's generated table (`generated(500000)`: 25 columns, 17 numeric, 8 categorical with 2-2,000
levels, 12 % label noise) is written in Kaggle's layout (80 % train / 20 % test) with a competition declared
from the README's template alone. Each measured step runs in a child process of its own, so its wall time and
peak resident memory (`wait4`'s ru_maxrss) are its own:

- `read`: kit's loader (`comp.load`: train, test and sample read and checked);
- `kit lightgbm`: `kit train --model lightgbm` as a user types it (load, 5-fold CV, decoding, submission, run
  folder, fold models saved);
- `hand lightgbm`: the loop a Kaggler writes by hand — pandas.read_csv, categories as pandas categories of the
  training fold, `LGBMClassifier` with kit's LightGBM defaults, early stopping on the validation fold, the test
  predicted by every fold and averaged, a submission written — on the SAME folds (read from kit's run folder);
- `kit <family>` for the other families asked for (`--families mlp tabm ...`), each on its own.

Targets (issue 17 part 3): kit's LightGBM at most 1.3x the hand-written loop; the net's 5 folds within 4x
LightGBM's time.

Usage: python bench/scale.py [--rows 500000] [--families mlp] [--out bench/results/scale.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import cpu_model, load_text, versions
from tabular import GENERATED, Table, write_table

ROOT = Path(__file__).resolve().parents[1]
LIGHTGBM = {"n_estimators": 3000, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 20,
            "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0}
EARLY_STOPPING = 100


def child(cmd: list[str], env: dict[str, str]) -> dict:
    """Run `cmd`; its wall time, peak resident memory (MB), exit status and last output line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    return {"wall": time.perf_counter() - start, "peak_mb": usage.ru_maxrss / 1024, "status": status,
            "out": out.strip()}


def hand_loop(data_dir: Path, folds_csv: Path, out_csv: Path, result: Path) -> None:
    """The hand-written 5-fold LightGBM loop (see the module docstring); writes its CV AUC to `result`."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    train = pd.read_csv(data_dir / "train.csv")
    test = pd.read_csv(data_dir / "test.csv")
    folds = pd.read_csv(folds_csv)["fold"].to_numpy()
    y = (train["target"] == "yes").astype(int).to_numpy()
    feats = [c for c in train.columns if c not in ("id", "target")]
    cats = [c for c in feats if not pd.api.types.is_numeric_dtype(train[c])]
    pred, scores = np.zeros(len(test)), []
    for k in np.unique(folds):
        tr, va = folds != k, folds == k
        x_tr, x_va, x_te = train.loc[tr, feats].copy(), train.loc[va, feats].copy(), test[feats].copy()
        for c in cats:
            levels = sorted(x_tr[c].dropna().unique())
            for x in (x_tr, x_va, x_te):
                x[c] = pd.Categorical(x[c], categories=levels)
        model = lgb.LGBMClassifier(**LIGHTGBM, subsample_freq=1, random_state=int(k), verbose=-1)
        model.fit(x_tr, y[tr], eval_set=[(x_va, y[va])],
                  callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
        scores.append(roc_auc_score(y[va], model.predict_proba(x_va)[:, 1]))
        pred += model.predict_proba(x_te)[:, 1] / len(np.unique(folds))
    pd.DataFrame({"id": test["id"], "target": pred}).to_csv(out_csv, index=False)
    result.write_text(json.dumps({"scores": scores}))


def read_only(name: str, data_dir: Path) -> None:
    """kit's loader, nothing else."""
    sys.path.insert(0, str(ROOT))
    from kit import registry

    start = time.perf_counter()
    data = registry.get(name).load(data_dir)
    print(f"read {len(data.train):,} + {len(data.test):,} rows in {time.perf_counter() - start:.1f} s "
          "(the rest of the wall time: starting Python and importing kit)")


def record(run_root: Path, name: str) -> dict:
    """The newest run record of `name` under `run_root`."""
    runs = sorted((run_root / name).glob("2*/record.json"))
    return json.loads(runs[-1].read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--families", nargs="*", default=["mlp"])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.md")
    p.add_argument("--hand", nargs=4, metavar=("DATA", "FOLDS", "OUT", "RESULT"), help=argparse.SUPPRESS)
    p.add_argument("--read", nargs=2, metavar=("NAME", "DATA"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.hand:
        hand_loop(*map(Path, a.hand))
        return 0
    if a.read:
        read_only(a.read[0], Path(a.read[1]))
        return 0
    start, load0 = dt.datetime.now(dt.UTC), load_text(os.getloadavg())
    table = Table(GENERATED.key, f"generated:{a.rows}", GENERATED.task, GENERATED.metric, GENERATED.target,
                  GENERATED.role, GENERATED.categorical, note=GENERATED.note)
    with tempfile.TemporaryDirectory(prefix="kit-scale-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        data_dir, _, sizes = write_table(table, root)
        written = time.perf_counter() - t0
        mb = sum(f.stat().st_size for f in data_dir.iterdir()) / 1e6
        # every child with sleeping idle OpenMP threads (kit sets it for itself; the hand-written loop gets it too,
        # else its spinning threads make the comparison one of thread policies on shared cores)
        env = {**os.environ, "KIT_COMPETITIONS_PATH": str(root / "comps"), "PYTHONPATH": str(ROOT),
               "OMP_WAIT_POLICY": "PASSIVE"}
        kit = [sys.executable, "-m", "kit", "train", "--comp", table.name, "--data-dir", str(data_dir), "--quiet"]
        rows: list[tuple[str, dict, str]] = []
        r = child([sys.executable, __file__, "--read", table.name, str(data_dir)], env)
        rows.append(("read (kit's loader)", r, r["out"].splitlines()[-1] if r["out"] else ""))
        print(f"read: {r['wall']:.1f} s, {r['peak_mb']:.0f} MB", flush=True)
        results: dict[str, dict] = {}
        for fam in ["lightgbm", *a.families]:
            runs = root / f"runs-{fam}"
            r = child([*kit, "--model", fam, "--runs", str(runs), "--out", str(root / f"subs-{fam}")], env)
            if r["status"] != 0:
                rows.append((f"kit {fam}", r, "failed: " + (r["out"].splitlines() or ["?"])[-1]))
                print(f"kit {fam} failed:\n{r['out'][-2000:]}", flush=True)
                continue
            rec = record(runs, table.name)
            r["cv"] = rec["cv"]
            results[fam] = r
            rows.append((f"kit {fam}", r, f"CV AUC {rec['cv']['mean']:.4f} ± {rec['cv']['std']:.4f}"))
            print(f"kit {fam}: {r['wall']:.1f} s, {r['peak_mb']:.0f} MB, CV {rec['cv']['mean']:.4f}", flush=True)
        folds = sorted((root / "runs-lightgbm" / table.name).glob("2*/folds.csv"))[-1]
        res = root / "hand.json"
        r = child([sys.executable, __file__, "--hand", str(data_dir), str(folds), str(root / "hand.csv"), str(res)],
                  env)
        hand = json.loads(res.read_text())["scores"] if res.is_file() else []
        if not hand:
            print(f"hand-written loop failed:\n{r['out'][-2000:]}", flush=True)
        results["hand"] = r
        rows.append(("hand-written LightGBM loop (same folds)", r,
                     f"CV AUC {np.mean(hand):.4f} ± {np.std(hand):.4f}" if hand else "failed"))
        print(f"hand: {r['wall']:.1f} s, {r['peak_mb']:.0f} MB, CV {np.mean(hand) if hand else float('nan'):.4f}",
              flush=True)
    end = dt.datetime.now(dt.UTC)
    lines = [f"# Scale: a {sizes['train'] + sizes['test']:,}-row generated table, every step in its own process",
             "", f"- date: {start:%Y-%m-%d %H:%M} UTC; total wall time {(end - start).total_seconds():.0f} s",
             "- command: `python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
             f"- machine: {cpu_model()}, {os.cpu_count()} cores; load average (1/5/15 min) at start {load0}, at "
             f"end {load_text(os.getloadavg())}", f"- versions: {versions()}",
             f"- data: {table.note}; {sizes['train']:,} train / {sizes['test']:,} test rows, {mb:.0f} MB of CSV "
             f"written in {written:.1f} s; 5 folds", "",
             "| step | wall time (s) | peak memory (MB) | result |", "|---|---:|---:|---|"]
    lines += [f"| {n} | {r['wall']:.1f} | {r['peak_mb']:.0f} | {what} |" for n, r, what in rows]
    lines.append("")
    if "lightgbm" in results and results["hand"]["status"] == 0:
        ratio = results["lightgbm"]["wall"] / results["hand"]["wall"]
        lines.append(f"- kit's LightGBM / the hand-written loop: **{ratio:.2f}x** wall time (target ≤ 1.3x: "
                     f"{'met' if ratio <= 1.3 else 'not met'})")
    for fam in a.families:
        if fam in results and "lightgbm" in results:
            ratio = results[fam]["wall"] / results["lightgbm"]["wall"]
            d = results[fam]["cv"]["mean"] - results["lightgbm"]["cv"]["mean"]
            lines.append(f"- kit {fam} / kit LightGBM: **{ratio:.2f}x** wall time (target ≤ 4x: "
                         f"{'met' if ratio <= 4 else 'not met'}); CV AUC {d:+.4f} against LightGBM's")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

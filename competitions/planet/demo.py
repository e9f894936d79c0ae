"""Planet end to end on generated data: generate, train the cpu preset with CV, write a submission, score it.

`python -m competitions.planet.demo [--out runs/planet-demo] [--n 1000] [--n-test 400]` prints the held-out
F2 of the submission next to the constant "primary clear" baseline (the test tags come from the generator).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from competitions.planet import COMPETITION
from competitions.planet.decoding import f2_tag_strings
from competitions.planet.synthetic import generate
from kit.params import parse_overrides

PROGRESS_S = 3.0  # seconds between progress lines while tiles are generated


def generate_with_progress(data_dir: Path, n: int, n_test: int, seed: int, solution: Path) -> None:
    """`generate`, printing every few seconds how many tiles this call has written so far."""
    start, done = time.time(), threading.Event()

    def report() -> None:
        while not done.wait(PROGRESS_S):
            k = sum(1 for f in data_dir.glob("*/*.jpg") if f.stat().st_mtime >= start - 1)
            print(f"  {k:,} of {n + n_test:,} tiles", flush=True)

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        generate(data_dir, n_train=n, n_test=n_test, seed=seed, solution_path=solution)
    finally:
        done.set()
        thread.join()


def _main(argv: Sequence[str] | None = None) -> int:
    from kit.cli import setup_logging
    from kit.run import train_and_submit

    ap = argparse.ArgumentParser(prog="python -m competitions.planet.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/planet-demo"), help="data, runs and submissions go here")
    ap.add_argument("--n", type=int, default=1000, help="generated training images")
    ap.add_argument("--n-test", type=int, default=400, help="generated test images (scored)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    setup_logging()
    data_dir, solution = a.out / "data", a.out / "solution.csv"
    start = time.perf_counter()
    print(f"generating {a.n} train / {a.n_test} test tiles in {data_dir}/ ...", flush=True)
    generate_with_progress(data_dir, a.n, a.n_test, a.seed, solution)
    print(f"generated in {time.perf_counter() - start:.0f} s; training the cpu preset ({a.folds}-fold CV)", flush=True)
    params = COMPETITION.params({"preset": "cpu", **parse_overrides(a.overrides, COMPETITION.default_params)})
    start = time.perf_counter()
    r = train_and_submit(COMPETITION, data_dir, params, seed=a.seed, n_folds=a.folds,
                         out=a.out / "submissions", runs=a.out / "runs", progress=sys.stdout.isatty())
    seconds = time.perf_counter() - start
    sub = pd.read_csv(r.submission, keep_default_na=False)
    truth = pd.read_csv(solution, keep_default_na=False).set_index("image_name").loc[sub["image_name"], "tags"]
    f2 = f2_tag_strings(truth.tolist(), sub["tags"].tolist())
    base = f2_tag_strings(truth.tolist(), ["clear primary"] * len(sub))
    print(f"CV {r.cv.summary()}; OOF F2 after decoding {r.oof_score:.4f} ({seconds:.0f} s for CV + prediction)")
    print(f"held-out F2 {f2:.4f} on {len(sub)} test images (constant 'primary clear': {base:.4f})")
    print(f"submission: {r.submission}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

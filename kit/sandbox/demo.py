"""`make demo` (≡ python -m kit.sandbox.demo): the whole product offline, against the local Kaggle sandbox.

Starts the sandbox on a free port with generated titanic- and planet-format competitions and throwaway
credentials, then runs the real commands as a user would: `kit download`, `kit train` (small settings),
`kit submit --wait`, `kit submissions`; prints the sandbox's score and stops the sandbox.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from kit import registry
from kit.errors import KitError
from kit.ledger import LEDGER_NAME, Ledger
from kit.sandbox.data import generate_all
from kit.sandbox.server import Sandbox, client_env

REPO = Path(__file__).resolve().parents[2]


def _step(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    print(f"\n$ kit {shlex.join(args)}", flush=True)
    t0 = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", f"kit.{args[0]}", *args[1:]], cwd=cwd, env=env).returncode
    if rc != 0:
        raise KitError(f"demo step `kit {shlex.join(args)}` failed with exit code {rc}", exit_code=rc)
    print(f"  ({time.monotonic() - t0:.1f}s)", flush=True)


def run_demo(workdir: Path, epochs: int = 3, folds: int = 2, planet: bool = True) -> float | None:
    """Run the demo in `workdir`; returns the public score the sandbox gave."""
    root, cfg = workdir / "sandbox", workdir / "kaggle-config"
    print(f"generating sandbox competitions in {root} ...", flush=True)
    generate_all(root)
    with Sandbox(root, username="demo", score_delay=1.0) as sb:
        sb.write_credentials(cfg)
        print(f"Kaggle sandbox listening on {sb.url} (throwaway credentials in {cfg})", flush=True)
        env = {**os.environ, **client_env(sb.url, cfg), "KIT_KAGGLE_POLL_S": "0.5",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        env.pop("KAGGLE_API_TOKEN", None)  # the demo's kaggle.json must be what authenticates
        env.pop("KAGGLE_USERNAME", None)
        env.pop("KAGGLE_KEY", None)
        _step(["download", "--comp", "titanic"], workdir, env)
        if planet and "planet" in registry.names():
            _step(["download", "--comp", "planet", "--quiet"], workdir, env)
        _step(["train", "--comp", "titanic", "--data-dir", "data/titanic", "--folds", str(folds),
               "--set", f"epochs={epochs}", "--quiet"], workdir, env)
        _step(["submit", "--comp", "titanic", "--wait", "-m", "kit demo"], workdir, env)
        _step(["submissions", "--comp", "titanic"], workdir, env)
    entries = Ledger(workdir / "submissions" / LEDGER_NAME).entries("titanic")
    score = entries[-1].public_score if entries else None
    print(f"\nsandbox public score for titanic: {score:.5f}" if score is not None else "\nno score reported")
    return score


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kit.sandbox.demo [--workdir DIR] [--epochs N] [--folds K]`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="kit-demo", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=None, help="keep everything here (default: a temp folder)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--folds", type=int, default=2)
    a = p.parse_args(argv)
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="kit-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run_demo(workdir.resolve(), a.epochs, a.folds)
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo` (≡ python -m kit.sandbox.demo): the whole product offline, against the local Kaggle sandbox.

Starts the sandbox on a free port with every competition that has a `synthetic` module (see
`kit.sandbox.data`) and throwaway credentials, then runs the real commands as a user would: `kit download`
for each, and for those declaring DEMO_TRAIN_ARGS `kit train` (small settings), `kit submit --wait` and
`kit submissions`; then `kit init` writes a new competition folder from the first tabular one's downloaded files
(its metric from the sandbox's competition list) and `kit train` trains it unedited; prints the sandbox's scores
and stops the sandbox.

`make demo-code` (≡ python -m kit.sandbox.demo --code --comp NAME): the same for one competition made a code
competition in the sandbox: train, `kit package`, `kit kernel push --wait` (the dataset is created, the notebook
runs in the sandbox with no network), `kit submit --kernel --wait` (rerun, then scored); prints the score and the
notebook's runtime.
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

from kit.errors import KitError
from kit.kaggle.ledger import LEDGER_NAME, Ledger
from kit.sandbox.data import generate_all, make_code_competition, sandbox_competitions
from kit.sandbox.server import Sandbox, client_env

REPO = Path(__file__).resolve().parents[2]


def _step(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    print(f"\n$ kit {shlex.join(args)}", flush=True)
    t0 = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "kit", *args], cwd=cwd, env=env).returncode
    if rc != 0:
        raise KitError(f"demo step `kit {shlex.join(args)}` failed with exit code {rc}", exit_code=rc)
    print(f"  ({time.monotonic() - t0:.1f}s)", flush=True)


def _client_env(sb: Sandbox, cfg: Path) -> dict[str, str]:
    env = {**os.environ, **client_env(sb.url, cfg), "KIT_KAGGLE_POLL_S": "0.5",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for k in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):  # the demo's kaggle.json must authenticate
        env.pop(k, None)
    return env


def run_demo(workdir: Path, names: Sequence[str] | None = None,
             train_args: Sequence[str] = ()) -> dict[str, float | None]:
    """Run the demo in `workdir` (all sandbox competitions, or `names`); returns the public score of each trained one.

    `train_args` go after each competition's DEMO_TRAIN_ARGS (so `--folds 3` or `--set epochs=1` override them).
    """
    root, cfg = workdir / "sandbox", workdir / "kaggle-config"
    entries = sandbox_competitions(None if names is None else list(names))
    print(f"generating sandbox competitions in {root} ...", flush=True)
    generate_all(root, names=[e.name for e in entries])
    scores: dict[str, float | None] = {}
    with Sandbox(root, username="demo", score_delay=1.0) as sb:
        sb.write_credentials(cfg)
        print(f"Kaggle sandbox listening on {sb.url} (throwaway credentials in {cfg})", flush=True)
        env = _client_env(sb, cfg)
        trained = [e for e in entries if e.demo_train_args is not None]
        for e in trained + [e for e in entries if e.demo_train_args is None]:  # progress bar for the trained
            _step(["download", "--comp", e.name, *(["--quiet"] if e.demo_train_args is None else [])], workdir, env)
        for e in trained:
            _step(["train", "--comp", e.name, "--data-dir", f"data/{e.name}", *(e.demo_train_args or []),
                   *train_args, "--quiet"], workdir, env)
            _step(["submit", "--comp", e.name, "--wait", "-m", "kit demo"], workdir, env)
            _step(["submissions", "--comp", e.name], workdir, env)
        init_and_train(workdir, env, trained, train_args)
    ledger = Ledger(workdir / "submissions" / LEDGER_NAME)
    print()
    for e in trained:
        done = ledger.entries(e.name)
        scores[e.name] = done[-1].public_score if done else None
        score = scores[e.name]
        print(f"sandbox public score for {e.name}: {score:.5f}" if score is not None
              else f"no score reported for {e.name}")
    return scores


def init_and_train(workdir: Path, env: dict[str, str], trained: Sequence, train_args: Sequence[str] = ()) -> None:
    """`kit init` on the first trained tabular competition's downloaded files (Kaggle's metric from the sandbox),
    into workdir/comps (on KIT_COMPETITIONS_PATH), then `kit train` of the inferred folder with no edit."""
    from kit import registry
    from kit.tabular import TabularCompetition

    tabular = [e for e in trained if isinstance(registry.get(e.name), TabularCompetition)]
    if not tabular:
        return
    e, comps = tabular[0], workdir / "comps"
    name = f"{e.name}-init"
    env = {**env, "KIT_COMPETITIONS_PATH": str(comps)}
    _step(["init", "--comp", name, "--slug", registry.get(e.name).slug, "--data-dir", f"data/{e.name}",
           "--to", str(comps), "--force"], workdir, env)
    _step(["train", "--comp", name, "--data-dir", f"data/{e.name}", *(e.demo_train_args or []), *train_args,
           "--quiet"], workdir, env)


def run_code_demo(workdir: Path, name: str, train_args: Sequence[str] = (),
                  runtime_s: float = 900.0, memory_mb: int = 8192) -> dict[str, float | None]:
    """Code-competition rehearsal of one competition in `workdir`; its public score and notebook runtimes."""
    import json

    from kit import registry
    from kit.runs import latest_run

    comp = registry.get(name)
    root, cfg = workdir / "sandbox", workdir / "kaggle-config"
    (entry,) = sandbox_competitions([name])
    print(f"generating the sandbox competition {comp.slug} in {root} ...", flush=True)
    generate_all(root, names=[name])
    make_code_competition(root / comp.slug, runtime_s, memory_mb)
    print(f"{comp.slug} is a code competition here: notebook submissions only, no network, {runtime_s:g} s and "
          f"{memory_mb} MB caps", flush=True)
    with Sandbox(root, username="demo", score_delay=0.5) as sb:
        sb.write_credentials(cfg)
        print(f"Kaggle sandbox listening on {sb.url} (throwaway credentials in {cfg})", flush=True)
        env = _client_env(sb, cfg)
        _step(["download", "--comp", name], workdir, env)
        _step(["train", "--comp", name, "--data-dir", f"data/{name}", *(entry.demo_train_args or []), *train_args,
               "--quiet"], workdir, env)
        run = latest_run(workdir / "runs", name)
        _step(["package", "--comp", name, "--run", str(run)], workdir, env)
        package = Path("packages") / name / run.name
        kernel = json.loads((workdir / package / "kernel" / "kernel-metadata.json").read_text())["id"]
        _step(["kernel", "push", "--package", str(package), "--wait"], workdir, env)
        _step(["submit", "--comp", name, "--kernel", kernel, "--wait", "-m", "kit code demo"], workdir, env)
        _step(["submissions", "--comp", name], workdir, env)
        runs = sorted((root / ".kernels" / kernel).glob("v*/*/session.json"))
        seconds = {p.parent.name: json.loads(p.read_text()).get("seconds") for p in runs}
    done = Ledger(workdir / "submissions" / LEDGER_NAME).entries(name)
    score = done[-1].public_score if done else None
    print()
    print(f"sandbox public score for {name} (code competition): {score:.5f}" if score is not None
          else f"no score reported for {name}")
    for run_name, s in seconds.items():
        what = "pushed version's run" if run_name == "run" else f"scoring rerun ({run_name})"
        print(f"notebook runtime, {what}: {s:.1f} s (offline, install included)" if s is not None else
              f"notebook runtime, {what}: not finished")
    return {"score": score, **{k: v for k, v in seconds.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kit.sandbox.demo [--workdir DIR] [--comp NAME ...] [--epochs N] [--folds K]`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="kit-demo", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=None, help="keep everything here (default: a temp folder)")
    p.add_argument("--comp", action="append", default=None, metavar="NAME",
                   help="only this competition (repeatable; default: every one with a synthetic module)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the competition's demo setting)")
    p.add_argument("--folds", type=int, default=None, help="CV folds (default: the competition's demo setting)")
    p.add_argument("--code", action="store_true",
                   help="the code-competition rehearsal (package, kernel push, submit by kernel version) of the "
                        "one competition given with --comp")
    a = p.parse_args(argv)
    extra = ([] if a.folds is None else ["--folds", str(a.folds)]) + \
        ([] if a.epochs is None else ["--set", f"epochs={a.epochs}"])
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="kit-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if a.code:
            if not a.comp or len(a.comp) > 1:
                p.error("--code rehearses one competition: give one --comp NAME")
            run_code_demo(workdir.resolve(), a.comp[0], extra)
        else:
            run_demo(workdir.resolve(), a.comp, extra)
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

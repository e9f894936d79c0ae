"""Code-competition packages: size of `kit package`'s output and the offline notebook's local runtime, for Titanic
(default MLP) and Planet (cpu preset) trained on generated data; the notebook runs `inference.py` with kit
installed from the package's wheels into a temp prefix, and its submission is compared with the run's own.

Usage: python bench/package.py [--n-planet 1000] [--n-planet-test 2000 (61191: Kaggle's real test size)] [--threads 2]
Writes bench/results/package.md. Not a test (needs PyPI once, for the extra wheels).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model, load_text, versions  # noqa: E402
from kit import registry  # noqa: E402
from kit.io import atomic_write_text  # noqa: E402
from kit.kernel_runner import network_isolation_command  # noqa: E402
from kit.package import build_package  # noqa: E402
from kit.run import train_and_submit  # noqa: E402

PLANET_TEST_ROWS = 61191  # Kaggle's test-jpg + test-jpg-additional


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# runs the notebook as its only child, then prints the largest resident set among its processes (KiB on Linux)
PEAK_WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
                "print('peak rss KiB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                "sys.exit(code)")


def _peak(kib: int) -> str:
    return f"{kib / 1024 ** 2:.2f} GB"


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def notebook(pkg_dir: Path, data_dir: Path, work: Path, threads: int) -> tuple[float, Path, str, int]:
    """Run the kernel's inference.py locally (KIT_* paths, kit into a temp prefix); (wall s, submission, output,
    the largest resident set of its processes in KiB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_", "PYTHON"))}
    env.update(KIT_INPUT=str(data_dir), KIT_MODELS=str(pkg_dir / "dataset"), KIT_WORKING=str(work / "working"),
               KIT_TARGET=str(work / "prefix"), KIT_THREADS=str(threads), PIP_NO_INDEX="1")
    offline = network_isolation_command()  # as in `kit kernel run`: no network at all
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *offline, sys.executable,
                           str(pkg_dir / "kernel" / "inference.py")], cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"notebook failed: {proc.stderr.strip().splitlines()[-1:]}")
    peak = int(proc.stderr.strip().splitlines()[-1].split()[-1])
    return wall, work / "working" / "submission.csv", proc.stdout, peak


def case(name: str, data_dir: Path, params: dict, tmp: Path, threads: int, n_test: int) -> dict:
    """Train, package, run the notebook; the numbers of one competition."""
    import torch

    torch.set_num_threads(threads)
    comp = registry.get(name)
    t = time.perf_counter()
    r = train_and_submit(comp, data_dir, comp.params(params), seed=42, runs=tmp / "runs", out=tmp / "subs",
                         progress=False)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    pkg = build_package(comp, r.run_dir, tmp / "packages", owner="USERNAME")
    package_s = time.perf_counter() - t
    ds = pkg.dataset_dir
    wall, sub, out, peak = notebook(pkg.path, data_dir, Path(tempfile.mkdtemp(dir=tmp)), threads)
    inner = next((ln for ln in out.splitlines() if " predicted by " in ln), "")
    return {
        "name": name, "params": params, "train_s": train_s, "package_s": package_s, "n_test": n_test,
        "dataset": _size(ds), "models": _size(ds / "models"),
        "wheels": {w: (ds / w).stat().st_size for w in pkg.wheels},
        "kernel": _size(pkg.kernel_dir), "notebook_s": wall, "inner": inner, "peak_kib": peak,
        "same": sub.read_bytes() == r.submission.read_bytes(), "folds": len(list((ds / "models").glob("*.pt"))),
    }


def main() -> int:
    """Run both cases and write bench/results/package.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-planet", type=int, default=1000)
    ap.add_argument("--n-planet-test", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from competitions.planet.synthetic import generate as planet_data
    from competitions.titanic.synthetic import generate as titanic_data

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-package-") as t:
        tmp = Path(t)
        titanic_data(tmp / "titanic", n_train=891, n_test=418, seed=0)
        planet_data(tmp / "planet", n_train=args.n_planet, n_test=args.n_planet_test, seed=0)
        rows = [case("titanic", tmp / "titanic", {}, tmp, args.threads, 418),
                case("planet", tmp / "planet", {"preset": "cpu"}, tmp, args.threads, args.n_planet_test)]
    load1 = os.getloadavg()
    lines = [
        "# Code-competition packages: size and offline notebook runtime",
        "",
        f"`python bench/package.py --n-planet {args.n_planet} --n-planet-test {args.n_planet_test} "
        f"--threads {args.threads}`: each competition trained on generated data (Titanic 891 / 418 rows, default "
        f"MLP; Planet {args.n_planet} / {args.n_planet_test} tiles, cpu preset, 5 folds), packaged with "
        "`kit.package.build_package`, then the kernel's `inference.py` run locally as the notebook would: "
        "in its own network namespace (`unshare --net`, as `kit kernel run` does), "
        "`pip install --no-index --no-deps` of kit and the extra wheels from the package into a temp prefix "
        f"(`KIT_TARGET`), prediction with the fold models on {args.threads} torch threads, validation, "
        "`submission.csv`. Runtime = the whole process, install included.",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, shared with other jobs; load average "
        f"{load_text(load0)} before, {load_text(load1)} after. {versions()}.",
        "",
        "| competition | folds | dataset | models | wheels | kernel folder | package build | notebook runtime "
        "| notebook peak memory | test rows | submission = run's |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        wheels = sum(c["wheels"].values())
        lines.append(f"| {c['name']} | {c['folds']} | {_mb(c['dataset'])} | {_mb(c['models'])} | {_mb(wheels)} | "
                     f"{c['kernel'] / 1e3:.1f} kB | {c['package_s']:.1f} s | {c['notebook_s']:.1f} s | "
                     f"{_peak(c['peak_kib'])} | {c['n_test']} "
                     f"| {'byte for byte' if c['same'] else 'DIFFERS'} |")
    lines += ["", "Wheels: " + "; ".join(f"{w} {s / 1e3:.1f} kB" for w, s in rows[0]["wheels"].items()) + ".", ""]
    for c in rows:
        lines.append(f"- {c['name']}: training took {c['train_s']:.0f} s (not part of the notebook); the script "
                     f"says: \"{c['inner']}\".")
    p = rows[1]
    per_tile = p["notebook_s"] / p["n_test"]
    if p["n_test"] >= PLANET_TEST_ROWS:
        lines += ["", f"Planet at Kaggle's real test size ({p['n_test']:,} tiles): the notebook took "
                  f"{p['notebook_s'] / 60:.1f} min on {args.threads} cores ({per_tile * 1e3:.1f} ms per tile, "
                  "install included), far inside a code competition's usual 9 h notebook cap (a Kaggle CPU "
                  "notebook has 4 cores). Not measured on Kaggle itself.", ""]
    else:
        lines += [
            "",
            f"Planet's real test set has {PLANET_TEST_ROWS:,} tiles: at the measured {per_tile * 1e3:.1f} ms per "
            f"tile (whole process over {p['n_test']} tiles, so an upper bound per tile), about "
            f"{PLANET_TEST_ROWS * per_tile / 60:.0f} min on {args.threads} cores, within a code competition's usual "
            "9 h notebook cap with room to spare (a Kaggle CPU notebook has 4 cores). Not measured on Kaggle itself.",
            "",
        ]
    out = ROOT / "bench" / "results" / "package.md"
    atomic_write_text(out, "\n".join(lines))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`kit blend --comp NAME [RUN ...]`: blend finished runs on their shared folds into a validated submission."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kit.commands import args as cargs
from kit.commands.output import print_run


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit blend`."""
    from kit.ensemble import METHODS

    p = argparse.ArgumentParser(
        prog="kit blend",
        description="Blend runs trained on the same folds (default: every run whose folds.csv equals the newest "
                    "run's) and write a validated submission.",
    )
    cargs.add_comp(p)
    p.add_argument("runs_", nargs="*", metavar="RUN", help="run folders, or run names under runs/<comp>/")
    p.add_argument("--method", choices=METHODS, default="hill",
                   help="mean | rank | hill (Caruana selection on OOF) | stack (linear model, cross-validated on "
                        "the same folds); default hill")
    cargs.add_data_dir(p)
    p.add_argument("--allow-other-data", action="store_true",
                   help="blend runs whose records name other input files (SHA-256) than --data-dir's, said per run")
    cargs.add_outputs(p)
    cargs.add_quiet(p, "no per-run lines: the CV and OOF lines, the run folder and the submission path")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.ensemble.blend import blend_and_submit
    from kit.ensemble.runs import default_runs
    from kit.runs import resolve
    comp = registry.get(args.comp)
    if args.runs_:
        run_dirs = [resolve(s, args.runs, comp.name) for s in args.runs_]
    else:
        run_dirs = default_runs(args.runs, comp.name)
    result = blend_and_submit(comp, cargs.data_dir(args, comp.name), run_dirs, method=args.method, out=args.out,
                              runs=args.runs, allow_other_data=args.allow_other_data)
    if not args.quiet:
        _explain(comp, result)
    print_run(comp, result, f" ({args.method} blend of {len(result.inputs)} runs)")
    return 0


def _explain(comp, result) -> None:
    """One line per input run (its CV and weight), the blend's notes, the nested CV or the stacker."""
    b = result.blended
    for i, r in enumerate(result.inputs):
        cv = r.cv
        score = (f"{cv['metric']} {cv['mean']:.4f} ± {cv['std']:.4f}" if isinstance(cv.get("mean"), (int, float))
                 and isinstance(cv.get("std"), (int, float)) else "no CV")
        weight = f"  weight {b.weights[i]:.3f}" if b.weights is not None else ""
        print(f"input {r.path} ({r.model}): {score}{weight}")
    for note in b.notes:
        print(note)
    if "cv_nested" in b.detail:
        import numpy as np

        nested = b.detail["cv_nested"]
        print(f"hill: nested CV {comp.metric} {np.mean(nested):.4f} ± {np.std(nested):.4f} (each fold's weights "
              "chosen without it)")
    if "coefficients" in b.detail:
        print(f"stack: {b.detail['stacker']} fit on each fold's other folds (CV out-of-fold), then on all OOF rows")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit blend`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

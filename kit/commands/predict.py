"""`kit predict --comp NAME [--run RUN]`: a validated submission from a saved run's fold models, without training."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kit.commands import args as cargs


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit predict`."""
    p = argparse.ArgumentParser(prog="kit predict", description=__doc__.splitlines()[0].split(": ", 1)[1])
    cargs.add_comp(p)
    p.add_argument("--run", default=None, help="run folder or its name under runs/<comp>/ (default: the newest "
                                               "that saved its models)")
    cargs.add_data_dir(p, "the competition files to predict (its test set)")
    cargs.add_outputs(p)
    cargs.add_threads(p)
    cargs.add_quiet(p, "the path of the submission only")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.cli import setup_logging
    from kit.inference import predict_run
    from kit.runs import resolve
    from kit.submission import write_submission
    setup_logging(quiet=args.quiet)
    comp = registry.get(args.comp)
    cargs.set_threads(args.threads if args.threads is not None else comp.threads)
    run_dir = resolve(args.run, args.runs, comp.name)
    data_dir = cargs.data_dir(args, comp.name)
    pred = predict_run(comp, run_dir, data_dir)
    record = {k: pred.record.get(k) for k in ("cv", "oof_score", "params", "seed", "model", "decoding")}
    path = write_submission(comp, pred.submission, pred.data.sample, {**record, "predicted_from": str(run_dir)},
                            root=args.out, classes=pred.data.classes)
    if not args.quiet:
        print(f"predicted with the {len(pred.record['models']['files'])} fold model(s) of {run_dir}")
    print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit predict`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

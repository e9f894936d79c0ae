"""`kit train --comp NAME`: cross-validate a competition's model and write a validated submission."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kit import devices
from kit.commands import args as cargs
from kit.commands.output import print_run
from kit.errors import DataError, KitError
from kit.params import parse_overrides


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit train`."""
    p = argparse.ArgumentParser(
        prog="kit train", description="Cross-validate a competition's model and write a validated submission."
    )
    cargs.add_comp(p)
    cargs.add_data_dir(p)
    cargs.add_cv(p)
    p.add_argument("--model", default=None,
                   help="tabular competitions: mlp, tabm, lightgbm, xgboost or catboost (default: the competition's)")
    cargs.add_overrides(p)
    p.add_argument("--params", type=Path, default=None, help="JSON file of hyper-parameters (e.g. a tune result)")
    cargs.add_outputs(p)
    cargs.add_threads(p)
    cargs.add_quiet(p)
    p.add_argument("--weights", type=Path, default=None,
                   help="image competitions: a pretrained weights file (or folder in torch hub / timm cache layout) "
                        "for the backbone (sets the weights parameter; default: $KIT_WEIGHTS, the caches, a "
                        "download)")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="nets: train each fold data-parallel in N processes, one per CUDA device (N CPU processes "
                        "without a GPU); rank 0 writes the run (default 1; kit.devices)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="train the folds side by side in N worker processes, --threads each (default: the nets on "
                        "a CPU from 3,000 rows: one per core up to the folds; otherwise 1; kit.workers)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image competitions: drop unreadable training images, fill unreadable test rows from the "
                        "fold-ensemble prior (sets the skip_bad_images parameter)")
    return p


def read_params_file(path: Path) -> dict[str, Any]:
    """Parameters from a JSON file: a plain dict or a `best_params.json` (its `params`)."""
    try:
        loaded = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise KitError(f"{path}: cannot read parameters ({e})") from None
    if not isinstance(loaded, dict):
        raise KitError(f"{path}: expected a JSON object of parameters")
    return loaded.get("params", loaded)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # first: `--help` and usage errors need no library
    from kit import registry
    from kit.cli import setup_logging
    from kit.prepare import prepare
    from kit.run import train_and_submit
    setup_logging(quiet=args.quiet)
    comp = registry.get(args.comp)
    if args.model is not None:
        comp = comp.with_model(args.model)
    overrides: dict[str, Any] = {}
    if args.params is not None:
        overrides.update(read_params_file(args.params))
    overrides.update(parse_overrides(args.overrides, comp.default_params))
    if args.skip_bad_images:
        if "skip_bad_images" not in comp.default_params:
            raise KitError(f"--skip-bad-images: competition {comp.name!r} has no images to skip")
        overrides["skip_bad_images"] = True
    if args.weights is not None:
        if "weights" not in comp.default_params:
            raise KitError(f"--weights: competition {comp.name!r} has no backbone to load weights into")
        overrides["weights"] = str(args.weights.expanduser().resolve())
    if args.jobs is not None and args.jobs < 1:
        raise KitError(f"--jobs must be at least 1 (got {args.jobs})")
    if (args.jobs or 1) > 1 and max(args.devices, devices.world_size()) > 1:
        raise KitError("--jobs and --devices cannot be combined: each process of --devices trains every fold")
    run = prepare(comp, overrides=overrides, runs=args.runs)
    data_dir = cargs.data_dir(args, comp.name)
    if not data_dir.is_dir():  # said before the training libraries' imports (seconds)
        raise DataError(f"{data_dir}: folder not found; {comp.data_hint(data_dir)}")
    cargs.set_threads(args.threads if args.threads is not None else comp.threads)
    devices.check(args.devices, run.comp, run.params)
    if args.devices > 1 and not devices.distributed():
        return devices.launch(args.devices, ["train", *(sys.argv[1:] if argv is None else argv)])
    result = train_and_submit(
        run.comp, data_dir, run.params, seed=args.seed, n_folds=args.folds, out=args.out,
        runs=args.runs, progress=not args.quiet and sys.stdout.isatty(), jobs=args.jobs, threads=args.threads,
    )
    print_run(run.comp, result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit train`."""
    from kit.cli import run

    return run(devices.rank_main(_main), argv)


if __name__ == "__main__":
    sys.exit(main())

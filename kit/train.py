"""Training with fastai: a Learner from a torch module and DataLoaders, fit_one_cycle, probabilities out.

Also the `kit train --comp NAME` command (≡ `python -m kit.train`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fastai.callback.progress  # noqa: F401  (registers ProgressCallback: fastprogress bars)
import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.optimizer import Adam
from fastai.torch_core import set_seed
from torch import nn

from kit.errors import KitError
from kit.losses import activation_for, loss_for

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (and make cuDNN deterministic) for reproducible runs."""
    set_seed(seed, reproducible=True)


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def tensor_dataloaders(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    x_test: np.ndarray,
    bs: int,
    task: str,
    device: torch.device | None = None,
) -> tuple[DataLoaders, DataLoader]:
    """fastai DataLoaders (shuffled train, ordered valid) and a test DataLoader from numpy arrays."""
    device = device or default_device()
    ydtype = torch.long if task == "multiclass" else torch.float32

    def ds(x: np.ndarray, y: np.ndarray | None = None) -> torch.utils.data.TensorDataset:
        xs = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
        if y is None:
            return torch.utils.data.TensorDataset(xs)
        return torch.utils.data.TensorDataset(xs, torch.as_tensor(np.asarray(y), dtype=ydtype))

    # drop_last avoids a 1-row final batch, which breaks BatchNorm and makes a noisy last step
    drop_last = len(x_train) > bs
    train = DataLoader(ds(x_train, y_train), bs=bs, shuffle=True, drop_last=drop_last, device=device)
    valid = DataLoader(ds(x_valid, y_valid), bs=max(bs, 256), shuffle=False, device=device)
    test = DataLoader(ds(x_test), bs=max(bs, 256), shuffle=False, device=device)
    return DataLoaders(train, valid, device=device), test


def make_learner(
    dls: DataLoaders,
    model: nn.Module,
    task: str,
    params: dict[str, Any],
    cbs: list[Callback] | None = None,
    metrics: list | None = None,
) -> Learner:
    """A fastai Learner whose loss follows the task (BCE with logits / cross-entropy / MSE)."""
    return Learner(
        dls,
        model.to(dls.device),
        loss_func=loss_for(task),
        opt_func=Adam,
        lr=float(params.get("lr", 1e-3)),
        wd=float(params.get("wd", 0.0)),
        metrics=metrics or [],
        cbs=cbs or [],
    )


def fit(learn: Learner, params: dict[str, Any], cbs: list[Callback] | None = None, progress: bool = True) -> None:
    """`fit_one_cycle` for `params['epochs']` epochs at `params['lr']` (fastai's bars unless progress=False)."""
    epochs = int(params.get("epochs", 1))
    quiet = learn.no_bar() if not progress else contextlib.nullcontext()
    with quiet, learn.no_logging():
        learn.fit_one_cycle(epochs, lr_max=float(params.get("lr", 1e-3)), wd=params.get("wd"), cbs=cbs)


def history(learn: Learner) -> list[dict]:
    """Per-epoch values recorded by fastai's Recorder (train_loss, valid_loss, metrics)."""
    names = [n for n in learn.recorder.metric_names[1:] if n != "time"]
    return [
        {n: (float(v) if v is not None else None) for n, v in zip(names, vals, strict=False)}
        for vals in learn.recorder.values
    ]


def predict(learn: Learner, dl: DataLoader, task: str) -> np.ndarray:
    """Probabilities (or regression values) for every item of `dl`, in order."""
    with learn.no_bar(), learn.no_logging():
        outputs, _ = learn.get_preds(dl=dl, act=lambda o: o)
    return activation_for(task, outputs).cpu().numpy().astype(np.float64)


# ---- the `kit train` command ---------------------------------------------------------------------
def parse_overrides(pairs: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """`["lr=0.01", "depth=2"]` -> typed dict, cast to the type of each default value."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise KitError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if key not in defaults:
            raise KitError(f"--set {key}: unknown parameter; known: {', '.join(sorted(defaults))}")
        default = defaults[key]
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                value = int(raw)
            elif isinstance(default, float):
                value = float(raw)
            elif isinstance(default, (list, dict)):
                value = json.loads(raw)
            else:
                value = raw
        except (ValueError, json.JSONDecodeError):
            raise KitError(f"--set {key}={raw}: expected a {type(default).__name__}") from None
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `kit train`."""
    p = argparse.ArgumentParser(
        prog="kit train", description="Cross-validate a competition's model and write a validated submission."
    )
    p.add_argument("--comp", required=True, help="competition name (a folder under competitions/)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the competition files (data/<comp>)")
    p.add_argument("--folds", type=int, default=None, help="number of CV folds (competition default)")
    p.add_argument("--seed", type=int, default=42, help="seed for folds, init and shuffling")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyper-parameter (repeatable)")
    p.add_argument("--params", type=Path, default=None, help="JSON file of hyper-parameters (e.g. a tune result)")
    p.add_argument("--out", type=Path, default=Path("submissions"), help="where submissions are written")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where folds, OOF predictions and plots go")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the competition's choice, else torch's own)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default when stdout is not a terminal)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image competitions: drop unreadable training images, fill unreadable test rows from the "
                        "fold-ensemble prior (sets the skip_bad_images parameter)")
    return p


def _main(argv: Sequence[str] | None) -> int:
    from kit import registry
    from kit.run import train_and_submit

    args = build_parser().parse_args(argv)
    from kit.cli import setup_logging

    setup_logging()
    comp = registry.get(args.comp)
    threads = args.threads if args.threads is not None else comp.threads
    if threads is not None:
        if threads < 1:
            raise KitError(f"--threads must be at least 1 (got {threads})")
        torch.set_num_threads(threads)
    overrides: dict[str, Any] = {}
    if args.params is not None:
        try:
            loaded = json.loads(args.params.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise KitError(f"{args.params}: cannot read parameters ({e})") from None
        overrides.update(loaded.get("params", loaded))
    overrides.update(parse_overrides(args.overrides, comp.default_params))
    if args.skip_bad_images:
        if "skip_bad_images" not in comp.default_params:
            raise KitError(f"--skip-bad-images: competition {comp.name!r} has no images to skip")
        overrides["skip_bad_images"] = True
    params = comp.params(overrides)
    data_dir = args.data_dir or Path("data") / comp.name
    result = train_and_submit(
        comp, data_dir, params, seed=args.seed, n_folds=args.folds, out=args.out, runs=args.runs,
        progress=not args.quiet and sys.stdout.isatty(),
    )
    print(f"CV {result.cv.summary()}")
    print(f"OOF {comp.metric}: {result.decoding_summary()}")
    print(f"run folder: {result.run_dir}")
    print(result.submission)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kit train` / `python -m kit.train`."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

"""The offline Kaggle notebook's inference, shipped in kit's wheel: the kernel's `inference.py` (written by
`kit package`) installs the wheels from the attached dataset and calls `main`, which predicts the competition's
test set with the run's fold models, validates it against the sample submission and writes submission.csv.
No training code runs and nothing reaches the network.

Paths the script passes can be overridden for a local rehearsal: KIT_INPUT (competition files), KIT_MODELS (the
dataset folder), KIT_WORKING (output folder), KIT_THREADS (torch CPU threads), KIT_CACHE (where decoded images
are kept as a file-backed array, default a new temp folder: the system can page it out, where an in-memory array
would count against the notebook's RAM). KIT_WHEELS and KIT_TARGET are the script's own (the install).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from kit import runs
from kit.cli import run as run_command

RUN_FILES = (runs.DECODING, runs.RECORD)  # what inference reads beside the record's models (models/fold-k.pt)


def run_folder(models: Path) -> Path:
    """The dataset folder; or, where Kaggle kept the uploaded models.zip as a file, a copy with it extracted."""
    if (models / "models").is_dir() or not (models / "models.zip").is_file():
        return models
    run = Path(tempfile.mkdtemp(prefix="kit-run-"))
    for name in RUN_FILES:
        shutil.copy2(models / name, run / name)
    with zipfile.ZipFile(models / "models.zip") as zf:
        zf.extractall(run / "models")
    return run


def predict(competition: str, run: str, input_dir: Path, models: Path, working: Path, start: float) -> int:
    """Predict, validate and write `working`/submission.csv; print what was done."""
    from kit import registry
    from kit.inference import predict_run
    from kit.io import atomic_write_csv
    from kit.submission import validate_submission

    cache = Path(os.environ.get("KIT_CACHE") or tempfile.mkdtemp(prefix="kit-cache-"))
    comp = registry.get(competition).with_cache_dir(cache)
    threads = int(os.environ.get("KIT_THREADS") or 0) or comp.threads
    if threads:
        import torch

        torch.set_num_threads(threads)
    pred = predict_run(comp, run_folder(models), input_dir)
    validate_submission(comp, pred.submission, pred.data.sample, pred.data.classes)
    working.mkdir(parents=True, exist_ok=True)
    out = atomic_write_csv(working / "submission.csv", pred.submission)
    n = len(pred.record["models"]["files"])
    print(f"{len(pred.submission)} rows predicted by the {n} fold model(s) of run {run} "
          f"in {time.time() - start:.1f} s", flush=True)
    print(out)
    return 0


def main(competition: str, run: str, input_dir: str, models: str, working: str, start: float | None = None) -> int:
    """The notebook after the install: environment overrides applied, errors as one line and their exit code."""
    import kit

    print(f"kit {kit.__version__} from {Path(kit.__file__).parent}", flush=True)
    paths = [Path(os.environ.get(var) or default) for var, default in
             (("KIT_INPUT", input_dir), ("KIT_MODELS", models), ("KIT_WORKING", working))]
    if (paths[1] / "weights").is_dir():  # the run's pretrained backbone weights, for anything that looks for them
        os.environ.setdefault("KIT_WEIGHTS", str(paths[1] / "weights"))
    began = time.time() if start is None else start
    return run_command(lambda _argv: predict(competition, run, *paths, start=began))

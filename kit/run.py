"""One whole run: load -> cross-validate -> decoding chosen on OOF -> submission with its record."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit import devices, plots, predictors
from kit import runs as run_folder
from kit.checkpoint import FoldCheckpoint
from kit.cv import CVResult, cross_validate, make_folds
from kit.decoders import Decoder
from kit.errors import KitError
from kit.io import atomic_write_csv, atomic_write_json, sha256_file
from kit.prepare import cache_dir
from kit.spec import Competition, Data
from kit.submission import SUBMISSIONS_DIR, git_commit, utc_stamp, validate_submission, write_submission

log = logging.getLogger(__name__)
RUNS_DIR = Path("runs")


@dataclass
class RunResult:
    """What a run produced."""

    cv: CVResult
    decoder: Decoder
    oof_score: float
    submission: Path
    run_dir: Path


def _prob_frame(ids: np.ndarray, probs: np.ndarray, id_col: str, names: list | None) -> pd.DataFrame:
    probs = probs.reshape(len(probs), -1)
    cols = ([str(c) for c in names] if names and len(names) == probs.shape[1]
            else [f"p{j}" for j in range(probs.shape[1])])
    return pd.DataFrame({id_col: ids, **{c: probs[:, j] for j, c in enumerate(cols)}})


def decoding_json(decoder: Decoder) -> dict[str, Any]:
    """The decoder's state plus its threshold curve (decoding.json, thresholds.json)."""
    d = decoder.to_json()
    curve = decoder.curve()
    if curve is not None:
        d["curve"] = {"grid": np.asarray(curve[0]).tolist(), "score": np.asarray(curve[1]).tolist(),
                      "chosen": float(curve[2])}
    return d


def row_id_col(comp: Competition, frame: pd.DataFrame) -> str:
    """The id column of the train/test frames: the submission's id, or the frame's own (per-image rows whose
    submission has other rows, as Facial Keypoints' lookup rows)."""
    return comp.id_col if comp.id_col in frame.columns else str(frame.columns[0])


def models_record(comp: Competition, cv: CVResult, run_dir: Path) -> dict[str, Any] | None:
    """Where the fold models are and how to use them (None when the folds kept no predictor)."""
    if not cv.predictors or any(p is None for p in cv.predictors):
        return None
    return {"files": [run_folder.model_file(k) for k in range(len(cv.predictors))],
            "format": "kit.predictors.save: torch.save (or, without tensors, pickle) of kit.predictors objects "
                      "(fitted preprocessing + model of each fold)",
            "predict": f"kit predict --comp {comp.name} --run {run_dir.name}"}


def save_run(comp: Competition, data: Data, cv: CVResult, decoder: Decoder, run_dir: Path) -> None:
    """Fold assignment, OOF and test probabilities (for blending), decoding and plots under `run_dir`."""
    idc = row_id_col(comp, data.train)
    ids = data.train[idc].to_numpy()
    names = data.classes or data.output_names
    atomic_write_csv(run_dir / run_folder.FOLDS, pd.DataFrame({idc: ids, "fold": cv.folds}))
    atomic_write_csv(run_dir / run_folder.OOF, _prob_frame(ids, cv.oof, idc, names))
    atomic_write_csv(run_dir / run_folder.TEST_PROBS,
                     _prob_frame(data.test[row_id_col(comp, data.test)].to_numpy(), cv.test, idc, names))
    atomic_write_json(run_dir / run_folder.DECODING, decoding_json(decoder))
    curve = decoder.curve()
    if curve is not None:
        plots.threshold_curve(np.asarray(curve[0]), np.asarray(curve[1]), float(curve[2]), str(comp.metric),
                              run_dir / "threshold_curve.png")
    if any(cv.histories):
        plots.learning_curves(cv.histories, run_dir / "learning_curves.png")
    for k, predictor in enumerate(cv.predictors):
        if predictor is not None:
            predictors.save(predictor, run_dir / run_folder.model_file(k))


def submit_run(comp: Competition, data: Data, cv: CVResult, decoder: Decoder, submission: pd.DataFrame,
               record: dict[str, Any], run_dir: Path, out: Path) -> Path:
    """Write the run folder, then its submission, so that a crash or an error at any point leaves nothing that
    points at nothing: the submission is validated first (nothing written when invalid); the run folder is
    staged and renamed into place complete, its record holding every file's SHA-256; then the submission's
    `.csv`, its `.json`, and the submission's path in the run's record. An error or interrupt on the way removes
    what this call wrote; a SIGKILL leaves at most a complete run folder without a submission (or a `.csv`
    without its `.json`). Returns the submission's path."""
    validate_submission(comp, submission, data.sample, data.classes)
    with run_folder.staged(run_dir) as tmp:
        save_run(comp, data, cv, decoder, tmp)
        record = {**record, run_folder.HASHES: run_folder.file_hashes(tmp)}
        atomic_write_json(tmp / run_folder.RECORD, record)
    path = None
    try:
        path = write_submission(comp, submission, data.sample, record, root=out, classes=data.classes)
        atomic_write_json(run_dir / run_folder.RECORD, {**record, "submission": str(path)})
    except BaseException:
        if path is not None:
            path.with_suffix(".json").unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        run_folder.remove(run_dir)
        raise
    return path


def _version(package: str) -> str | None:
    """A package's version: the imported module's, else its installed distribution's (a tree's run never imports
    torch or fastai, ~3 s)."""
    module = sys.modules.get(package)
    if module is not None:
        return str(module.__version__)
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def train_and_submit(
    comp: Competition,
    data_dir: Path,
    params: dict[str, Any],
    seed: int = 42,
    n_folds: int | None = None,
    out: Path = SUBMISSIONS_DIR,
    runs: Path = RUNS_DIR,
    record_extra: dict[str, Any] | None = None,
    progress: bool = True,
    data: Data | None = None,
    cv: CVResult | None = None,
    jobs: int | None = None,
    threads: int | None = None,
) -> RunResult:
    """Cross-validate `params`, choose the decoding on OOF, decode the fold-mean test predictions and write
    a validated submission whose sidecar records CV scores, params, seed, commit and input hashes.
    Pass `data`/`cv` to reuse what a caller (e.g. tuning) already computed. Caches go under `runs`. `jobs`:
    folds side by side in worker processes of `threads` torch threads (default: the competition's `fold_jobs`,
    the cores shared out)."""
    comp = comp.with_cache_dir(cache_dir(comp, runs)).for_params(params)  # a copy: the registry's unchanged
    comp.check_params(params)
    data = data if data is not None else devices.rank0_first(comp.load, Path(data_dir))
    commit = git_commit()
    inputs = {k: sha256_file(p) for k, p in sorted(data.files.items()) if Path(p).is_file()}
    checkpoint = None
    if cv is None:
        folds = make_folds(comp.task, data.y, n_folds or comp.n_folds, seed, comp.fold_groups(data))
        checkpoint = FoldCheckpoint.for_config(runs, comp.name, {
            "model": comp.describe_model(params), "params": params, "seed": seed,
            "folds": hashlib.sha256(folds.tobytes()).hexdigest(), "code": commit, "inputs": inputs})
        cv = cross_validate(comp, data, params, seed, folds=folds, progress=progress, checkpoint=checkpoint,
                            keep_predictors=True, jobs=jobs, threads=threads)
    if not np.isfinite(cv.test).all():
        i = int(np.argwhere(~np.isfinite(cv.test.reshape(len(cv.test), -1)))[0][0])
        idc = row_id_col(comp, data.test)
        if checkpoint is not None:
            checkpoint.clear()  # a rerun of the same configuration would diverge the same way
        raise KitError(f"NaN in test predictions (test row {i + 2}, {idc}={data.test[idc].iloc[i]}); the model "
                       "diverged: lower lr or check the features")
    decoder = comp.decoder().fit(data.y, cv.oof, comp.metric, data.classes)
    oof_score = float(decoder.score_)
    df = comp.submission(data, decoder.apply(cv.test))
    stamp = utc_stamp()
    run_dir = Path(runs) / comp.name / stamp
    record = {
        "created_utc": stamp,
        "cv": cv.as_record(),
        "oof_score": round(oof_score, 6),
        "task": str(comp.task),
        "model": comp.describe_model(params),
        "metric": str(comp.metric),
        "decoding": decoder.to_json(),
        "params": params,
        "seed": seed,
        "git_commit": commit,
        "inputs_sha256": inputs,
        "run_dir": str(run_dir),
        "models": models_record(comp, cv, run_dir),
        **comp.record_extra(params),
        "versions": {"python": platform.python_version(), "torch": _version("torch"), "fastai": _version("fastai")},
        **(record_extra or {}),
    }
    if not devices.is_main():  # one of several processes: rank 0 writes the run
        return RunResult(cv=cv, decoder=decoder, oof_score=oof_score, submission=Path(os.devnull), run_dir=run_dir)
    path = submit_run(comp, data, cv, decoder, df, record, run_dir, out)
    if checkpoint is not None:
        checkpoint.clear()  # the run is complete: nothing left to resume
    return RunResult(cv=cv, decoder=decoder, oof_score=oof_score, submission=path, run_dir=run_dir)

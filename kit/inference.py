"""Inference from a saved run: its fold models (kit.predictors), its decoding and the competition's submission
format, on the competition files of a data folder. What `kit predict` and an offline notebook run; no training
code is involved, and on the machine that trained it the run's own test predictions come back exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit import predictors
from kit.errors import DataError, KitError
from kit.spec import Competition, Data


@dataclass
class Prediction:
    """Test predictions of a run's fold models, decoded, as a submission frame."""

    probs: np.ndarray
    decoded: np.ndarray
    submission: pd.DataFrame
    data: Data
    record: dict[str, Any]


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """The run's record.json."""
    path = Path(run_dir) / "record.json"
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        raise KitError(f"{path}: not found; is {run_dir} a run folder (runs/<comp>/<stamp>)?") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the run's record ({e})") from None
    if not isinstance(rec, dict):
        raise DataError(f"{path}: not a run record")
    return rec


def latest_run(runs: Path, comp_name: str) -> Path:
    """The newest run folder of `comp_name` that saved its models."""
    root = Path(runs) / comp_name
    for d in sorted((p for p in root.glob("*") if (p / "record.json").is_file()), reverse=True):
        if (d / "models").is_dir():
            return d
    raise KitError(f"no run with saved models in {root}/; run `kit train --comp {comp_name}` first")


def competition_for_run(comp: Competition, record: dict[str, Any]) -> Competition:
    """The competition as the run trained it (its model family, for tabular competitions)."""
    model = record.get("model")
    return comp.with_model(model) if model in getattr(comp, "families", ()) else comp


def saved_models(comp: Competition, run_dir: Path, record: dict[str, Any]) -> list[str]:
    """The fold model files (relative paths) a run of `comp` saved; a KitError for another competition's run or
    a run that saved none."""
    if record.get("competition", comp.name) != comp.name:
        raise KitError(f"{run_dir} is a run of {record.get('competition')!r}, not {comp.name!r}")
    models = (record.get("models") or {}).get("files")
    if not models:
        raise KitError(f"{run_dir}: the run saved no fold models (trained before kit kept them, or a blend); "
                       f"train it again with `kit train --comp {comp.name}`")
    return list(models)


def predict_run(comp: Competition, run_dir: Path, data_dir: Path) -> Prediction:
    """The mean of the run's fold models' predictions on `data_dir`'s test rows, decoded as the run decoded."""
    run_dir = Path(run_dir)
    record = read_run_record(run_dir)
    models = saved_models(comp, run_dir, record)
    # loaded as the run decoded (its image size) and for prediction only (no training images decoded)
    comp = competition_for_run(comp, record).for_params(record.get("params") or {}).for_inference()
    data = comp.load(Path(data_dir))
    preds = []
    for rel in models:
        path = run_dir / rel
        if not path.is_file():
            raise KitError(f"{path}: fold model missing")
        preds.append(predictors.load(path).predict(comp, data))
    probs = np.mean(preds, axis=0)
    try:
        decoding = json.loads((run_dir / "decoding.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{run_dir / 'decoding.json'}: cannot read the run's decoding ({e})") from None
    decoded = comp.decoder_from_json(decoding).apply(probs)
    return Prediction(probs, decoded, comp.submission(data, decoded), data, record)

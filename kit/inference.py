"""Inference from a saved run: its fold models (kit.predictors), its decoding and the competition's submission
format, on the competition files of a data folder. What `kit predict` and an offline notebook run; no training
code is involved, and on the machine that trained it the run's own test predictions come back exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit import predictors
from kit.errors import DataError, KitError
from kit.io import read_json_object
from kit.runs import DECODING, read_record, verify
from kit.spec import Competition, Data


@dataclass
class Prediction:
    """Test predictions of a run's fold models, decoded, as a submission frame."""

    probs: np.ndarray
    decoded: np.ndarray
    submission: pd.DataFrame
    data: Data
    record: dict[str, Any]


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


def read_decoder(comp: Competition, run_dir: Path) -> Any:
    """The run's decoding (decoding.json) as the competition's decoder; a DataError naming the file when it is
    not one (not JSON, another kind, a threshold that is not a number in [0, 1])."""
    path = Path(run_dir) / DECODING
    try:
        d = read_json_object(path, "the run folder is incomplete")
        decoder = comp.decoder_from_json(d)
    except (KitError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        raise DataError(f"{path}: not a decoding of this competition ({str(e).removeprefix(f'{path}: ')})") from None
    for name in ("threshold", "thresholds_"):
        v = getattr(decoder, name, None)
        if v is not None and not ((arr := np.asarray(v, dtype=np.float64)).size and np.all((arr >= 0) & (arr <= 1))):
            raise DataError(f"{path}: {name} {v!r:.60} is not in [0, 1]")
    return decoder


def predict_run(comp: Competition, run_dir: Path, data_dir: Path) -> Prediction:
    """The mean of the run's fold models' predictions on `data_dir`'s test rows, decoded as the run decoded. The
    fold models and decoding are checked against the record's SHA-256s before anything is loaded."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    models = saved_models(comp, run_dir, record)
    verify(run_dir, record, [*models, DECODING])
    decoder = read_decoder(comp, run_dir)
    # loaded as the run decoded (its image size) and for prediction only (no training images decoded)
    comp = competition_for_run(comp, record).for_params(record.get("params") or {}).for_inference()
    data = comp.load(Path(data_dir))
    preds = []
    for rel in models:
        path = run_dir / rel
        if not path.is_file():
            raise DataError(f"{path}: fold model missing")
        preds.append(predictors.load(path).predict(comp, data))
    probs = np.mean(preds, axis=0)
    if not np.isfinite(probs).all():
        raise DataError(f"{run_dir}: its fold models predict non-finite values on {data_dir}'s test rows")
    decoded = decoder.apply(probs)
    return Prediction(probs, decoded, comp.submission(data, decoded), data, record)

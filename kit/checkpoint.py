"""Finished folds on disk, so a killed `kit train` resumes where it stopped instead of starting over.

A run's configuration (competition, model, parameters, seed, fold assignment, input file hashes, code version)
hashes to a folder `runs/<comp>/partial/<hash>/`; each finished fold's validation and test predictions and its
history are written there atomically. Running the same command again reuses them; any change of configuration
gives another hash, so stale folds are never mixed in. The folder is removed once the run is complete. Each fold
is seeded on its own (seed + fold), so resumed and uninterrupted runs give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from kit import devices, predictors
from kit.errors import KitError
from kit.io import atomic_write_bytes, atomic_write_json
from kit.spec import FoldOutput


class FoldCheckpoint:
    """The finished folds of one run configuration."""

    def __init__(self, directory: Path, root: Path | None = None) -> None:
        self.directory = Path(directory)
        self.root = Path(root) if root is not None else self.directory.parent

    @classmethod
    def for_config(cls, root: Path, comp_name: str, config: dict[str, Any]) -> FoldCheckpoint:
        """The checkpoint folder of `config` (JSON-able) under `root/<comp>/partial/`."""
        text = json.dumps(config, sort_keys=True, default=str)
        return cls(Path(root) / comp_name / "partial" / hashlib.sha256(text.encode()).hexdigest()[:16], root)

    def _path(self, k: int) -> Path:
        return self.directory / f"fold-{k}.npz"

    def load(self, k: int) -> FoldOutput | None:
        """Fold `k`'s output if it finished in an earlier, interrupted run."""
        path = self._path(k)
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                valid, test = z["valid"], z["test"]
            history = json.loads(path.with_suffix(".json").read_text())
            model = path.with_suffix(".pt")
            predictor = predictors.load(model) if model.is_file() else None
        except (OSError, ValueError, KeyError, KitError):
            return None  # a damaged file: the fold is trained again
        return FoldOutput(valid=valid, test=test, history=history, predictor=predictor)

    def save(self, k: int, out: FoldOutput) -> None:
        """Keep fold `k`'s output (history first: a fold counts as finished once its arrays are there); rank 0
        only when the run has several processes (the others read what it wrote)."""
        if not devices.is_main():
            return
        atomic_write_json(self._path(k).with_suffix(".json"), out.history)
        if out.predictor is not None:
            predictors.save(out.predictor, self._path(k).with_suffix(".pt"))
        buf = io.BytesIO()
        np.savez(buf, valid=np.asarray(out.valid), test=np.asarray(out.test))
        atomic_write_bytes(self._path(k), buf.getvalue())

    def clear(self) -> None:
        """Forget the folds (the run is complete, or failed in a way a rerun would repeat); folders left empty
        up to the runs root go too (by rank 0 only)."""
        if not devices.is_main():
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        d = self.directory.parent
        while d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            if d == self.root:
                break
            d = d.parent

"""Fold predictors: what a fitted fold needs to predict new rows, kept in the run folder for inference later
(`kit predict`, offline notebooks). Each holds the fold's fitted preprocessing and model(s) on the CPU and
predicts the test rows of a loaded `Data`; `fit_fold` predicts the test set through the same object, so a saved
run reproduces its own test predictions. Saved with torch.save (pickle: the classes are kit's and the libraries'
own, found by import when loaded where kit is installed). The nets' one lives here, the trees' in
kit.families.trees, the image one in kit.vision.predictor.
"""

from __future__ import annotations

import copy
import io
import pickle
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kit.errors import DataError
from kit.io import atomic_write_bytes
from kit.tasks import TargetScaler

if TYPE_CHECKING:
    from torch import nn
# torch is imported where a model runs or is read: a command that only blends or submits never needs it (~3 s)


def cpu_copy(model: nn.Module) -> nn.Module:
    """A CPU copy of a trained model, in eval mode, without the training-time hooks fastai may have added."""
    m = copy.deepcopy(model).float().cpu().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def run_model(model: nn.Module, batches: Iterable[tuple], task: Any, amp: bool = False) -> np.ndarray:
    """Outputs of `model` on every batch, through the task's loss activation (as fastai's get_preds does)."""
    import torch

    device = next(model.parameters()).device
    outs = []
    with torch.no_grad():
        for batch in batches:
            xb = batch[0].to(device)
            if amp and device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.float16):
                    outs.append(model(xb).float().cpu())
            else:
                outs.append(model(xb).float().cpu())
    act = getattr(task.loss(), "activation", lambda x: x)
    return task.outputs_to_probs(act(torch.cat(outs)).numpy())


def _on_device(model: nn.Module) -> nn.Module:
    from kit.learner import default_device

    return copy.deepcopy(model).to(default_device())


@dataclass
class MLPPredictor:
    """The fold's fitted scikit-learn pipeline and its MLP(s) (a seed ensemble is averaged)."""

    pipeline: Any
    models: list[nn.Module]
    scaler: TargetScaler
    bs: int

    def predict(self, comp: Any, data: Any) -> np.ndarray:
        """Predictions for `data.test`, in target units."""
        import torch

        x = torch.as_tensor(np.asarray(self.pipeline.transform(data.test), dtype=np.float32))
        batches = [(x[i : i + self.bs],) for i in range(0, len(x), self.bs)]
        return np.mean([self.scaler.inverse(run_model(_on_device(m), batches, comp.task)) for m in self.models],
                       axis=0)


# classes that moved since runs were saved: (old module, name) -> new module. Unpickling looks them up here, so
# old run folders still load (tests/test_vision.py loads a VisionPredictor pickled under kit.predictors).
MOVED = {("kit.predictors", "VisionPredictor"): "kit.vision.predictor",
         ("kit.predictors", "TreePredictor"): "kit.families.trees", ("kit.tasks", "MaskedMSELoss"): "kit.losses"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in MOVED:
            module = MOVED[module, name]
        return super().find_class(module, name)


class _Pickle:
    """The pickle module torch.load is given: pickle's own, with the moved classes found where they are now."""

    Unpickler = _Unpickler
    load = staticmethod(lambda f, **kw: _Unpickler(f, **kw).load())
    __name__ = "pickle"


ZIP = b"PK\x03\x04"  # torch.save's files are zip archives; a plain pickle starts with b"\x80"


@dataclass(frozen=True)
class Saved:
    """A predictor already in `save`'s bytes: a fold's worker process sends its model so, and the process that
    writes the run needs no torch to unpickle and pickle it again (~3 s of CPU beside the workers' training)."""

    data: bytes


def dumps(predictor: Any) -> bytes:
    """A predictor as `save` writes it: torch.save's when torch is imported (a net's tensors), else a plain
    pickle (a tree's predictor holds no tensor then, and importing torch to write it cost every tree run ~3 s)."""
    if isinstance(predictor, Saved):
        return predictor.data
    torch = sys.modules.get("torch")
    if torch is None:
        return pickle.dumps(predictor, protocol=pickle.HIGHEST_PROTOCOL)
    buf = io.BytesIO()
    torch.save(predictor, buf)
    return buf.getvalue()


def save(predictor: Any, path: Path) -> Path:
    """Write a predictor (or its Saved bytes) atomically."""
    return atomic_write_bytes(Path(path), dumps(predictor))


def loads(data: bytes) -> Any:
    """A predictor from `dumps`'s bytes: a plain pickle, or torch.save's zip (torch imported only then)."""
    if data[:4] != ZIP:
        return _Unpickler(io.BytesIO(data)).load()
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False, pickle_module=_Pickle)


def load(path: Path) -> Any:
    """Read a predictor written by `save` (the file is this project's own: full unpickling is intended)."""
    try:
        return loads(Path(path).read_bytes())
    except (OSError, EOFError, RuntimeError, ModuleNotFoundError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"{path}: cannot load the fold model ({str(e).splitlines()[0] if str(e) else e})") from None


@dataclass(frozen=True)
class Joined:
    """A fold's predictor made of parts that trained in separate worker processes (a fold's nets, kit.workers):
    the mean of the parts' predictions, as the fold's own loop averages its nets (each part one net, so the mean
    is the same bytes). The parts stay as `save`'s bytes until they predict: the process that joins them needs
    no torch."""

    parts: tuple[Any, ...]

    def predict(self, comp: Any, data: Any) -> np.ndarray:
        """The mean of the parts' predictions for `data.test`."""
        return np.mean([(loads(p.data) if isinstance(p, Saved) else p).predict(comp, data) for p in self.parts],
                       axis=0)

"""fastai helpers: seeding, the device, DataLoaders from arrays, a Learner whose loss is the task's, fitting,
the recorded history, and predictions through the loss's own activation."""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from typing import Any

import fastai.callback.progress  # noqa: F401  (registers ProgressCallback: fastprogress bars)
import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
import numpy as np
import torch
from fastai.callback.core import Callback, event
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.metrics import AccumMetric
from fastai.optimizer import Adam, OptimWrapper
from fastai.torch_core import set_seed, to_float
from torch import nn

from kit import devices
from kit.errors import KitError
from kit.spec import Competition
from kit.tasks import TargetScaler, Task

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (and make cuDNN deterministic) for reproducible runs."""
    set_seed(seed, reproducible=True)


def cpu_bf16(precision: str, device: torch.device | None = None) -> bool:
    """Whether training batches run under bfloat16 autocast (BF16Autocast): `bf16`, or `auto` on a CPU with AMX
    tiles (kit.devices.fast_cpu_bf16); never on a GPU (fastai's MixedPrecision is CUDA's)."""
    device = device or default_device()
    if device.type != "cpu":
        return False
    return precision == "bf16" or (precision == "auto" and devices.fast_cpu_bf16())


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class _Tensors:
    """Tensors of equal length; items are row numbers (the loader gathers whole batches)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> int:
        return i


class TensorBatchLoader(DataLoader):
    """fastai DataLoader whose batches are one index gather per tensor, in the loading process: fastai's per-item
    fetch and collate, and a worker process sending every batch back, cost more than a small tabular net's step
    (the modern MLP on 256-row batches of 14 columns, 2 cores: 13 ms a step against 18 with one worker process;
    the same batches, in the same order, as over a TensorDataset: fastai shuffles in the main process either way)."""

    def __init__(self, dataset: Any = None, bs: int = 64, num_workers: int = 0, **kwargs: Any) -> None:
        super().__init__(dataset, bs=bs, num_workers=num_workers, **kwargs)

    def create_item(self, s: int) -> int:
        return s

    def create_batch(self, b: list[int]) -> tuple:
        idx = torch.as_tensor(np.asarray(b, dtype=np.int64))
        return tuple(t[idx] for t in self.dataset.tensors)

    def create_batches(self, samps: Any) -> Any:
        """fastai's batches of `samps` (bs at a time, the last dropped with drop_last) without a call per row."""
        idx = torch.as_tensor(np.fromiter(samps, dtype=np.int64))
        for start in range(0, len(idx), self.bs):
            b = idx[start : start + self.bs]
            if self.drop_last and len(b) < self.bs:
                break
            yield tuple(t[b] for t in self.dataset.tensors)


def tensor_dataloaders(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    x_test: np.ndarray,
    bs: int,
    task: Task,
    device: torch.device | None = None,
) -> tuple[DataLoaders, DataLoader]:
    """fastai DataLoaders (shuffled train, ordered valid) and a test DataLoader from numpy arrays."""
    device = device or default_device()
    ydtype = torch.long if task.target_dtype() == np.int64 else torch.float32

    def ds(x: np.ndarray, y: np.ndarray | None = None) -> _Tensors:
        xs = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
        return _Tensors(xs) if y is None else _Tensors(xs, torch.as_tensor(np.asarray(y), dtype=ydtype))

    # drop_last avoids a 1-row final batch, which breaks BatchNorm and makes a noisy last step
    drop_last = len(x_train) > bs
    train = TensorBatchLoader(ds(x_train, y_train), bs=bs, shuffle=True, drop_last=drop_last, device=device)
    valid = TensorBatchLoader(ds(x_valid, y_valid), bs=max(bs, 256), shuffle=False, device=device)
    test = TensorBatchLoader(ds(x_test), bs=max(bs, 256), shuffle=False, device=device)
    return DataLoaders(train, valid, device=device), test


class EventLearner(Learner):
    """fastai's Learner whose events go only to the callbacks that define a handler for them.

    fastai calls every callback on every event, and a callback without that handler looks it up through its
    `GetAttr` delegation (callback -> learner -> model) before falling back to a no-op: about 80 failed lookups a
    training step, which cost a small tabular net ~1 ms of a 4-9 ms step on a CPU. The handlers, the order and
    `after_fit`'s reset of every callback's `run` are fastai's own; the lists are rebuilt when callbacks change."""

    def _handlers(self, event_name: str) -> list[Callback]:
        cache = self.__dict__.setdefault("_kit_handlers", {})
        if event_name not in cache:
            cache[event_name] = [cb for cb in self.cbs.sorted("order") if event_name == "after_fit"
                                 or event_name in cb.__dict__
                                 or any(event_name in vars(k) for k in type(cb).__mro__)]
        return cache[event_name]

    def _call_one(self, event_name: str) -> None:
        if not hasattr(event, event_name):
            raise Exception(f"missing {event_name}")
        for cb in self._handlers(event_name):
            cb(event_name)

    def add_cb(self, cb: Callback) -> EventLearner:
        self.__dict__.pop("_kit_handlers", None)
        return super().add_cb(cb)

    def remove_cb(self, cb: Callback) -> EventLearner:
        self.__dict__.pop("_kit_handlers", None)
        return super().remove_cb(cb)


def make_learner(
    dls: DataLoaders,
    model: nn.Module,
    task: Task,
    lr: float,
    wd: float,
    cbs: list[Callback] | None = None,
    metrics: list | None = None,
    loss_func: Any = None,
    opt_func: Any = Adam,
) -> Learner:
    """A fastai Learner whose loss is the task's (BCE with logits / cross-entropy / MSE, fastai's `*LossFlat`),
    or `loss_func` built from it (label smoothing, an ensemble's mean over heads)."""
    return EventLearner(
        dls,
        model.to(dls.device),
        loss_func=loss_func if loss_func is not None else task.loss(),
        opt_func=opt_func,
        lr=float(lr),
        wd=float(wd),
        metrics=metrics or [],
        cbs=cbs or [],
    )


def torch_adamw(params: Any, **kwargs: Any) -> OptimWrapper:
    """torch's AdamW (decoupled weight decay, as fastai's Adam) behind fastai's OptimWrapper, so fastai's
    schedules drive it. Its fused step (one kernel for every parameter; CPU and CUDA) costs a fraction of fastai's
    per-parameter Python loop, which dominated a small tabular net's step (2.4 of 9 ms measured), and 0.4x torch's
    multi-tensor (`foreach`) step on a CPU: 0.30 vs 0.76 ms a step for the modern MLP's parameters, whole runs
    0.90-0.99x (bench/results/tabular-ab.md, "The optimiser's fused step")."""
    fused = default_device().type in ("cpu", "cuda")
    return OptimWrapper(params, opt=partial(torch.optim.AdamW, **({"fused": True} if fused else {"foreach": True})),
                        **kwargs)


def competition_metric(comp: Competition, scaler: TargetScaler | None = None) -> AccumMetric:
    """A fastai metric reporting the competition's own `Metric` each epoch, as `comp.score` computes it
    (untuned decoding, or probabilities), through the loss's activation and back in target units."""
    task = comp.task
    act = task.loss().activation

    def score(preds: torch.Tensor, targs: torch.Tensor) -> float:
        probs = task.outputs_to_probs(act(preds.float()).detach().cpu().numpy())
        y = targs.detach().cpu().numpy()
        if scaler is not None:
            probs, y = scaler.inverse(probs), scaler.inverse(y)
        if task.classification:
            y = y.astype(np.int64)
        try:
            return comp.score(y, probs)
        except (ValueError, KitError):  # e.g. AUC on a batch of one class: not a reason to stop training
            return float("nan")

    score.__name__ = str(comp.metric)
    return AccumMetric(score, flatten=False, to_np=False, name=str(comp.metric))


def fit(learn: Learner, epochs: int, lr: float, wd: float | None, cbs: list[Callback] | None = None,
        progress: bool = True, schedule: str = "one_cycle") -> None:
    """`fit_one_cycle` (or `fit_flat_cos`) for `epochs` epochs at `lr` (fastai's bars unless progress=False); under
    fastai's `distrib_ctx` when the run has several processes (kit.devices)."""
    epochs = int(epochs)
    quiet = learn.no_bar() if not progress else contextlib.nullcontext()
    with quiet, learn.no_logging(), devices.fit_context(learn):
        if schedule == "flat_cos":
            learn.fit_flat_cos(epochs, lr=float(lr), wd=wd, cbs=cbs)
        else:
            learn.fit_one_cycle(epochs, lr_max=float(lr), wd=wd, cbs=cbs)


def history(learn: Learner) -> list[dict]:
    """Per-epoch values recorded by fastai's Recorder (train_loss, valid_loss, metrics)."""
    names = [n for n in learn.recorder.metric_names[1:] if n != "time"]
    return [
        {n: (float(v) if v is not None else None) for n, v in zip(names, vals, strict=False)}
        for vals in learn.recorder.values
    ]


def predict(learn: Learner, dl: DataLoader, task: Task) -> np.ndarray:
    """Probabilities (or regression values) for every item of `dl`, in order, through the loss's activation."""
    with learn.no_bar(), learn.no_logging():
        outputs, _ = learn.get_preds(dl=dl)
    return task.outputs_to_probs(outputs.float().cpu().numpy())


class BF16Autocast(Callback):
    """Training batches' forward pass and loss under `torch.autocast(bfloat16)` on the model's device, weights
    and optimiser in float32 (bfloat16 has float32's range: no loss scaling). fastai's `MixedPrecision` does this
    for CUDA only; on a CPU with AMX tiles (kit.devices.fast_cpu_bf16) the matmuls and convolutions run in
    bfloat16: the tabular nets' whole runs took 0.74-0.99x the time, faster the larger the batch
    (bench/results/tabular-ab.md), Planet's cpu-preset epochs 0.87x channels-last float32's
    (bench/results/planet.md). Validation stays in float32, so the epoch chosen and the predictions are
    float32's."""

    order = 10

    def before_fit(self) -> None:
        self.context = None

    def before_batch(self) -> None:
        if self.training:
            self.context = torch.autocast(self.dls.device.type, dtype=torch.bfloat16)
            self.context.__enter__()

    def after_pred(self) -> None:
        if self.context is not None:
            self.learn.pred = to_float(self.pred)

    def after_loss(self) -> None:
        self._leave()

    def after_batch(self) -> None:  # a batch cancelled before its loss leaves the context too
        self._leave()

    def _leave(self) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None

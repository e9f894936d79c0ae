"""fastai callbacks for the tabular nets."""

from __future__ import annotations

import torch
from fastai.callback.core import Callback
from fastai.callback.tracker import TrackerCallback
from fastai.torch_core import to_float


class BestEpoch(TrackerCallback):
    """Keep the weights of the epoch with the best `monitor` (default the validation loss) and restore them
    when fitting ends; `chosen_epoch` says which (0-based). In memory, unlike fastai's SaveModelCallback, which
    writes a file per improvement into the Learner's path."""

    order = TrackerCallback.order + 1

    def __init__(self, monitor: str = "valid_loss") -> None:
        super().__init__(monitor=monitor)
        self.chosen_epoch = -1
        self.state = None

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best:
            self.chosen_epoch = self.epoch
            self.state = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}

    def after_fit(self) -> None:
        if self.state is not None:
            self.learn.model.load_state_dict(self.state)
        super().after_fit()


class BF16Autocast(Callback):
    """Training batches' forward pass and loss under `torch.autocast(bfloat16)` on the model's device, weights
    and optimiser in float32 (bfloat16 has float32's range: no loss scaling). fastai's `MixedPrecision` does this
    for CUDA only; on a CPU with AMX tiles (kit.devices.fast_cpu_bf16) the matmuls run in bfloat16: whole runs
    took 0.74-0.99x the time, faster the larger the batch (bench/results/tabular-ab.md). Validation stays in
    float32, so the epoch chosen and the predictions are float32's."""

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

"""Losses the tabular nets add to the task's: label-smoothed binary cross-entropy (fastai has the multi-class
one, `LabelSmoothingCrossEntropyFlat`, but none for sigmoid outputs) and the mean over an ensemble's heads.
Both keep fastai's loss protocol: `activation` and `decodes` of the loss they extend."""

from __future__ import annotations

from typing import Any

import torch
from fastai.losses import BCEWithLogitsLossFlat


class SmoothBCEWithLogitsLossFlat(BCEWithLogitsLossFlat):
    """BCE with logits on targets pulled toward 1/2: t * (1 - eps) + eps / 2 (binary and multi-label)."""

    def __init__(self, *args: Any, eps: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps = float(eps)

    def __call__(self, inp: torch.Tensor, targ: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return super().__call__(inp, targ.float() * (1 - self.eps) + self.eps / 2, **kwargs)


class EnsembleLoss:
    """`base` averaged over k heads when the model returns (batch, k, outputs) (TabM in training); `base`
    itself on ordinary (batch, outputs) predictions (TabM in eval: the heads already combined)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __call__(self, inp: torch.Tensor, targ: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if inp.ndim != 3:
            return self.base(inp, targ, **kwargs)
        b, k, d = inp.shape
        # every head sees the whole batch: the heads' losses averaged = the loss of the k-fold repeated batch
        return self.base(inp.reshape(b * k, d), targ.repeat_interleave(k, dim=0), **kwargs)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The base loss's activation."""
        return getattr(self.base, "activation", lambda t: t)(x)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """The base loss's decodes."""
        return getattr(self.base, "decodes", lambda t: t)(x)

    @property
    def reduction(self) -> str:
        return getattr(self.base, "reduction", "mean")

    @reduction.setter
    def reduction(self, value: str) -> None:  # fastai's get_preds(with_loss=True) switches it
        self.base.reduction = value

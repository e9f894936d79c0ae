"""Losses kit adds to fastai's, and the seeds' hand-written binary cross-entropy.

Training uses fastai's losses through the task (`kit.tasks`: `BCEWithLogitsLossFlat`, `CrossEntropyLossFlat`,
`MSELossFlat`, `LabelSmoothingCrossEntropyFlat`), which carry their own `activation` and `decodes`. What fastai
lacks is here, keeping that protocol: label-smoothed binary cross-entropy (fastai smooths only the multi-class
loss) and the mean over an ensemble's heads (TabM). The seeds' BCE is kept as a readable, tested reference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from fastai.losses import BCEWithLogitsLossFlat
from torch import nn


def reference_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The seeds' hand-written BCE, in a numerically stable form.

    The seeds computed `p = sigmoid(x); -log(where(t == 1, p, 1 - p)).mean()`, which gives inf
    once sigmoid saturates (|x| > ~17 in float32). log(sigmoid(x)) = logsigmoid(x) and
    log(1 - sigmoid(x)) = logsigmoid(-x) are the same quantities without the overflow.
    """
    targets = targets.to(logits.dtype)
    return -torch.where(targets == 1, F.logsigmoid(logits), F.logsigmoid(-logits)).mean()


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


class MaskedMSELoss(nn.Module):
    """MSE over the targets that are present: a NaN target (a keypoint not annotated) adds no loss and no
    gradient, and is never imputed."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        mask = ~torch.isnan(targ)
        sq = (pred - torch.where(mask, targ, pred.detach())) ** 2  # missing: difference 0, no gradient
        if self.reduction == "none":
            return torch.where(mask, sq, torch.zeros_like(sq))
        if self.reduction == "sum":
            return sq[mask].sum()
        return sq[mask].sum() / mask.sum().clamp(min=1)

"""Task -> loss function."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kit.errors import KitError


def reference_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The seeds' hand-written BCE, kept as a readable reference, in a numerically stable form.

    The seeds computed `p = sigmoid(x); -log(where(t == 1, p, 1 - p)).mean()`, which gives inf
    once sigmoid saturates (|x| > ~17 in float32). log(sigmoid(x)) = logsigmoid(x) and
    log(1 - sigmoid(x)) = logsigmoid(-x) are the same quantities without the overflow.
    """
    targets = targets.to(logits.dtype)
    return -torch.where(targets == 1, F.logsigmoid(logits), F.logsigmoid(-logits)).mean()


class FlatBCEWithLogits(nn.Module):
    """BCE with logits; a 1-output model's (n, 1) logits are flattened to match (n,) targets."""

    def __init__(self):
        super().__init__()
        self.loss = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 2 and logits.shape[1] == 1 and targets.ndim == 1:
            logits = logits[:, 0]
        return self.loss(logits, targets.to(logits.dtype))


class FlatMSE(nn.Module):
    """MSE; (n, 1) outputs are flattened to match (n,) targets."""

    def forward(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if preds.ndim == 2 and preds.shape[1] == 1 and targets.ndim == 1:
            preds = preds[:, 0]
        return F.mse_loss(preds, targets.to(preds.dtype))


class FlatCrossEntropy(nn.Module):
    """Cross-entropy on (n, c) logits and integer targets."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets.long().view(-1))


def loss_for(task: str) -> nn.Module:
    """BCE with logits for binary and multi-label, cross-entropy for multiclass, MSE for regression."""
    if task in ("binary", "multilabel"):
        return FlatBCEWithLogits()
    if task == "multiclass":
        return FlatCrossEntropy()
    if task == "regression":
        return FlatMSE()
    raise KitError(f"no loss for task {task!r}")


def activation_for(task: str, outputs: torch.Tensor) -> torch.Tensor:
    """Model outputs -> probabilities (or values, for regression), shaped (n,) for 1-output tasks."""
    if task in ("binary", "multilabel"):
        out = torch.sigmoid(outputs.float())
    elif task == "multiclass":
        return torch.softmax(outputs.float(), dim=1)
    else:
        out = outputs.float()
    if out.ndim == 2 and out.shape[1] == 1 and task != "multilabel":
        out = out[:, 0]
    return out

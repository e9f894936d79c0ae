"""The seeds' hand-written binary cross-entropy, kept as a readable, tested reference.

Training uses fastai's losses through the task (`kit.tasks`: `BCEWithLogitsLossFlat`, `CrossEntropyLossFlat`,
`MSELossFlat`), which carry their own `activation` and `decodes`; the tests check this one against them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reference_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The seeds' hand-written BCE, in a numerically stable form.

    The seeds computed `p = sigmoid(x); -log(where(t == 1, p, 1 - p)).mean()`, which gives inf
    once sigmoid saturates (|x| > ~17 in float32). log(sigmoid(x)) = logsigmoid(x) and
    log(1 - sigmoid(x)) = logsigmoid(-x) are the same quantities without the overflow.
    """
    targets = targets.to(logits.dtype)
    return -torch.where(targets == 1, F.logsigmoid(logits), F.logsigmoid(-logits)).mean()

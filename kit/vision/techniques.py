"""fastbook chapter 7's training techniques as fastai callbacks on kit's loaders.

- MixUp / CutMix: fastai's own callbacks (`fastai.callback.mixup`). They act in `before_batch`, after kit's
  BatchTransform has made the normalised float batch on the device, and work with kit's targets: class indices
  (single-label: the loss is interpolated, fastai's `y_int` losses) and 0/1 matrices (multi-label: the targets
  are interpolated). Keypoints are refused in `check_params` (two faces' points cannot be blended).
- Progressive resizing: `ProgressiveResize` sets the training transform's output size per epoch (a size
  schedule spread evenly over each fit's epochs, kit.vision.params.progressive_sizes); the batch is resized on
  the device with antialiasing, so the images are decoded once, at the final size, and validation and
  prediction always see that size.
"""

from __future__ import annotations

from typing import Any

from fastai.callback.core import Callback


def mix_callbacks(mixup: float, cutmix: float) -> list[Callback]:
    """fastai's MixUp(alpha) or CutMix(alpha) when on (alpha > 0)."""
    from fastai.callback.mixup import CutMix, MixUp

    if mixup > 0:
        return [MixUp(mixup)]
    if cutmix > 0:
        return [CutMix(cutmix)]
    return []


class ProgressiveResize(Callback):
    """Progressive resizing: epoch e of a fit of n trains at sizes[e * len(sizes) // n] (the training transform's
    `out_size`); the final size again after the fit."""

    order = -5  # before MixUp/CutMix see the batch (they act in before_batch; this sets the size per epoch)
    run_valid = False

    def __init__(self, sizes: list[int], tfm: Any) -> None:
        self.sizes, self.tfm = list(sizes), tfm

    def size_at(self, epoch: int, n_epoch: int) -> int:
        """The training size of epoch `epoch` of `n_epoch`."""
        return self.sizes[min(len(self.sizes) - 1, epoch * len(self.sizes) // max(1, n_epoch))]

    def before_train(self) -> None:
        self.tfm.out_size = self.size_at(self.epoch, self.n_epoch)

    def after_fit(self) -> None:
        self.tfm.out_size = None

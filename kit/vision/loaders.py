"""fastai DataLoaders over cached uint8 image arrays: one numpy gather per batch, uint8 moved to the device
(pinned + non_blocking on CUDA), conversion, normalisation and augmentation there (kit.vision.transforms)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from kit.vision.augment import Augment
from kit.vision.transforms import BatchTransform


class _Rows:
    """The rows `idx` of a (possibly memory-mapped) uint8 image array, with optional targets (their dtype kept:
    class indices stay integers for cross-entropy)."""

    def __init__(self, x: np.ndarray, idx: np.ndarray, y: np.ndarray | None = None):
        self.x, self.idx = x, np.asarray(idx, dtype=np.int64)
        self.y = None if y is None else np.ascontiguousarray(y)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> int:
        return i


class ArrayDataLoader(DataLoader):
    """fastai DataLoader whose batches are sliced from an image array in one numpy gather (no per-item work)."""

    def create_item(self, s: int) -> int:
        return s

    def create_batch(self, b: list[int]) -> tuple:
        ds: _Rows = self.dataset
        sel = np.asarray(b, dtype=np.int64)
        xb = torch.from_numpy(np.ascontiguousarray(ds.x[ds.idx[sel]]))
        out = [xb] if ds.y is None else [xb, torch.from_numpy(ds.y[sel])]
        dev = self.device
        if dev is not None and dev.type == "cuda":
            # pinned host memory lets the copy overlap with compute; fastai's own to_device is then a no-op
            out = [t.pin_memory().to(dev, non_blocking=True) for t in out]
        return tuple(out)


def array_dataloaders(
    x: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    valid_idx: np.ndarray,
    stats: tuple[Sequence[float], Sequence[float]],
    bs: int,
    device: torch.device,
    augment: Augment | None = None,
    x_rows: np.ndarray | None = None,
    points: bool = False,
    flip_perm: Sequence[int] | None = None,
) -> DataLoaders:
    """Train (shuffled, augmented) and valid DataLoaders over rows of the cached image array.

    `train_idx`/`valid_idx` index `y`; `x_rows[i]` is the row of `x` holding item i (identity when None);
    `points`: the targets are keypoints that geometric augmentations move (`flip_perm` swaps left and right).
    """
    mean, std = stats
    xr = np.arange(len(y)) if x_rows is None else np.asarray(x_rows)
    drop_last = len(train_idx) > bs  # a 1-image last batch breaks BatchNorm
    train_tfm = BatchTransform(mean, std, True, augment, points=points, flip_perm=flip_perm)
    train = ArrayDataLoader(_Rows(x, xr[train_idx], y[train_idx]), bs=bs, shuffle=True, drop_last=drop_last,
                            device=device, after_batch=train_tfm)
    train.batch_tfm = train_tfm  # kit.vision.techniques.ProgressiveResize sets its out_size per epoch
    valid = ArrayDataLoader(_Rows(x, xr[valid_idx], y[valid_idx]), bs=bs * 2, shuffle=False, device=device,
                            after_batch=BatchTransform(mean, std))
    return DataLoaders(train, valid, device=device)


def array_test_dl(
    x: np.ndarray, idx: np.ndarray, stats: tuple[Sequence[float], Sequence[float]], bs: int, device: torch.device,
    tta: int = 0,
) -> ArrayDataLoader:
    """An ordered, unlabelled DataLoader over rows `idx` (with dihedral element `tta` applied, for TTA)."""
    mean, std = stats
    return ArrayDataLoader(_Rows(x, idx), bs=bs, shuffle=False, device=device,
                           after_batch=BatchTransform(mean, std, tta=tta))

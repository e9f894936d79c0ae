"""Models for image competitions: `SmallCNN` (fast on CPU) and fastai's `vision_learner` on torchvision or timm
backbones, with pretrained weights when they can be had (kit.vision.weights; else one warning line and random
initialisation)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import torch
from fastai.data.core import DataLoaders
from torch import nn

from kit.vision.images import channel_stats
from kit.vision.weights import (
    IMAGENET_STATS,
    Weights,
    backbone_stats,
    find_weights,
    load_weights,
    resolve_arch,
    torchvision_builder,
)

log = logging.getLogger(__name__)

def _cbr(ci: int, co: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]


class _Residual(nn.Module):
    """relu(x + bn(conv(x))): a stage's stride-1 conv as a residual branch, its BN's scale started at zero (as
    fastai's xresnet does), so that each stage starts as its stride-2 conv alone."""

    def __init__(self, w: int) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        out += x  # in place, as torchvision's ResNet blocks: batch norm's backward does not need its output
        return torch.relu_(out)


class SmallCNN(nn.Sequential):
    """A stride-2 stem and 3 stages of (stride-2 conv, conv), then a head: concat avg/max pooling, dropout, linear
    (what is in the image), or with `spatial=size` a 1x1 conv and a linear layer on the whole final map (where it
    is: pooling would throw away the positions that point regression needs).

    `residual`: each stage's second conv as a residual branch (`_Residual`); the same convolutions. At 64 px with
    width 32 it trains at about 1,000 images/s on 2 CPU cores.
    """

    def __init__(self, n_out: int, width: int = 32, dropout: float = 0.1, n_in: int = 3,
                 y_range: tuple[float, float] | None = None, spatial: int | None = None, residual: bool = False):
        widths = [width, width * 2, width * 4, width * 8]
        layers = _cbr(n_in, widths[0], 2)
        prev = widths[0]
        for w in widths[1:]:
            layers += _cbr(prev, w, 2) + ([_Residual(w)] if residual else _cbr(w, w, 1))
            prev = w
        if spatial:
            side = spatial
            for _ in range(4):
                side = (side - 1) // 2 + 1  # each stride-2 conv (k=3, p=1)
            squeeze = max(8, prev // 8)
            head = [nn.Conv2d(prev, squeeze, 1), nn.ReLU(inplace=True), nn.Flatten(),
                    nn.Dropout(dropout), nn.Linear(squeeze * side * side, n_out)]
        else:
            head = [_ConcatPool(), nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * prev, n_out)]
        if y_range is not None:
            from fastai.layers import SigmoidRange

            head.append(SigmoidRange(*y_range))
        super().__init__(nn.Sequential(*layers), nn.Sequential(*head))


class _ConcatPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)], dim=1)


def torchvision_arch(arch: str) -> Callable[..., nn.Module]:
    """The torchvision model builder called `arch` (resnet18, resnet34, resnet50, ...)."""
    return torchvision_builder(arch)


def pretrained_available(arch: str) -> bool:
    """Whether pretrained weights for `arch` can be had (a local file, a cache, a download); says once in one
    line when not (the net then trains from random weights)."""
    a = resolve_arch(arch)
    return a.pretrainable and find_weights(a) is not None


def vision_learner_for(
    dls: DataLoaders,
    arch: str,
    n_out: int,
    pretrained: bool | Weights | None,
    loss_func: Callable,
    metrics: list,
    wd: float | None = None,
    dropout: float = 0.1,
    width: int = 32,
    residual: bool = False,
    cbs: list | None = None,
    y_range: tuple[float, float] | None = None,
    spatial: int | None = None,
):
    """fastai Learner: `SmallCNN` for arch 'small_cnn', else fastai's `vision_learner` on a torchvision or timm
    backbone (timm names go to fastai's `create_timm_model`).

    `pretrained`: a `Weights` file (kit.vision.weights.find_weights) loaded into the backbone with strict checks,
    True (find it now), or False/None (random initialisation). With weights the body starts frozen, as fastai's
    `vision_learner(pretrained=True)` does. Normalisation is done by the DataLoaders' BatchTransform (backbone
    stats when pretrained, data stats when not), so `vision_learner` is called with normalize=False. AMP
    (to_fp16) only on CUDA. `y_range`: outputs squashed into it by a sigmoid (fastai's SigmoidRange), as for
    points scaled to (-1, 1); `spatial`: the input size, for SmallCNN's position-keeping head (points).
    """
    from fastai.learner import Learner
    from fastai.optimizer import Adam
    from fastai.vision.learner import vision_learner

    a = resolve_arch(arch)
    weights = find_weights(a) if pretrained is True else (pretrained or None)
    if a.kind == "small_cnn":
        model = SmallCNN(n_out, width=width, dropout=dropout, y_range=y_range, spatial=spatial,
                         residual=residual).to(dls.device)
        learn = Learner(dls, model, loss_func=loss_func, opt_func=Adam, metrics=metrics, wd=wd, cbs=cbs or [])
    else:
        net = torchvision_builder(a.model) if a.kind == "torchvision" else a.model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            learn = vision_learner(dls, net, n_out=n_out, pretrained=False, normalize=False, y_range=y_range,
                                   loss_func=loss_func, metrics=metrics, wd=wd, ps=dropout, cbs=cbs)
        if weights is not None:
            load_weights(learn.model, a, weights.path)
            learn.model.to(dls.device)
            learn.freeze()
    if dls.device is not None and dls.device.type == "cuda":
        learn = learn.to_fp16()
    elif dls.device is None or dls.device.type == "cpu":
        # oneDNN's convolutions on a CPU run fastest on channels-last (NHWC) tensors, which the batches already
        # are (kit.vision.transforms.BatchTransform): Planet's cpu-preset epochs 0.89x the time
        # (bench/results/planet.md)
        learn.model.to(memory_format=torch.channels_last)
    return learn


def dataset_stats_or_imagenet(pretrained: bool, x: np.ndarray, rows: np.ndarray,
                              arch: str | None = None) -> tuple[list, list]:
    """The backbone's stats for pretrained backbones (ImageNet's, or the timm config's for `arch`), else
    per-channel stats of the training rows."""
    if not pretrained:
        return channel_stats(x, rows)
    return backbone_stats(resolve_arch(arch)) if arch else (list(IMAGENET_STATS[0]), list(IMAGENET_STATS[1]))


def describe_device(device: torch.device) -> str:
    """`cuda (NVIDIA H100)` / `cpu (2 threads)`."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"

"""Models for image competitions: `SmallCNN` (fast on CPU) and fastai's `vision_learner` on torchvision
backbones, with pretrained weights when they can be had (else one warning line and random initialisation)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import torch
from fastai.data.core import DataLoaders
from torch import nn

from kit.errors import KitError
from kit.vision.images import channel_stats

log = logging.getLogger(__name__)

IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def _cbr(ci: int, co: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]


class SmallCNN(nn.Sequential):
    """A stride-2 stem and 3 stages of (stride-2 conv, conv), then a head: concat avg/max pooling, dropout, linear
    (what is in the image), or with `spatial=size` a 1x1 conv and a linear layer on the whole final map (where it
    is: pooling would throw away the positions that point regression needs).

    At 64 px with width 32 it trains at about 1,000 images/s on 2 CPU cores.
    """

    def __init__(self, n_out: int, width: int = 32, dropout: float = 0.1, n_in: int = 3,
                 y_range: tuple[float, float] | None = None, spatial: int | None = None):
        widths = [width, width * 2, width * 4, width * 8]
        layers = _cbr(n_in, widths[0], 2)
        prev = widths[0]
        for w in widths[1:]:
            layers += _cbr(prev, w, 2) + _cbr(w, w, 1)
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


_PRETRAINED_CACHE: dict[str, bool] = {}


def torchvision_arch(arch: str) -> Callable[..., nn.Module]:
    """The torchvision model builder called `arch` (resnet18, resnet34, resnet50, ...)."""
    import torchvision

    fn = getattr(torchvision.models, arch, None)
    if fn is None or not callable(fn):
        raise KitError(f"unknown architecture {arch!r}; use small_cnn or a torchvision model name (e.g. resnet34)")
    return fn


def pretrained_available(arch: str) -> bool:
    """Whether torchvision's default weights for `arch` are in the local cache or downloadable; warns once if not."""
    if arch in _PRETRAINED_CACHE:
        return _PRETRAINED_CACHE[arch]
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(torchvision_arch(arch)).DEFAULT
        weights.get_state_dict(progress=False)  # from ~/.cache/torch/hub when present, else a download
        ok = True
    except KitError:
        raise
    except Exception as e:  # offline (URLError), proxy, corrupt download, no weights for this arch ...
        msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        log.warning("pretrained weights for %s unavailable (%s): random initialisation, data normalisation stats",
                    arch, msg)
        ok = False
    _PRETRAINED_CACHE[arch] = ok
    return ok


def vision_learner_for(
    dls: DataLoaders,
    arch: str,
    n_out: int,
    pretrained: bool,
    loss_func: Callable,
    metrics: list,
    wd: float | None = None,
    dropout: float = 0.1,
    width: int = 32,
    cbs: list | None = None,
    y_range: tuple[float, float] | None = None,
    spatial: int | None = None,
):
    """fastai Learner: `SmallCNN` for arch 'small_cnn', else fastai's `vision_learner` on a torchvision backbone.

    Normalisation is done by the DataLoaders' BatchTransform (ImageNet stats when pretrained, data stats when
    not), so `vision_learner` is called with normalize=False. AMP (to_fp16) only on CUDA. `y_range`: outputs
    squashed into it by a sigmoid (fastai's SigmoidRange), as for points scaled to (-1, 1); `spatial`: the input
    size, for SmallCNN's position-keeping head (points).
    """
    from fastai.learner import Learner
    from fastai.optimizer import Adam
    from fastai.vision.learner import vision_learner

    if arch == "small_cnn":
        model = SmallCNN(n_out, width=width, dropout=dropout, y_range=y_range, spatial=spatial).to(dls.device)
        learn = Learner(dls, model, loss_func=loss_func, opt_func=Adam, metrics=metrics, wd=wd, cbs=cbs or [])
    else:
        fn = torchvision_arch(arch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            learn = vision_learner(dls, fn, n_out=n_out, pretrained=pretrained, normalize=False, y_range=y_range,
                                   loss_func=loss_func, metrics=metrics, wd=wd, ps=dropout, cbs=cbs)
    if dls.device is not None and dls.device.type == "cuda":
        learn = learn.to_fp16()
    return learn


def dataset_stats_or_imagenet(pretrained: bool, x: np.ndarray, rows: np.ndarray) -> tuple[list, list]:
    """ImageNet stats for pretrained backbones, else per-channel stats of the training rows."""
    return (list(IMAGENET_STATS[0]), list(IMAGENET_STATS[1])) if pretrained else channel_stats(x, rows)


def describe_device(device: torch.device) -> str:
    """`cuda (NVIDIA H100)` / `cpu (2 threads)`."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"

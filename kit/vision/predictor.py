"""`VisionPredictor`, an image fold's saved predictor, and `tta_mean`, the one TTA loop: the mean prediction
over dihedral views, mirrored point predictions mirrored back, used both while training (validation rows,
through the fastai learner) and by the saved predictor (test rows, through a CPU copy of the network)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from kit.predictors import run_model
from kit.tasks import TargetScaler
from kit.vision.loaders import array_test_dl
from kit.vision.transforms import flip_points


def tta_mean(predict: Callable[[Any], np.ndarray], x: np.ndarray, rows: np.ndarray, stats: tuple, bs: int,
             device: torch.device, views: list[int], flip_perm: np.ndarray | None) -> np.ndarray:
    """Mean of `predict(loader)` over the views (dihedral element k each) of images `x[rows]`; point predictions
    of mirrored views (odd k) are mirrored back through `flip_perm`."""
    out = []
    for k in views:
        pred = predict(array_test_dl(x, rows, stats, bs, device, k))
        if flip_perm is not None and k & 1:
            pred = flip_points(torch.from_numpy(pred), torch.as_tensor(flip_perm)).numpy()
        out.append(pred)
    return np.mean(out, axis=0)


@dataclass
class VisionPredictor:
    """The fold's network, normalisation stats, image size, TTA views and target scaling."""

    model: nn.Module
    stats: tuple
    size: int
    bs: int
    views: list[int]
    scaler: TargetScaler
    flip_perm: np.ndarray | None = None
    amp: bool = False
    fill: np.ndarray | None = None  # the fold's prior for test images that cannot be read

    def predict(self, comp: Any, data: Any) -> np.ndarray:
        """Predictions for `data.test` (mean over the TTA views, mirrored points mirrored back), in target units."""
        from kit.learner import default_device

        imgs = comp.images(data, "test", self.size)
        device = default_device()
        model = copy.deepcopy(self.model).to(device)
        test = self.scaler.inverse(tta_mean(lambda dl: run_model(model, dl, comp.task, self.amp), imgs.x,
                                            np.arange(len(imgs.x)), self.stats, self.bs, device, self.views,
                                            self.flip_perm))
        bad = sorted(imgs.bad)
        if bad and self.fill is not None:
            test[bad] = self.fill
        return test

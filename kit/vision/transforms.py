"""Augmentation on the device: `BatchTransform` turns a uint8 (B, H, W, 3) batch into normalised floats and,
while training, applies a random draw of the competition's `Augment` per sample; for point targets every
geometric transform is applied to the targets too. Test-time augmentation uses fixed elements of the same group
(`dihedral`), undone on point predictions (`flip_points`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from kit.vision.augment import Augment


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Element `k` (0..7) of the dihedral group on the last two dims: bit 0 flips W, bit 1 flips H, bit 2
    transposes (square images), so the 8 elements are the 4 rotations and their mirror images."""
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def flip_points(y: torch.Tensor, perm: torch.Tensor | None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Points (B, 2K) as x0, y0, x1, y1, ... in [-1, 1]: mirrored left-right (x -> -x) with left/right keypoints
    swapped (`perm`: output column permutation), for the rows in `mask` (all when None)."""
    out = y.clone()
    out[:, 0::2] = -out[:, 0::2]
    if perm is not None:
        out = out[:, perm]
    return out if mask is None else torch.where(mask.view(-1, 1), out, y)


def _affine(x: torch.Tensor, y: torch.Tensor | None, aug: Augment) -> tuple[torch.Tensor, torch.Tensor | None]:
    b, dev = x.shape[0], x.device
    r = (torch.rand(b, device=dev) * 2 - 1) * math.radians(aug.rotate)
    s = 1 + (torch.rand(b, device=dev) * 2 - 1) * aug.scale
    t = (torch.rand(b, 2, device=dev) * 2 - 1) * aug.translate * 2  # normalised coordinates span 2
    cos, sin = torch.cos(r), torch.sin(r)
    m = torch.stack([torch.stack([s * cos, -s * sin], -1), torch.stack([s * sin, s * cos], -1)], -2)  # (B, 2, 2)
    theta = torch.cat([m, t.unsqueeze(-1)], dim=-1)  # output -> input coordinates
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if y is not None:  # input -> output: p_out = M^-1 (p_in - t); points pushed out of the image become missing
        p = y.view(b, -1, 2) - t.unsqueeze(1)
        p = torch.linalg.solve(m.unsqueeze(1), p.unsqueeze(-1)).squeeze(-1)
        p = torch.where((p.abs() > 1).any(-1, keepdim=True), torch.full_like(p, float("nan")), p)
        y = p.reshape(b, -1)
    return x, y


class BatchTransform:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W); training: the competition's augmentations per sample
    (applied to point targets too), at `out_size` when set (progressive resizing); `tta`: one fixed dihedral element."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool = False,
        augment: Augment | None = None,
        tta: int = 0,
        points: bool = False,
        flip_perm: Sequence[int] | None = None,
    ):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.train, self.augment, self.tta = train, augment or Augment(), int(tta)
        self.out_size: int | None = None  # training batches resized to this side (progressive resizing)
        self.points = points
        self.flip_perm = None if flip_perm is None else torch.as_tensor(np.asarray(flip_perm), dtype=torch.long)
        if points:
            self.augment.check_points()

    def _flips(self, xb: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The random flips and turns, on the uint8 (B, H, W, 3) batch (a quarter of the float batch's bytes): each
        sample's dihedral element from its three coin flips, applied to the samples that drew it, a group at a time
        (a `torch.where` of the whole batch per flip read the batch twice each, and a transposed one slowly)."""
        a, b, dev = self.augment, xb.shape[0], xb.device
        bits = torch.rand(3, b, device=dev) < 0.5
        # each coin's bit of the element (dihedral's: 1 flips W, 2 flips H, 4 transposes), 0 where not allowed
        value = torch.tensor([int(a.flip), 2 * a.vflip, 4 * (a.rot90 and xb.shape[1] == xb.shape[2])], device=dev)
        element = (bits * value.view(3, 1)).sum(0)
        if bool((element > 0).any()):
            out = xb.clone()
            for k in element.unique().tolist():
                if k:
                    at = (element == k).nonzero().view(-1)
                    out[at] = dihedral(xb[at].permute(0, 3, 1, 2), k).permute(0, 2, 3, 1)
            xb = out
        if a.flip and y is not None:
            perm = None if self.flip_perm is None else self.flip_perm.to(dev)
            y = flip_points(y, perm, bits[0])
        return xb, y

    def _augment(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The moves and the lighting, on the float batch in [0, 1] (the flips came before: _flips)."""
        a, b, dev = self.augment, x.shape[0], x.device
        if a.rotate or a.scale or a.translate:
            x, y = _affine(x, y, a)
        if a.lighting > 0:
            # per-image contrast scale about the data's mean level and brightness shift: one fused multiply-add
            contrast = torch.exp((torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * a.lighting)
            bright = (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * a.lighting * 0.5
            level = self.mean.to(dev)
            x = torch.addcmul(level * (1 - contrast) + bright, x, contrast).clamp_(0.0, 1.0)
        return x, y

    def __call__(self, batch: tuple) -> tuple:
        xb, *rest = batch
        y = rest[0] if self.train and self.points and rest else None
        if self.train:
            xb, y = self._flips(xb, y)
        # one copy of the uint8 batch into channels-last order (the models' on a CPU: kit.vision.models), so that
        # every float op below runs over dense memory in that order and the batch needs no float copy at the end
        fmt = torch.channels_last if xb.device.type == "cpu" else torch.contiguous_format
        x = xb.permute(0, 3, 1, 2)
        if not self.train and self.tta:
            x = dihedral(x, self.tta)
        x = x.contiguous(memory_format=fmt).float().div_(255.0)
        if self.train and self.out_size and x.shape[-1] != self.out_size:
            # points are in units of the image (-1..1), so they are unchanged by a resize
            x = F.interpolate(x, size=(self.out_size, self.out_size), mode="bilinear", antialias=True,
                              align_corners=False)
        if self.train:
            x, y = self._augment(x, y)
            if y is not None:
                rest = [y, *rest[1:]]
        x = x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))
        return (x.contiguous(memory_format=fmt), *rest)

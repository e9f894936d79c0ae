"""Vision helpers shared by image competitions.

- `load_images`: decode + resize every image once into a uint8 (n, size, size, 3) array, cached on disk as a
  memory-mapped .npy keyed by the file list, the files' sizes/mtimes and the image size; unreadable files
  are listed, never silently zero-filled.
- `channel_stats`: normalisation statistics computed from the data (for randomly initialised backbones;
  fastai skips normalisation when `pretrained=False`).
- `array_dataloaders`: fastai DataLoaders that slice the cached array per batch, move uint8 to the device
  (pinned + non_blocking on CUDA) and do float conversion, normalisation and augmentation there.
- `BatchTransform`: per-sample dihedral (flips, 90° rotations) and light lighting changes for overhead imagery,
  or one fixed dihedral element for test-time augmentation.
- `SmallCNN`: a fast CNN for CPU training; `vision_learner_for`: fastai `vision_learner` on a torchvision
  backbone with pretrained weights when they can be had, else a one-line warning and random init.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from PIL import Image
from torch import nn

from kit.errors import KitError

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when decoding changes, so old caches are not reused
IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


# ---- decoding and the image cache ---------------------------------------------------------------------


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """One image as uint8 RGB (size, size, 3): JPEG DCT-domain downscaling, any mode converted to RGB."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # decode at 1/2, 1/4 or 1/8 scale when that still covers `size`
        im = im.convert("RGB")  # grayscale, palette, CMYK and RGBA (alpha dropped) all become RGB
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
        return np.asarray(im, dtype=np.uint8)


def _decode_chunk(job: tuple[list[str], int]) -> tuple[np.ndarray, dict[int, str]]:
    paths, size = job
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    bad: dict[int, str] = {}
    for i, p in enumerate(paths):
        try:
            out[i] = decode_image(p, size)
        except FileNotFoundError:
            bad[i] = "missing"
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            bad[i] = "unreadable (" + (str(e).splitlines()[0][:80] if str(e) else type(e).__name__) + ")"
    return out, bad


@dataclass
class ImageArray:
    """Decoded images in file-list order; `bad` maps row -> why it could not be decoded (its pixels are 0)."""

    x: np.ndarray
    bad: dict[int, str] = field(default_factory=dict)
    cache_file: Path | None = None

    @property
    def size(self) -> int:
        """Side length in pixels."""
        return int(self.x.shape[1])


def cache_key(paths: Sequence[str | Path], size: int) -> str:
    """Hash of the file list, each file's size and mtime, and the image size."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{size}|{len(paths)}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:20]


def load_images(
    paths: Sequence[str | Path],
    size: int,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = False,
    name: str = "images",
) -> ImageArray:
    """Decode every image once to (n, size, size, 3) uint8; with `cache_dir`, reuse or write a memmapped cache."""
    paths = [str(p) for p in paths]
    if size < 1:
        raise KitError(f"image size must be >= 1 (got {size})")
    cache_file = bad_file = None
    if cache_dir:
        key = cache_key(paths, size)
        cache_file = Path(cache_dir) / f"{name}-{size}px-{key}.npy"
        bad_file = cache_file.with_suffix(".bad.json")
        if cache_file.is_file() and bad_file.is_file():
            try:
                x = np.load(cache_file, mmap_mode="r")
                bad = {int(k): v for k, v in json.loads(bad_file.read_text()).items()}
                if x.shape == (len(paths), size, size, 3):
                    return ImageArray(x, bad, cache_file)
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt below
    workers = workers or min(8, os.cpu_count() or 1)
    chunk = 256
    log.info("decoding %d %s images to %d px with %d process(es)%s", len(paths), name, size, workers,
             f" into {cache_file}" if cache_file else "")
    jobs = [(paths[i : i + chunk], size) for i in range(0, len(paths), chunk)]
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
    else:
        x = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    bad: dict[int, str] = {}
    try:
        if workers > 1 and len(jobs) > 1:
            ex = ProcessPoolExecutor(min(workers, len(jobs)))
            results = ex.map(_decode_chunk, jobs)
        else:
            ex, results = None, map(_decode_chunk, jobs)
        if progress:
            from fastprogress.fastprogress import progress_bar

            results = progress_bar(results, total=len(jobs), comment=f"decoding {name} at {size}px")
        for j, (arr, b) in enumerate(results):
            x[j * chunk : j * chunk + len(arr)] = arr
            bad.update({j * chunk + i: why for i, why in b.items()})
        if ex is not None:
            ex.shutdown()
        if cache_file is not None:
            x.flush()
            del x
            from kit.io import atomic_write_json

            atomic_write_json(bad_file, {str(k): v for k, v in sorted(bad.items())})
            os.replace(tmp, cache_file)  # the array last: a cache file never exists without its bad-list
            x = np.load(cache_file, mmap_mode="r")
    except BaseException:
        if cache_file is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return ImageArray(x, bad, cache_file)


def describe_bad(names: Sequence[str], bad: dict[int, str], limit: int = 20) -> str:
    """`train_3.jpg (missing), train_9.jpg (unreadable (...))` for the first `limit` bad rows, then `... N more`."""
    items = [f"{names[i]} ({why})" for i, why in sorted(bad.items())]
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f", ... {more} more" if more > 0 else "")


def channel_stats(x: np.ndarray, rows: np.ndarray | None = None, max_images: int = 2000) -> tuple[list, list]:
    """Per-channel mean and std in [0, 1] units over (an evenly spaced subset of) `rows` of a uint8 array."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    if len(rows) > max_images:
        rows = rows[np.linspace(0, len(rows) - 1, max_images).astype(np.int64)]
    sample = np.asarray(x[np.sort(rows)], dtype=np.float64) / 255.0
    mean = sample.mean(axis=(0, 1, 2))
    std = np.maximum(sample.std(axis=(0, 1, 2)), 1e-3)
    return [float(v) for v in mean], [float(v) for v in std]


# ---- batches: uint8 on the device, then float, normalised, augmented ------------------------------------


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


class BatchTransform:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W); training: random dihedral + lighting per sample."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool = False,
        dihedral_aug: bool = True,
        lighting: float = 0.0,
        tta: int = 0,
    ):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.train, self.dihedral_aug, self.lighting, self.tta = train, dihedral_aug, float(lighting), int(tta)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.dihedral_aug and x.shape[-1] == x.shape[-2]:
            # one random bit per sample for each generator (flip W, flip H, transpose): 3 whole-batch selects
            bits = torch.rand(3, b, 1, 1, 1, device=x.device) < 0.5
            x = torch.where(bits[0], x.flip(-1), x)
            x = torch.where(bits[1], x.flip(-2), x)
            x = torch.where(bits[2], x.transpose(-1, -2), x)
        if self.lighting > 0:
            a = self.lighting
            # per-image contrast scale about the data's mean level and brightness shift: one fused multiply-add
            contrast = torch.exp((torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * a)
            bright = (torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * a * 0.5
            level = self.mean.to(x.device)
            x = torch.addcmul(level * (1 - contrast) + bright, x, contrast).clamp_(0.0, 1.0)
        return x

    def __call__(self, batch: tuple) -> tuple:
        xb, *rest = batch
        x = xb.permute(0, 3, 1, 2).float().div_(255.0)
        if self.train:
            x = self._augment(x)
        elif self.tta:
            x = dihedral(x, self.tta)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return (x.contiguous(), *rest)


class _Rows:
    """The rows `idx` of a (possibly memory-mapped) uint8 image array, with optional targets."""

    def __init__(self, x: np.ndarray, idx: np.ndarray, y: np.ndarray | None = None):
        self.x, self.idx = x, np.asarray(idx, dtype=np.int64)
        self.y = None if y is None else np.asarray(y, dtype=np.float32)

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
    lighting: float = 0.1,
    dihedral_aug: bool = True,
    x_rows: np.ndarray | None = None,
) -> DataLoaders:
    """Train (shuffled, augmented) and valid DataLoaders over rows of the cached image array.

    `train_idx`/`valid_idx` index `y`; `x_rows[i]` is the row of `x` holding item i (identity when None).
    """
    mean, std = stats
    xr = np.arange(len(y)) if x_rows is None else np.asarray(x_rows)
    drop_last = len(train_idx) > bs  # a 1-image last batch breaks BatchNorm
    train = ArrayDataLoader(_Rows(x, xr[train_idx], y[train_idx]), bs=bs, shuffle=True, drop_last=drop_last,
                            device=device, after_batch=BatchTransform(mean, std, True, dihedral_aug, lighting))
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


def tta_elements(n: int) -> list[int]:
    """The first `n` dihedral elements used for TTA, identity first (n=0 or 1: identity only)."""
    order = [0, 1, 2, 4, 3, 5, 6, 7]  # identity, h-flip, v-flip, transpose, then the rotations
    return order[: max(1, min(8, n))]


# ---- models ---------------------------------------------------------------------------------------------


def _cbr(ci: int, co: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]


class SmallCNN(nn.Sequential):
    """A stride-2 stem and 3 stages of (stride-2 conv, conv), concat avg/max pooling, dropout, linear head.

    At 64 px with width 32 it trains at about 1,000 images/s on 2 CPU cores.
    """

    def __init__(self, n_out: int, width: int = 32, dropout: float = 0.1, n_in: int = 3):
        widths = [width, width * 2, width * 4, width * 8]
        layers = _cbr(n_in, widths[0], 2)
        prev = widths[0]
        for w in widths[1:]:
            layers += _cbr(prev, w, 2) + _cbr(w, w, 1)
            prev = w
        super().__init__(
            nn.Sequential(*layers),
            nn.Sequential(_ConcatPool(), nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * prev, n_out)),
        )


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
):
    """fastai Learner: `SmallCNN` for arch 'small_cnn', else fastai's `vision_learner` on a torchvision backbone.

    Normalisation is done by the DataLoaders' BatchTransform (ImageNet stats when pretrained, data stats when
    not), so `vision_learner` is called with normalize=False. AMP (to_fp16) only on CUDA.
    """
    from fastai.learner import Learner
    from fastai.optimizer import Adam
    from fastai.vision.learner import vision_learner

    if arch == "small_cnn":
        model = SmallCNN(n_out, width=width, dropout=dropout).to(dls.device)
        learn = Learner(dls, model, loss_func=loss_func, opt_func=Adam, metrics=metrics, wd=wd, cbs=cbs or [])
    else:
        fn = torchvision_arch(arch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            learn = vision_learner(dls, fn, n_out=n_out, pretrained=pretrained, normalize=False,
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


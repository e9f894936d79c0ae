"""Images as uint8 arrays: decoding files once into a memory-mapped cache, pixels from CSV columns or strings,
and normalisation statistics.

- `load_images`: decode + resize every image once into a uint8 (n, size, size, 3) array, cached on disk as a
  memory-mapped .npy keyed by the file list, the files' sizes/mtimes and the image size; unreadable files
  are listed, never silently zero-filled.
- `pixels_to_images`: Kaggle's pixel layouts (one column per pixel, or one space-separated field) checked row by
  row and turned into the same (n, size, size, 3) array; `resize_images` for other sizes.
- `channel_stats`: normalisation statistics computed from the data (for randomly initialised backbones;
  fastai skips normalisation when `pretrained=False`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from kit.errors import DataError, KitError
from kit.io import show

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # bump when decoding changes, so old caches are not reused (3: EXIF orientation)
ORIENTATION = 0x0112  # the EXIF tag a phone camera writes instead of rotating the pixels


# ---- decoding and the image cache ---------------------------------------------------------------------


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """One image as uint8 RGB (size, size, 3): JPEG DCT-domain downscaling, turned upright by its EXIF
    orientation, any mode converted to RGB."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # decode at 1/2, 1/4 or 1/8 scale when that still covers `size`
        if im.getexif().get(ORIENTATION, 1) != 1:
            im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # 16-bit PNG/TIFF: Pillow would clip to white
            a = np.asarray(im, dtype=np.float64)
            if im.mode.startswith("I;16") or (im.mode == "I" and a.max(initial=0) > 255):
                a = a / 257.0
            im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))  # mode L
        im = im.convert("RGB")  # grayscale, palette, CMYK and RGBA (alpha dropped, as fastai's and torchvision's
        # loaders do: a 4th band is not always transparency) all become RGB
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


STATS_CHUNK = 256  # images a histogram chunk (channel_stats)


def channel_stats(x: np.ndarray, rows: np.ndarray | None = None, max_images: int = 2000) -> tuple[list, list]:
    """Per-channel mean and std in [0, 1] units over (an evenly spaced subset of) `rows` of a uint8 array."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    if len(rows) > max_images:
        rows = rows[np.linspace(0, len(rows) - 1, max_images).astype(np.int64)]
    rows = np.sort(rows)
    # exact, from each channel's histogram of byte values, a chunk of images at a time: a float64 copy of the
    # rows (700 MB for Planet's 3,200 training tiles at 96 px) and its mean/std took 3 s a fold on 2 cores
    channels = x.shape[-1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    offset = np.arange(channels, dtype=np.int32) * 256
    for start in range(0, len(rows), STATS_CHUNK):
        chunk = np.asarray(x[rows[start : start + STATS_CHUNK]]).reshape(-1, channels)
        counts += np.bincount((chunk + offset).ravel(), minlength=256 * channels).reshape(channels, 256)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum(axis=1)
    mean = counts @ values / n
    var = counts @ values**2 / n - mean**2
    std = np.maximum(np.sqrt(np.maximum(var, 0.0)), 1e-3)
    return [float(v) for v in mean], [float(v) for v in std]


# ---- pixels in CSV files -----------------------------------------------------------------------------------


def _gray_to_rgb(g: np.ndarray, side: int) -> np.ndarray:
    g = g.reshape(len(g), side, side).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def pixel_columns_to_images(df: pd.DataFrame, columns: Sequence[str], side: int, where: str) -> np.ndarray:
    """One grayscale pixel per column (Digit Recognizer's pixel0..pixel783) -> uint8 (n, side, side, 3).

    Every cell must be an integer in 0..255; the first that is not is named (file, row, column).
    """
    columns = list(columns)
    if len(columns) != side * side:
        raise DataError(f"{where}: {len(columns)} pixel columns, expected {side * side} ({side}x{side})")
    block = df[columns]
    for col in columns:
        c = block[col]
        if not pd.api.types.is_numeric_dtype(c) or c.isna().any():
            num = pd.to_numeric(c, errors="coerce")
            i = int((num.isna()).to_numpy().argmax())
            raise DataError(f"{where}: row {i + 2}, column {col}: {show(c.iloc[i])} is not a pixel value 0..255")
    v = block.to_numpy()
    bad = (v < 0) | (v > 255) | (v != np.round(v))
    if bad.any():
        i, j = divmod(int(bad.argmax()), v.shape[1])
        raise DataError(f"{where}: row {i + 2}, column {columns[j]}: {show(v[i, j])} is not a pixel value 0..255")
    return _gray_to_rgb(v, side)


def pixel_strings_to_images(values: pd.Series, side: int, where: str) -> np.ndarray:
    """One space-separated field of side*side grayscale values per row (Facial Keypoints' Image) -> uint8
    (n, side, side, 3); a field that does not parse, has the wrong count or a value outside 0..255 is named."""
    out = np.empty((len(values), side * side), dtype=np.uint8)
    for i, s in enumerate(values.tolist()):
        try:
            v = np.array(str(s).split(), dtype=np.float64) if isinstance(s, str) else np.array([])
        except ValueError:
            bad = next(t for t in str(s).split() if not _is_number(t))
            raise DataError(f"{where}: row {i + 2}, column {values.name}: {bad!r} is not a pixel value") from None
        if v.size != side * side:
            raise DataError(f"{where}: row {i + 2}, column {values.name}: {v.size} pixel values, expected "
                            f"{side * side} ({side}x{side})")
        off = (v < 0) | (v > 255) | (v != np.round(v))
        if off.any():
            raise DataError(f"{where}: row {i + 2}, column {values.name}: {v[off.argmax()]:g} is not a pixel "
                            "value 0..255")
        out[i] = v
    return _gray_to_rgb(out, side)


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def resize_images(x: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    """uint8 (n, h, w, 3) -> uint8 (n, size, size, 3), bilinear with antialiasing (torch)."""
    import torch
    import torch.nn.functional as F

    if x.shape[1] == size and x.shape[2] == size:
        return np.asarray(x)
    out = np.empty((len(x), size, size, 3), dtype=np.uint8)
    for s in range(0, len(x), chunk):
        t = torch.from_numpy(np.ascontiguousarray(x[s : s + chunk])).permute(0, 3, 1, 2).float()
        r = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[s : s + chunk] = r.round_().clamp_(0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
    return out

"""Synthetic Dog Breed Identification data: cartoon dogs of a handful of breeds, in Kaggle's exact layout.

`python -m competitions.dog-breed-identification.synthetic OUT --n 1200` writes

    OUT/labels.csv               id,breed            (ids: 32 hex digits, sorted, as Kaggle's)
    OUT/train/<id>.jpg
    OUT/test/<id>.jpg
    OUT/sample_submission.csv    id,<breed>,...      (breeds sorted, every cell 1/k, as Kaggle's)

and, with `--solution PATH`, the true test breeds as one 0/1 column per breed (the sample's layout).
Each breed has its coat colours, pattern (saddle, tan points, speckles, black mask, white belly), ears (pointed
or floppy), build and size; breeds come in look-alike pairs (beagle / coonhound: patches vs tan points, husky /
samoyed: grey back vs all white, chihuahua / pug: ears and mask), and every dog is drawn at a random place,
scale and facing on a random background, with jittered colours, lighting and sensor noise, sometimes partly out
of frame; 2 % of the labels are another breed (a labeller's mistake), so log loss stays above 0. Images are of
varied sizes (0.75 to 1.3 x `size` on each side); about 3 % are grayscale and 3 % CMYK JPEGs, as on Kaggle.
Each image is drawn from its own seed, so the data set is identical for a given (seed, n, size, breeds).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kit.errors import KitError
from kit.io import atomic_write_bytes, atomic_write_csv

# breed -> (coat, second colour, pattern, ears, body length / height, size)
BREEDS: dict[str, tuple[tuple, tuple, str, str, float, float]] = {
    "beagle": ((0.72, 0.48, 0.24), (0.10, 0.08, 0.07), "saddle", "floppy", 1.6, 0.85),
    "black-and-tan_coonhound": ((0.12, 0.10, 0.09), (0.70, 0.45, 0.22), "points", "floppy", 1.8, 1.0),
    "bluetick": ((0.82, 0.84, 0.86), (0.12, 0.14, 0.22), "speckle", "floppy", 1.7, 0.95),
    "chihuahua": ((0.86, 0.70, 0.48), (0.86, 0.70, 0.48), "solid", "pointed", 1.3, 0.55),
    "golden_retriever": ((0.85, 0.62, 0.28), (0.85, 0.62, 0.28), "solid", "floppy", 1.6, 1.05),
    "pug": ((0.84, 0.72, 0.52), (0.12, 0.10, 0.09), "mask", "small", 1.2, 0.6),
    "samoyed": ((0.95, 0.95, 0.93), (0.95, 0.95, 0.93), "solid", "pointed", 1.5, 1.0),
    "siberian_husky": ((0.45, 0.46, 0.50), (0.94, 0.94, 0.94), "belly", "pointed", 1.6, 1.0),
    "rottweiler": ((0.10, 0.09, 0.08), (0.62, 0.38, 0.18), "points", "small", 1.5, 1.05),
    "shih-tzu": ((0.93, 0.91, 0.88), (0.55, 0.38, 0.22), "saddle", "floppy", 1.3, 0.6),
    "malamute": ((0.32, 0.31, 0.33), (0.93, 0.93, 0.92), "belly", "pointed", 1.7, 1.15),
    "vizsla": ((0.70, 0.36, 0.18), (0.70, 0.36, 0.18), "solid", "floppy", 1.7, 0.95),
}
DEFAULT_BREEDS = 8  # the first 8 above: four look-alike pairs
LABEL_NOISE = 0.02  # a training or test label that is another breed
ODD_MODES = {"L": 0.03, "CMYK": 0.03}  # fractions of images saved in these modes

# the local Kaggle sandbox (kit.sandbox.data): a small, fast copy
SANDBOX: dict = {"n_train": 64, "n_test": 24, "size": 48, "workers": 1}

BACKGROUNDS = [(0.35, 0.55, 0.25), (0.80, 0.74, 0.62), (0.55, 0.55, 0.58), (0.60, 0.72, 0.86), (0.45, 0.33, 0.22)]


def breeds(n: int = DEFAULT_BREEDS) -> list[str]:
    """The first `n` breeds, sorted as Kaggle's sample columns are."""
    if not 2 <= n <= len(BREEDS):
        raise KitError(f"--breeds must be 2..{len(BREEDS)} (got {n})")
    return sorted(list(BREEDS)[:n])


def _smooth(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float32) / 255


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, soft: float) -> np.ndarray:
    d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return np.clip((1 - d) / soft, 0, 1)


def _paint(img: np.ndarray, mask: np.ndarray, color) -> None:
    img *= 1 - mask[..., None]
    img += mask[..., None] * np.asarray(color, dtype=np.float32)


def render(breed: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One dog of `breed` on a random background: uint8 RGB (h, w, 3)."""
    coat, second, pattern, ears, length, scale = BREEDS[breed]
    jit = lambda c, a=0.06: np.clip(np.asarray(c) * rng.uniform(1 - a, 1 + a) + rng.normal(0, a / 2, 3), 0, 1)  # noqa: E731
    coat, second = jit(coat), jit(second)
    bg = jit(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))], 0.15)
    img = (bg[None, None, :] * (0.75 + 0.5 * _smooth(rng, h, w, 5)[..., None])).astype(np.float32)
    s = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / s
    u = scale * rng.uniform(0.75, 1.2) * 0.22  # body half-height in units of the short side
    cy = rng.uniform(0.35, 0.65) * h / s
    cx = rng.uniform(0.3, 0.7) * w / s
    face = 1 if rng.random() < 0.5 else -1
    soft = 0.08 if breed not in ("samoyed", "golden_retriever", "shih-tzu") else 0.25  # long coats: fuzzy edges
    body = _ellipse(yy, xx, cy, cx, u, u * length, soft)
    hy, hx, hr = cy - u * 0.9, cx + face * u * length * 0.95, u * 0.62
    head = _ellipse(yy, xx, hy, hx, hr, hr * 1.1, soft)
    legs = np.zeros_like(body)
    for k in (-0.7, -0.35, 0.35, 0.7):
        lx = cx + k * u * length
        legs = np.maximum(legs, ((np.abs(xx - lx) < u * 0.16) & (yy > cy) & (yy < cy + u * 1.7)).astype(np.float32))
    tail = _ellipse(yy, xx, cy - u * 0.6, cx - face * u * length * 1.05, u * 0.5, u * 0.14, 0.3)
    if ears == "pointed":
        ear = sum(((yy < hy - hr * 0.4) & (yy > hy - hr * 1.5) & (np.abs(xx - (hx + d * hr * 0.55))
                   < (yy - (hy - hr * 1.5)) * 0.45)).astype(np.float32) for d in (-1, 1))
    elif ears == "floppy":
        ear = _ellipse(yy, xx, hy + hr * 0.35, hx - face * hr * 0.7, hr * 0.75, hr * 0.32, 0.2)
    else:
        ear = _ellipse(yy, xx, hy - hr * 0.75, hx - face * hr * 0.5, hr * 0.25, hr * 0.25, 0.3)
    dog = np.clip(np.maximum.reduce([body, head, legs, tail, np.clip(ear, 0, 1)]), 0, 1)
    fur = coat[None, None, :] * (0.85 + 0.3 * _smooth(rng, h, w, int(rng.integers(12, 30)))[..., None])
    if pattern == "saddle":
        fur = np.where((_ellipse(yy, xx, cy - u * 0.4, cx, u * 0.7, u * length * 0.7, 0.2) > 0.3)[..., None],
                       second, fur)
        fur = np.where((legs > 0)[..., None] & (yy > cy + u * 0.8)[..., None], (0.95, 0.94, 0.9), fur)
    elif pattern == "points":
        fur = np.where(((legs > 0) & (yy > cy + u * 0.5))[..., None] | (head * (yy > hy + hr * 0.2) > 0.3)[..., None],
                       second, fur)
    elif pattern == "speckle":
        grid = (max(2, h // 8), max(2, w // 8))  # ticks about 1/8 of the photo's side apart, a few pixels wide
        dots = Image.fromarray(((rng.random(grid) < 0.25) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
        dots = np.clip(np.asarray(dots, dtype=np.float32) / 255 * 1.6, 0, 1)
        fur = fur * (1 - dots[..., None]) + second * dots[..., None]
    elif pattern == "mask":
        muzzle = _ellipse(yy, xx, hy + hr * 0.2, hx + face * hr * 0.35, hr * 0.6, hr * 0.6, 0.2)
        fur = np.where(((muzzle > 0.2) | (ear > 0.3))[..., None], second, fur)
    elif pattern == "belly":
        fur = np.where(((yy > cy + u * 0.15) & (body + legs > 0))[..., None]
                       | (head * (yy > hy) > 0.3)[..., None], second, fur)
    img = img * (1 - dog[..., None]) + fur * dog[..., None]
    eye = _ellipse(yy, xx, hy - hr * 0.15, hx + face * hr * 0.45, hr * 0.12, hr * 0.12, 0.5)
    _paint(img, eye, (0.05, 0.04, 0.04))
    img = img * rng.uniform(0.7, 1.25) + rng.normal(0, 0.05, 3)  # exposure and colour cast of the photo
    img += rng.normal(0, 0.04, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _jpeg(arr: np.ndarray, mode: str, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _make_image(job: tuple[int, int, int, str, str]) -> None:
    """Draw and write one image: (seed, index, size, breed, path)."""
    seed, index, size, breed, path = job
    rng = np.random.default_rng([seed, index])
    h, w = (int(size * f) for f in rng.uniform(0.75, 1.3, 2))
    u = rng.random()
    mode = "L" if u < ODD_MODES["L"] else "CMYK" if u < ODD_MODES["L"] + ODD_MODES["CMYK"] else "RGB"
    atomic_write_bytes(Path(path), _jpeg(render(breed, max(h, 8), max(w, 8), rng), mode, int(rng.integers(80, 96))))


def _labels(n: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Breed indices drawn with `weights`, at least min(5, n // k) of each."""
    k = len(weights)
    base = min(5, n // k)
    extra = rng.choice(k, size=n - base * k, p=weights / weights.sum())
    return rng.permutation(np.concatenate([np.repeat(np.arange(k), base), extra]))


def _ids(seed: int, start: int, n: int) -> list[str]:
    return [np.random.default_rng([seed, start + i, 7]).bytes(16).hex() for i in range(n)]


def generate(
    out_dir: Path,
    n_train: int = 1200,
    n_test: int | None = None,
    seed: int = 0,
    size: int = 160,
    solution_path: Path | None = None,
    n_breeds: int = DEFAULT_BREEDS,
    workers: int | None = None,
) -> dict[str, Path]:
    """Write a Dog-Breed-format data set to `out_dir`; returns the paths written (CSV files last, atomically)."""
    out_dir = Path(out_dir)
    names = breeds(n_breeds)
    if n_train < 2 * len(names):
        raise KitError(f"--n must be at least {2 * len(names)} (two images per breed; got {n_train})")
    if size < 8:
        raise KitError(f"--size must be at least 8 pixels (got {size})")
    n_test = max(1, round(n_train / 3)) if n_test is None else n_test
    if n_test < 1:
        raise KitError(f"--n-test must be at least 1 (got {n_test})")
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, len(names))  # unbalanced, as Kaggle's 59 to 126 photos per breed; test alike
    y_train, y_test = _labels(n_train, weights, rng), _labels(n_test, weights, rng)
    train_ids, test_ids = _ids(seed, 0, n_train), _ids(seed, n_train, n_test)
    jobs = [(seed, i, size, names[y], str(out_dir / "train" / f"{train_ids[i]}.jpg")) for i, y in enumerate(y_train)]
    jobs += [(seed, n_train + i, size, names[y], str(out_dir / "test" / f"{test_ids[i]}.jpg"))
             for i, y in enumerate(y_test)]
    for sub in ("train", "test"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) >= 200:
        with ProcessPoolExecutor(workers) as ex:
            list(ex.map(_make_image, jobs, chunksize=32))
    else:
        for j in jobs:
            _make_image(j)

    def noisy(y: np.ndarray) -> np.ndarray:  # the labeller's mistakes: another breed
        flip = rng.random(len(y)) < LABEL_NOISE
        return np.where(flip, (y + rng.integers(1, len(names), len(y))) % len(names), y)

    labels = pd.DataFrame({"id": train_ids, "breed": np.asarray(names)[noisy(y_train)]}).sort_values("id")
    test = pd.DataFrame({"id": test_ids, "y": noisy(y_test)}).sort_values("id").reset_index(drop=True)
    paths = {"train": out_dir / "labels.csv", "sample": out_dir / "sample_submission.csv"}
    if solution_path is not None:
        onehot = np.eye(len(names), dtype=np.int64)[test["y"].to_numpy()]
        paths["solution"] = atomic_write_csv(Path(solution_path), pd.DataFrame(onehot, columns=names)
                                             .assign(id=test["id"])[["id", *names]])
    sample = pd.DataFrame({"id": test["id"], **{b: 1 / len(names) for b in names}})
    atomic_write_csv(paths["sample"], sample)
    atomic_write_csv(paths["train"], labels)
    return paths


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m competitions.dog-breed-identification.synthetic",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the Kaggle-layout files into")
    ap.add_argument("--n", type=int, default=1200, help="training images (default 1200)")
    ap.add_argument("--n-test", type=int, default=None, help="test images (default n / 3)")
    ap.add_argument("--size", type=int, default=160, help="typical image side in pixels (each 0.75-1.3x of it)")
    ap.add_argument("--breeds", type=int, default=DEFAULT_BREEDS, help=f"breeds, 2..{len(BREEDS)} (default "
                                                                       f"{DEFAULT_BREEDS})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solution", type=Path, default=None, help="also write the true test breeds to this CSV")
    ap.add_argument("--workers", type=int, default=None, help="drawing processes (default: up to 4)")
    a = ap.parse_args(argv)
    paths = generate(a.out, a.n, a.n_test, a.seed, a.size, a.solution, a.breeds, a.workers)
    print(f"wrote {a.n} train + {len(pd.read_csv(paths['sample']))} test images of {a.breeds} breeds to {a.out}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

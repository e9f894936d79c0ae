"""Digit Recognizer (MNIST) format data from real handwriting: `python -m competitions.digit-recognizer.synthetic OUT`.

The images are scikit-learn's 1,797 handwritten digits (`sklearn.datasets.load_digits`: 8x8, values 0-16, real
writers from the UCI "Optical Recognition of Handwritten Digits" set), prepared as MNIST was: each digit's
bounding box is scaled (bilinear, aspect ratio kept) to fit a 20x20 box, placed in a 28x28 frame so that its
centre of mass sits at the frame's centre, and its values scaled to 0-255 (white ink on black). Kaggle's layout:

    OUT/train.csv               label,pixel0,...,pixel783
    OUT/test.csv                pixel0,...,pixel783
    OUT/sample_submission.csv   ImageId,Label        (ImageId from 1 in test order, Label 0)

and, with `--solution PATH`, `ImageId,Label` with the true test labels. The images are shuffled with the seed
and split into test and train so that both hold the ten digits in about equal shares. When n_train + n_test
exceeds 1,797, the 1,797 are first split between train and test in proportion, and each side is topped up with
copies of its own images shifted by up to 2 pixels and with their brightness scaled by 0.75-1.25 (seeded), so
no test image has a near-duplicate in train.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kit.errors import KitError
from kit.io import atomic_write_csv

SIDE = 28  # MNIST frame
BOX = 20  # the digit's bounding box is scaled to fit this box
PIXELS = [f"pixel{i}" for i in range(SIDE * SIDE)]
MAX_SHIFT = 2  # pixels, for the jittered copies
GAIN = (0.75, 1.25)  # brightness factor range of the jittered copies

# the local Kaggle sandbox (kit.sandbox.data): a small, fast copy
SANDBOX: dict = {"n_train": 300, "n_test": 60}
DEMO_TRAIN_ARGS: list[str] = ["--folds", "2", "--set", "epochs=12"]  # `make demo` trains and submits it too


def mnist_frame(img: np.ndarray) -> np.ndarray:
    """One load_digits image (8x8, 0-16) as a 28x28 float image in 0-255, prepared as MNIST's digits were."""
    img = np.asarray(img, dtype=np.float32)
    rows, cols = np.nonzero(img > 0)
    if rows.size == 0:
        return np.zeros((SIDE, SIDE), np.float32)
    crop = img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    f = BOX / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    big = np.asarray(Image.fromarray(crop, mode="F").resize((nw, nh), Image.BILINEAR), dtype=np.float32)
    big = np.clip(big, 0.0, 16.0) * (255.0 / 16.0)
    mass = big.sum()
    cy = (big.sum(axis=1) @ np.arange(nh)) / mass
    cx = (big.sum(axis=0) @ np.arange(nw)) / mass
    centre = (SIDE - 1) / 2
    oy = int(np.clip(round(centre - cy), 0, SIDE - nh))
    ox = int(np.clip(round(centre - cx), 0, SIDE - nw))
    out = np.zeros((SIDE, SIDE), np.float32)
    out[oy:oy + nh, ox:ox + nw] = big
    return out


def _jitter(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy shifted by up to MAX_SHIFT pixels (never pushing ink out of the frame), brightness scaled by GAIN."""
    rows, cols = np.nonzero(frame > 0)
    dy = int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1))
    dx = int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1))
    gain = float(rng.uniform(*GAIN))
    if rows.size:
        dy = int(np.clip(dy, -rows.min(), SIDE - 1 - rows.max()))
        dx = int(np.clip(dx, -cols.min(), SIDE - 1 - cols.max()))
    out = np.zeros_like(frame)
    src = frame[max(0, -dy):SIDE - max(0, dy), max(0, -dx):SIDE - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return np.clip(out * gain, 0.0, 255.0)


def interleaved(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of the indices in which every stretch holds each class in about its overall share."""
    labels = np.asarray(labels)
    perm = rng.permutation(len(labels))
    key = np.empty(len(labels))
    for c in np.unique(labels):
        members = perm[labels[perm] == c]  # this class, in random order
        key[members] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.argsort(key, kind="stable")


def _take(base: np.ndarray, n: int, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices `base` plus n - len(base) jittered copies of them (cycled evenly), shuffled: (frames, source index)."""
    extra = np.resize(rng.permutation(base), max(0, n - len(base)))
    out = np.concatenate([frames[base], np.stack([_jitter(frames[i], rng) for i in extra])]) if len(extra) \
        else frames[base]
    src = np.concatenate([base, extra])
    order = rng.permutation(len(src))
    return out[order], src[order]


def generate(out_dir: Path, n_train: int = 1400, n_test: int = 397, seed: int = 0,
             solution_path: Path | None = None) -> dict[str, Path]:
    """Write train.csv, test.csv and sample_submission.csv (+ the true test labels if asked); returns their paths."""
    from sklearn.datasets import load_digits

    if n_train < 1 or n_test < 1:
        raise KitError(f"--n and --n-test must be at least 1 (got {n_train} and {n_test})")
    out_dir = Path(out_dir)
    digits = load_digits()
    labels = digits.target.astype(np.int64)
    frames = np.stack([mnist_frame(im) for im in digits.images])
    rng = np.random.default_rng(seed)
    order = interleaved(labels, rng)
    total, avail = n_train + n_test, len(labels)
    if total <= avail:
        test_base, train_base = order[:n_test], order[n_test:total]
    else:  # split the real images in proportion, then top each side up with jittered copies of its own images
        k = int(np.clip(round(avail * n_test / total), 1, min(n_test, avail - 1)))
        test_base, train_base = order[:k], order[k:]
    x_train, src_train = _take(train_base, n_train, frames, rng)
    x_test, src_test = _take(test_base, n_test, frames, rng)
    to_u8 = lambda x: np.floor(x.reshape(len(x), -1) + 0.5).clip(0, 255).astype(np.uint8)
    train = pd.DataFrame(to_u8(x_train), columns=PIXELS)
    train.insert(0, "label", labels[src_train])
    test = pd.DataFrame(to_u8(x_test), columns=PIXELS)
    ids = np.arange(1, n_test + 1)
    paths = {"train": out_dir / "train.csv", "test": out_dir / "test.csv", "sample": out_dir / "sample_submission.csv"}
    if solution_path is not None:
        paths["solution"] = atomic_write_csv(Path(solution_path),
                                             pd.DataFrame({"ImageId": ids, "Label": labels[src_test]}))
    atomic_write_csv(paths["sample"], pd.DataFrame({"ImageId": ids, "Label": np.zeros(n_test, np.int64)}))
    atomic_write_csv(paths["test"], test)
    atomic_write_csv(paths["train"], train)
    return paths


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m competitions.digit-recognizer.synthetic",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the Kaggle-layout files into")
    ap.add_argument("--n", type=int, default=1400, help="training images (default 1400)")
    ap.add_argument("--n-test", type=int, default=397, help="test images (default 397)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solution", type=Path, default=None, help="also write the true test labels to this CSV")
    a = ap.parse_args(argv)
    generate(a.out, a.n, a.n_test, a.seed, a.solution)
    print(f"wrote {a.n} train + {a.n_test} test digits (28x28) to {a.out}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

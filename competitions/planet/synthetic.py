"""Synthetic Planet-format data: tiles whose visible content follows their tags, in Kaggle's exact layout.

`python -m competitions.planet.synthetic OUT --n 2000` writes

    OUT/train_v2.csv                 image_name,tags   (train_0 ... train_{n-1})
    OUT/train-jpg/train_<i>.jpg
    OUT/test-jpg/test_<i>.jpg        about two thirds of the test images
    OUT/test-jpg-additional/file_<i>.jpg
    OUT/sample_submission_v2.csv     image_name,tags   (test_* then file_*, tags "primary clear agriculture road water")

and, with `--solution PATH`, the true test tags (same layout as the sample) for held-out scoring.
Tag frequencies follow the real training set (clear 70 %, primary 93 %, agriculture 30 %, ... blow_down 0.25 %);
exactly one weather tag per image, and "cloudy" images carry no other tag (as Planet's labellers did).
Like the real data it is not perfectly separable, and not uniformly so:
- weather grades from one class into the next: clear tiles may carry a trace of haze or a wisp of cloud,
  haze runs from light to thick, partly cloudy from a few wisps (4 %) to most of the tile (85 %), and the
  ground can show faintly through "cloudy";
- "primary" on farmland or town tiles is often a forest fragment, and tiles without it may show green
  secondary regrowth;
- the rare tags (bare_ground, blow_down, slash_burn, conventional/artisinal mines, selective_logging,
  blooming) are small and drawn at a random strength down to barely visible, each resembling a common
  tag (bare soil ~ harvested field, blow-down ~ regrowth, logging trails ~ dirt roads, burn scars ~ cloud
  shadow, a conventional mine ~ a town's paved area), as on Planet, where models are least sure of them;
- thin roads (dirt tracks), streams and hamlets are faint, and clouds hide what they cover;
- the annotator misses 3 % of visible land tags, and the faintest rare tags up to 28 % more often (labellers were
  inconsistent on faint evidence), in train and test labels alike.
Each tile is drawn from its own seed, so the data set is identical for a given (seed, n, size).
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

WEATHER = ["clear", "partly_cloudy", "haze", "cloudy"]
WEATHER_P = [0.703, 0.179, 0.067, 0.051]
MISS_RATE = 0.03  # annotator misses a visible land tag
FAINT_MISS = 0.4  # further miss rate of a rare tag drawn at visibility 0 (labellers disagreed on faint evidence)
SAMPLE_TAGS = "primary clear agriculture road water"  # what Kaggle's sample_submission_v2.csv holds in every row

# the local Kaggle sandbox (kit.sandbox.data): a small, fast copy; `make demo` only downloads it
SANDBOX: dict = {"n_train": 64, "n_test": 24, "size": 32, "workers": 1}

# base colours (RGB in 0..1)
FOREST = np.array([0.16, 0.30, 0.14])
LAND = np.array([0.56, 0.50, 0.36])
CLOUD = np.array([0.96, 0.96, 0.98])
HAZE = np.array([0.74, 0.76, 0.80])


def sample_tags(rng: np.random.Generator) -> list[str]:
    """One image's tags, with Planet-like frequencies and co-occurrences."""
    weather = WEATHER[int(rng.choice(4, p=WEATHER_P))]
    if weather == "cloudy":
        return ["cloudy"]  # Planet's labellers tagged fully clouded tiles "cloudy" and nothing else
    tags = [weather]
    r = rng.random
    agri = r() < 0.32
    road = r() < (0.45 if agri else 0.10)
    if agri:
        tags.append("agriculture")
    if road:
        tags.append("road")
    if r() < (0.30 if agri else 0.035):
        tags.append("cultivation")
    if r() < (0.35 if road else 0.03):
        tags.append("habitation")
    mine = r() < 0.0088
    if r() < (0.8 if mine else 0.19):
        tags.append("water")
    if mine:
        tags.append("artisinal_mine")
    for tag, p in [("bare_ground", 0.022), ("selective_logging", 0.0088), ("blooming", 0.0086),
                   ("slash_burn", 0.0054), ("blow_down", 0.0026), ("conventional_mine", 0.0026)]:
        if r() < p:
            tags.append(tag)
    # primary (rainforest) is almost always visible; tiles without it are farmland or towns
    if r() < (0.90 if agri or "habitation" in tags else 0.995):
        tags.append("primary")
    return tags


# ---- drawing primitives on float (S, S, 3) images -----------------------------------------------------


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a `cells` x `cells` random grid upsampled bicubically to `size`."""
    grid = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(img), 0.0, 1.0)


def _paint(img: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend `color` into `img` where `mask` (0..1) is set."""
    m = mask[..., None]
    img *= 1.0 - m
    img += m * color


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, soft: float = 0.15):
    d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return np.clip((1.0 + soft - d) / soft, 0.0, 1.0) if soft > 0 else (d <= 1.0).astype(np.float32)


def _line(yy: np.ndarray, xx: np.ndarray, p0, p1, width: float, curve: float = 0.0) -> np.ndarray:
    """Mask of a (slightly curved) segment from p0 to p1 of the given width (tile units)."""
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    length = np.hypot(dy, dx) + 1e-9
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / length**2, 0.0, 1.0)
    # perpendicular offset of the centre line: a sine bump of amplitude `curve`
    off = curve * np.sin(np.pi * t)
    cy, cx = y0 + t * dy - off * dx / length, x0 + t * dx + off * dy / length
    d = np.hypot(yy - cy, xx - cx)
    return np.clip((width / 2 + 0.004 - d) / 0.008, 0.0, 1.0)


def _crossing(rng: np.random.Generator) -> tuple[tuple[float, float], tuple[float, float]]:
    """End points on two opposite edges, so a road or river crosses the tile instead of clipping a corner."""
    u, v = rng.uniform(0.1, 0.9, 2)
    p0, p1 = (0.0, float(u)), (1.0, float(v))
    if rng.random() < 0.5:
        p0, p1 = p0[::-1], p1[::-1]
    return p0, p1


def _jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 0.05) -> np.ndarray:
    return np.clip(np.asarray(color) + rng.normal(0, amount, 3), 0, 1)


def _land(rng: np.random.Generator, s: int, fine: np.ndarray) -> np.ndarray:
    tex = 0.7 * _smooth_noise(rng, s, 4) + 0.3 * fine
    return _jitter(rng, LAND, 0.04)[None, None, :] * (0.8 + 0.4 * tex[..., None])


def _forest(rng: np.random.Generator, s: int, fine: np.ndarray) -> np.ndarray:
    tex = 0.6 * _smooth_noise(rng, s, 6) + 0.4 * fine
    return _jitter(rng, FOREST, 0.02)[None, None, :] * (0.75 + 0.5 * tex[..., None])


def _blob(rng: np.random.Generator, s: int, frac: float, cells: int = 3) -> np.ndarray:
    """Soft mask of irregular patches covering about `frac` of the tile."""
    noise = _smooth_noise(rng, s, cells)
    cut = np.quantile(noise, 1 - frac)
    return np.clip((noise - cut) / 0.05, 0.0, 1.0)


def render(
    tags: Sequence[str], size: int, rng: np.random.Generator, visibility: dict[str, float] | None = None
) -> np.ndarray:
    """Draw one tile (uint8 RGB, size x size) whose visible content follows `tags`.

    `visibility`, when given, receives how plainly each rare or faint land tag was drawn (0..1); `annotate`
    uses it, as labellers were less consistent on faint evidence.
    """
    s = size
    tags = set(tags)
    vis = visibility if visibility is not None else {}
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    fine = rng.random((s, s)).astype(np.float32)
    mixed = "agriculture" in tags or "habitation" in tags
    if "primary" in tags and mixed and rng.random() < 0.6:
        # farmland or town with remnants of rainforest: "primary" is tagged for a fragment of the tile
        forest = _blob(rng, s, float(rng.uniform(0.12, 0.6)))[..., None]
        img = _land(rng, s, fine) * (1 - forest) + _forest(rng, s, fine) * forest
    elif "primary" in tags:
        img = _forest(rng, s, fine)
    else:
        img = _land(rng, s, fine)
        if rng.random() < 0.4:  # secondary regrowth: green, but not what labellers called primary
            _paint(img, _blob(rng, s, float(rng.uniform(0.1, 0.4))) * rng.uniform(0.5, 0.9),
                   _jitter(rng, (0.30, 0.40, 0.22), 0.03))
    img = img.astype(np.float32)

    if "agriculture" in tags:
        n_fields = int(rng.integers(1, 6)) if "primary" in tags else int(rng.integers(4, 9))
        for _ in range(n_fields):
            cy, cx = rng.random(2)
            hy, hx = rng.uniform(0.05, 0.25, 2)
            mask = ((np.abs(yy - cy) < hy) & (np.abs(xx - cx) < hx)).astype(np.float32)
            stripes = 0.9 + 0.1 * np.sin((yy * np.cos(cx * 6) + xx * np.sin(cx * 6)) * s * 0.8)
            color = [(0.58, 0.70, 0.36), (0.78, 0.72, 0.44), (0.66, 0.58, 0.42)][int(rng.integers(3))]
            _paint(img, mask, _jitter(rng, color, 0.03))
            img *= np.where(mask[..., None] > 0, stripes[..., None], 1.0)
    if "cultivation" in tags:
        for _ in range(int(rng.integers(1, 8))):
            cy, cx = rng.random(2)
            _paint(img, _disc(yy, xx, cy, cx, *rng.uniform(0.03, 0.07, 2), soft=0.4),
                   _jitter(rng, (0.50, 0.52, 0.32), 0.03))
    # the rare tags: each drawn at its own strength, from plain to barely there, and looking like a common tag
    if "bare_ground" in tags:  # exposed soil: close to a harvested field or a dirt clearing
        vis["bare_ground"] = k = float(rng.uniform(0.3, 1.0))
        color = [(0.66, 0.48, 0.32), (0.72, 0.64, 0.46)][int(rng.random() < 0.4)]
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = rng.random(2)
            _paint(img, k * _disc(yy, xx, cy, cx, *rng.uniform(0.04, 0.12, 2), soft=0.3), _jitter(rng, color, 0.03))
    if "blow_down" in tags:  # wind-felled trees: a paler, streaked patch of canopy, like regrowth
        vis["blow_down"] = k = float(rng.uniform(0.3, 1.0))
        cy, cx = rng.uniform(0.2, 0.8, 2)
        region = _disc(yy, xx, cy, cx, *rng.uniform(0.08, 0.2, 2), soft=0.3)
        a = rng.uniform(0, np.pi)
        streaks = 0.5 + 0.5 * np.sin((yy * np.cos(a) + xx * np.sin(a)) * s * 0.7)
        _paint(img, k * region * streaks, np.array([0.36, 0.50, 0.24]))
    if "slash_burn" in tags:  # small burn scars, sometimes with smoke; dark like a cloud's shadow
        vis["slash_burn"] = k = float(rng.uniform(0.3, 1.0))
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = rng.random(2)
            r = rng.uniform(0.03, 0.07)
            if rng.random() < 0.5:
                _paint(img, 0.4 * k * _disc(yy, xx, cy - 0.04, cx + 0.04, r * 2, r * 2, soft=0.8),
                       np.array([0.6, 0.6, 0.6]))
            _paint(img, k * _disc(yy, xx, cy, cx, r, r, soft=0.4), np.array([0.10, 0.09, 0.08]))
    if "conventional_mine" in tags:  # large grey pit: close to a town's paved area
        vis["conventional_mine"] = k = float(rng.uniform(0.4, 1.0))
        cy, cx = rng.uniform(0.25, 0.75, 2)
        h = rng.uniform(0.08, 0.18, 2)
        mask = k * ((np.abs(yy - cy) < h[0]) & (np.abs(xx - cx) < h[1])).astype(np.float32)
        terraces = 0.85 + 0.15 * np.sin(np.hypot(yy - cy, xx - cx) * s * 0.6)
        _paint(img, mask, np.array([0.70, 0.68, 0.64]))
        img *= np.where(mask[..., None] > 0, terraces[..., None], 1.0)
    if "water" in tags:
        p0, p1 = _crossing(rng)
        color = [(0.12, 0.17, 0.27), (0.36, 0.32, 0.24)][int(rng.random() < 0.3)]
        width = rng.uniform(0.05, 0.10) if rng.random() < 0.75 else rng.uniform(0.012, 0.03)  # river or stream
        _paint(img, _line(yy, xx, p0, p1, width, curve=rng.uniform(-0.25, 0.25)),
               _jitter(rng, color, 0.02))
    if "artisinal_mine" in tags:  # small turbid ponds on bare soil, usually by a river
        vis["artisinal_mine"] = k = float(rng.uniform(0.4, 1.0))
        cy, cx = rng.uniform(0.2, 0.8, 2)
        _paint(img, k * _disc(yy, xx, cy, cx, *rng.uniform(0.06, 0.12, 2), soft=0.4), np.array([0.62, 0.50, 0.34]))
        for _ in range(int(rng.integers(2, 7))):
            oy, ox = rng.normal(0, 0.05, 2)
            _paint(img, k * _disc(yy, xx, cy + oy, cx + ox, 0.018, 0.018, soft=0.3), np.array([0.34, 0.56, 0.50]))
    if "selective_logging" in tags:  # thin skid trails and landings in the forest: like faint dirt roads
        vis["selective_logging"] = k = float(rng.uniform(0.3, 1.0))
        p = (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)))
        for _ in range(int(rng.integers(2, 6))):
            q = (float(np.clip(p[0] + rng.normal(0, 0.25), 0, 1)), float(np.clip(p[1] + rng.normal(0, 0.25), 0, 1)))
            _paint(img, k * _line(yy, xx, p, q, 0.008), np.array([0.55, 0.42, 0.30]))
            _paint(img, k * _disc(yy, xx, q[0], q[1], 0.018, 0.018, soft=0.3), np.array([0.50, 0.44, 0.30]))
            p = q
    if "road" in tags:  # paved (pale) or dirt (reddish) roads; dirt tracks can be thin and faint
        for _ in range(int(rng.integers(1, 3))):
            dirt = rng.random() < 0.4
            k = float(rng.uniform(0.45, 1.0)) if dirt else 1.0
            color = (0.68, 0.52, 0.38) if dirt else (0.84, 0.76, 0.62)
            width = rng.uniform(0.007, 0.02) if dirt else rng.uniform(0.01, 0.03)
            _paint(img, k * _line(yy, xx, *_crossing(rng), width, curve=rng.uniform(-0.15, 0.15)),
                   _jitter(rng, color, 0.03))
    if "habitation" in tags:
        cy, cx = rng.uniform(0.2, 0.8, 2)
        _paint(img, 0.6 * _disc(yy, xx, cy, cx, 0.14, 0.14, soft=0.4), np.array([0.62, 0.60, 0.56]))
        for _ in range(int(rng.integers(15, 40) if rng.random() < 0.7 else rng.integers(3, 8))):  # town/hamlet
            oy, ox = rng.normal(0, 0.07, 2)
            h = rng.uniform(0.012, 0.022)
            mask = ((np.abs(yy - cy - oy) < h) & (np.abs(xx - cx - ox) < h)).astype(np.float32)
            color = [(0.92, 0.92, 0.90), (0.72, 0.35, 0.28), (0.55, 0.55, 0.58)][int(rng.integers(3))]
            _paint(img, mask, np.array(color))
    if "blooming" in tags:  # flowering trees: pale speckles in the canopy, often sparse
        vis["blooming"] = k = float(rng.uniform(0.35, 1.0))
        for _ in range(int(rng.integers(10, 50))):
            cy, cx = rng.random(2)
            r = rng.uniform(0.010, 0.022)
            _paint(img, k * _disc(yy, xx, cy, cx, r, r, soft=0.5), np.array([0.88, 0.84, 0.46]))

    # weather last: it covers whatever is below. Its classes grade into each other, as on Planet: clear tiles
    # may carry a trace of haze or a wisp of cloud, haze ranges from light to thick, partly cloudy from a few
    # wisps to most of the tile, and cloudy tiles can let the ground show faintly through.
    if "haze" in tags:
        _haze(img, rng, float(rng.uniform(0.12, 0.7)))
    elif "partly_cloudy" in tags:
        _clouds(img, rng, float(rng.uniform(0.04, 0.85)), float(rng.uniform(0.55, 0.95)))
    elif "cloudy" in tags:
        noise = _smooth_noise(rng, s, 4)
        mask = np.clip(rng.uniform(0.7, 0.9) + 0.25 * noise, 0, 1)
        _paint(img, mask, CLOUD * (0.82 + 0.18 * noise[..., None]))
    else:  # clear
        u = rng.random()
        if u < 0.25:
            _haze(img, rng, float(rng.uniform(0.02, 0.12)))
        elif u < 0.35:
            _clouds(img, rng, float(rng.uniform(0.005, 0.03)), float(rng.uniform(0.4, 0.8)))
    img += rng.normal(0, 0.012, img.shape).astype(np.float32)  # sensor noise
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _haze(img: np.ndarray, rng: np.random.Generator, a: float) -> None:
    """Veil of strength `a` with a loss of sharpness, in place."""
    s = img.shape[0]
    small = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).resize((s // 4 or 1,) * 2, Image.BILINEAR)
    blurred = np.asarray(small.resize((s, s), Image.BILINEAR), dtype=np.float32) / 255
    veil = a * (0.85 + 0.3 * _smooth_noise(rng, s, 3))
    img[:] = (1 - a) * img + a * blurred  # thicker haze blurs more
    _paint(img, veil, HAZE)


def _clouds(img: np.ndarray, rng: np.random.Generator, cover: float, opacity: float) -> None:
    """Clouds over about `cover` of the tile, with their shadows, in place."""
    s = img.shape[0]
    noise = _smooth_noise(rng, s, 5)
    cut = np.quantile(noise, 1 - cover)
    mask = np.clip((noise - cut) / 0.06, 0, 1) * opacity
    shift = max(1, s // 25)
    shadow = np.roll(np.roll(mask, shift, axis=0), shift, axis=1)
    img *= 1.0 - 0.35 * shadow[..., None]
    _paint(img, mask, CLOUD)


def _jpeg(arr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def annotate(
    tags: Sequence[str], rng: np.random.Generator, miss: float = MISS_RATE, visibility: dict[str, float] | None = None
) -> list[str]:
    """The labels an annotator writes for a tile showing `tags`: each land tag other than primary is missed
    with probability `miss` (Planet's labels were crowd-sourced and noisy), and a faintly drawn tag (visibility
    v < 1, from `render`) is missed with a further FAINT_MISS * (1 - v); weather is always labelled."""
    vis = visibility or {}
    return [t for t in tags
            if t in WEATHER or t == "primary" or rng.random() >= miss + FAINT_MISS * (1.0 - vis.get(t, 1.0))]


def _make_tile(job: tuple[int, int, int, str]) -> tuple[str, str]:
    """Draw and write one tile; returns (image_name, tags)."""
    seed, index, size, path = job
    rng = np.random.default_rng([seed, index])
    tags = sample_tags(rng)
    vis: dict[str, float] = {}
    atomic_write_bytes(Path(path), _jpeg(render(tags, size, rng, vis)))
    labels = annotate(tags, rng, visibility=vis)
    return Path(path).stem, " ".join(sorted(labels))  # Kaggle's train_v2.csv lists tags alphabetically


def generate(
    out_dir: Path,
    n_train: int = 2000,
    n_test: int | None = None,
    seed: int = 0,
    size: int = 256,
    solution_path: Path | None = None,
    workers: int | None = None,
) -> dict[str, Path]:
    """Write a Planet-format data set to `out_dir`; returns the paths written (CSV files last, atomically)."""
    out_dir = Path(out_dir)
    if n_train < 1:
        raise KitError(f"--n must be at least 1 (got {n_train})")
    if size < 8:
        raise KitError(f"--size must be at least 8 pixels (got {size})")
    n_test = max(2, round(n_train * 0.375)) if n_test is None else n_test
    if n_test < 2:
        raise KitError(f"--n-test must be at least 2 (one image per test folder; got {n_test})")
    n_main = max(1, round(n_test * 2 / 3))  # Kaggle: 40,669 in test-jpg, 20,522 in test-jpg-additional
    jobs = [(seed, i, size, str(out_dir / "train-jpg" / f"train_{i}.jpg")) for i in range(n_train)]
    jobs += [(seed, n_train + i, size, str(out_dir / "test-jpg" / f"test_{i}.jpg")) for i in range(n_main)]
    jobs += [(seed, n_train + n_main + i, size, str(out_dir / "test-jpg-additional" / f"file_{i}.jpg"))
             for i in range(n_test - n_main)]
    for sub in ("train-jpg", "test-jpg", "test-jpg-additional"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) >= 200:
        with ProcessPoolExecutor(workers) as ex:
            rows = list(ex.map(_make_tile, jobs, chunksize=32))
    else:
        rows = [_make_tile(j) for j in jobs]
    train = pd.DataFrame(rows[:n_train], columns=["image_name", "tags"])
    test = pd.DataFrame(rows[n_train:], columns=["image_name", "tags"])
    paths = {"train": out_dir / "train_v2.csv", "sample": out_dir / "sample_submission_v2.csv"}
    if solution_path is not None:
        paths["solution"] = atomic_write_csv(Path(solution_path), test)
    atomic_write_csv(paths["sample"], test.assign(tags=SAMPLE_TAGS))
    atomic_write_csv(paths["train"], train)
    return paths


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m competitions.planet.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the Kaggle-layout files into")
    ap.add_argument("--n", type=int, default=2000, help="training images (default 2000)")
    ap.add_argument("--n-test", type=int, default=None, help="test images over both test folders (default 0.375 n)")
    ap.add_argument("--size", type=int, default=256, help="tile size in pixels (Kaggle: 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solution", type=Path, default=None, help="also write the true test tags to this CSV")
    ap.add_argument("--workers", type=int, default=None, help="drawing processes (default: up to 4)")
    a = ap.parse_args(argv)
    paths = generate(a.out, a.n, a.n_test, a.seed, a.size, a.solution, a.workers)
    print(f"wrote {a.n} train + {len(pd.read_csv(paths['sample']))} test tiles ({a.size} px) to {a.out}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    from kit.cli import run

    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

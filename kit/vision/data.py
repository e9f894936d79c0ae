"""`ImageData`: what an image competition's `load` returns — the frames and targets of `kit.spec.Data`, and where
each row's image comes from, decoded once per size and kept with the data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.spec import Data
from kit.vision.images import ImageArray


@dataclass
class ImageData(Data):
    """Data of an image competition.

    `sources`: per split ("train", "test") the image files (paths, decoded into a cache) or pixel arrays;
    `decoded`: (split, size) -> ImageArray, filled on first use; `train_rows`: the source row of each training
    row kept by `load` (bad images dropped; None: all); `bad_train` / `bad_test`: file name -> why unreadable.
    """

    sources: dict[str, list[str] | np.ndarray] = field(default_factory=dict)
    decoded: dict[tuple[str, int], ImageArray] = field(default_factory=dict)
    train_rows: np.ndarray | None = None
    bad_train: dict[str, str] = field(default_factory=dict)
    bad_test: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    bad_reported: bool = False  # --skip-bad-images said what it dropped (once per run, not per fold)

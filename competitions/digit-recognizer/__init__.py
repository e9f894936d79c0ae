"""Digit Recognizer: 28x28 grayscale handwritten digits, one label 0-9 each, scored by accuracy.

Kaggle's files: `train.csv` (`label,pixel0..pixel783`), `test.csv` (`pixel0..pixel783`), `sample_submission.csv`
(`ImageId,Label`, ImageId counting test rows from 1). Single-label: cross-entropy, argmax. No flips or turns
(a turned 6 is a 9, a mirrored 2 is no digit), but small rotations, zooms and shifts, as handwriting varies.
`python -m competitions.digit-recognizer.synthetic OUT` writes scikit-learn's real handwritten digits in this
layout, for offline use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kit.errors import DataError
from kit.io import read_csv, show
from kit.vision import Augment, ImageData, VisionCompetition, pixel_columns_to_images

SIDE = 28
PIXELS = [f"pixel{i}" for i in range(SIDE * SIDE)]
LABELS = list(range(10))

PRESETS: dict[str, dict[str, Any]] = {
    # small CNN at the native 28 px: 1,400 images x 5 folds in about a minute on 2 CPU cores; label smoothing 0.1
    # won its A/B (bench/results/vision-techniques.md: CV accuracy +0.0036 +- 0.0016, 5 folds; mixup tied, cutmix
    # and progressive resizing lost)
    "cpu": {"arch": "small_cnn", "size": 28, "epochs": 16, "lr": 4e-3, "bs": 64, "schedule": "one_cycle", "tta": 1,
            "label_smoothing": 0.1},
    # resnet18 at 64 px (pretrained when the weights can be had: fine_tune)
    "gpu": {"arch": "resnet18", "size": 64, "epochs": 12, "lr": 3e-3, "bs": 128, "schedule": "fine_tune", "tta": 1},
}


class DigitRecognizer(VisionCompetition):
    """A small CNN on the pixels, 5-fold stratified CV, argmax; submission ImageId,Label."""

    name = "digit-recognizer"
    slug = "digit-recognizer"
    title = "Digit Recognizer"
    task = "multiclass"
    metric = "accuracy"
    id_col = "ImageId"
    target_col = "Label"
    label_col: ClassVar[str] = "label"  # train.csv's own name for the label
    train_file = "train.csv"
    test_file = "test.csv"
    sample_file = "sample_submission.csv"
    n_folds = 5
    presets = PRESETS
    augmentation = Augment(rotate=10.0, scale=0.1, translate=0.08)  # no flips, no turns
    default_params: ClassVar[dict[str, Any]] = {**VisionCompetition.default_params, "aug": 0.0, "width": 32}

    def load(self, data_dir: Path) -> ImageData:
        """train.csv / test.csv pixels (integers 0..255, 784 per row), labels 0-9, the sample's ImageIds."""
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        paths = {"train": data_dir / self.train_file, "test": data_dir / self.test_file,
                 "sample": data_dir / self.sample_file}
        train = read_csv(paths["train"], required=[self.label_col, *PIXELS], hint=hint)
        test = read_csv(paths["test"], required=PIXELS, hint=hint)
        sample = read_csv(paths["sample"], required=[self.id_col, self.target_col], hint=hint)
        labels = train[self.label_col]
        bad = ~pd.to_numeric(labels, errors="coerce").isin(LABELS)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{paths['train']}: row {i + 2}, column {self.label_col}: {show(labels.iloc[i])} is not "
                            "a digit label 0-9")
        y, classes = self.task.encode(pd.to_numeric(labels).astype(np.int64), str(paths["train"]))
        x_train = pixel_columns_to_images(train, PIXELS, SIDE, str(paths["train"]))
        x_test = pixel_columns_to_images(test, PIXELS, SIDE, str(paths["test"]))
        ids = np.arange(1, len(test) + 1)
        if sample[self.id_col].tolist() != ids.tolist():
            raise DataError(f"{paths['sample']}: {self.id_col} must count the {len(test)} rows of "
                            f"{paths['test'].name} from 1 (got {len(sample)} rows)")
        return ImageData(
            train=pd.DataFrame({self.id_col: np.arange(1, len(train) + 1)}),  # training rows have no id: row number
            test=pd.DataFrame({self.id_col: ids}),
            sample=sample,
            y=y,
            files=paths,
            classes=classes,
            data_dir=Path(data_dir),
            sources={"train": x_train, "test": x_test},
        )

    def read_classes(self, data_dir: Path) -> list:
        """The labels of train.csv (only its label column is read)."""
        path = Path(data_dir) / self.train_file
        labels = read_csv(path, required=[self.label_col], usecols=[self.label_col])[self.label_col]
        return self.task.encode(labels, str(path))[1]


COMPETITION = DigitRecognizer()

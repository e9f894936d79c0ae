"""Facial Keypoints Detection: 15 keypoints (x, y in pixels) on 96x96 grayscale faces, scored by RMSE.

Kaggle's files: `training.csv` (30 `<keypoint>_x`/`_y` columns, then `Image`: 9216 space-separated 0-255 values;
most rows have only 4 of the 15 keypoints), `test.csv` (`ImageId,Image`), `IdLookupTable.csv`
(`RowId,ImageId,FeatureName,Location`: which coordinates to predict) and `SampleSubmission.csv` (`RowId,Location`).
Image regression as in fastbook's head-pose model: coordinates scaled to (-1, 1) with a sigmoid `y_range`, MSE
masked to the keypoints present (a missing keypoint adds no loss and is never imputed), predictions clipped to
the image and written in the long format the lookup table asks for. Augmentation: a left-right mirror that
swaps left and right keypoints, small rotations, zooms and shifts (the keypoints move with the image).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kit.errors import DataError
from kit.io import read_csv, show
from kit.tasks import Points
from kit.vision import Augment, ImageData, VisionCompetition, pixel_strings_to_images

from .layout import COLUMNS, FLIP_INDEX, SIDE

PRESETS: dict[str, dict[str, Any]] = {
    # small CNN at 64 px (points are in units of the image, so any size predicts 96 px coordinates)
    "cpu": {"arch": "small_cnn", "size": 64, "epochs": 20, "lr": 4e-3, "bs": 64, "schedule": "one_cycle", "tta": 2},
    # resnet34 at 192 px, fine_tune when pretrained weights can be had
    "gpu": {"arch": "resnet34", "size": 192, "epochs": 20, "lr": 2e-3, "bs": 64, "schedule": "fine_tune", "tta": 2},
}


@dataclass
class KeypointsData(ImageData):
    """The images and targets, and IdLookupTable.csv: which (image, feature) each submission row asks for."""

    lookup: pd.DataFrame | None = None


class FacialKeypoints(VisionCompetition):
    """A CNN regressing 30 coordinates with masked MSE; submission RowId,Location from IdLookupTable.csv."""

    name = "facial-keypoints"
    slug = "facial-keypoints-detection"
    title = "Facial Keypoints Detection"
    task = Points(extent=float(SIDE), flip_pairs=FLIP_INDEX)
    metric = "rmse"  # pixels, over the keypoints present
    id_col = "RowId"
    target_col = "Location"
    image_id_col: ClassVar[str] = "ImageId"
    image_col: ClassVar[str] = "Image"
    train_file = "training.csv"
    test_file = "test.csv"
    sample_file = "SampleSubmission.csv"
    lookup_file: ClassVar[str] = "IdLookupTable.csv"
    n_folds = 5
    presets = PRESETS
    augmentation = Augment(flip=True, rotate=10.0, scale=0.08, translate=0.05, lighting=0.1)
    default_params: ClassVar[dict[str, Any]] = {**VisionCompetition.default_params, "width": 32}

    def load(self, data_dir: Path) -> KeypointsData:
        """training.csv (keypoints in the image, Image fields of 96x96 values), test.csv and the lookup table."""
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        paths = {"train": data_dir / self.train_file, "test": data_dir / self.test_file,
                 "lookup": data_dir / self.lookup_file, "sample": data_dir / self.sample_file}
        train = read_csv(paths["train"], required=[*COLUMNS, self.image_col], numeric=COLUMNS, hint=hint)
        test = read_csv(paths["test"], required=[self.image_id_col, self.image_col], hint=hint)
        lookup = read_csv(paths["lookup"], required=[self.id_col, self.image_id_col, "FeatureName"], hint=hint)
        sample = read_csv(paths["sample"], required=[self.id_col, self.target_col], hint=hint)
        y = train[COLUMNS].to_numpy(dtype=np.float64)
        outside = ~np.isnan(y) & ((y < 0) | (y > SIDE))
        if outside.any():
            i, j = divmod(int(outside.argmax()), y.shape[1])
            raise DataError(f"{paths['train']}: row {i + 2}, column {COLUMNS[j]}: {show(y[i, j])} is outside the "
                            f"{SIDE}x{SIDE} image")
        x_train = pixel_strings_to_images(train[self.image_col], SIDE, str(paths["train"]))
        x_test = pixel_strings_to_images(test[self.image_col], SIDE, str(paths["test"]))
        image_ids = test[self.image_id_col]
        if image_ids.duplicated().any():
            i = int(image_ids.duplicated().to_numpy().argmax())
            raise DataError(f"{paths['test']}: row {i + 2}, column {self.image_id_col}: duplicate image "
                            f"{show(image_ids.iloc[i])}")
        self._check_lookup(lookup, sample, set(image_ids.tolist()), paths)
        return KeypointsData(
            train=pd.DataFrame({self.image_id_col: np.arange(1, len(train) + 1)}),  # training rows: row number
            test=pd.DataFrame({self.image_id_col: image_ids.to_numpy()}),
            sample=sample,
            y=y,
            files=paths,
            data_dir=Path(data_dir),
            sources={"train": x_train, "test": x_test},
            lookup=lookup,
            output_names=list(COLUMNS),
        )

    def _check_lookup(self, lookup: pd.DataFrame, sample: pd.DataFrame, images: set, paths: dict[str, Path]) -> None:
        bad = ~lookup["FeatureName"].isin(COLUMNS)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataError(f"{paths['lookup']}: row {i + 2}, column FeatureName: unknown feature "
                            f"{show(lookup['FeatureName'].iloc[i])}")
        unknown = ~lookup[self.image_id_col].isin(images)
        if unknown.any():
            i = int(unknown.to_numpy().argmax())
            raise DataError(f"{paths['lookup']}: row {i + 2}, column {self.image_id_col}: image "
                            f"{show(lookup[self.image_id_col].iloc[i])} is not in {paths['test'].name}")
        asked = set(lookup[self.image_id_col].tolist())
        if len(asked) != len(images):
            raise DataError(f"{paths['test'].name} has {len(images)} images but {paths['lookup'].name} asks about "
                            f"{len(asked)}")
        if lookup[self.id_col].tolist() != sample[self.id_col].tolist():
            raise DataError(f"{paths['sample']}: {self.id_col}s differ from {paths['lookup'].name}'s")

    def submission(self, data: KeypointsData, decoded: np.ndarray) -> pd.DataFrame:
        """One row per lookup row: the predicted coordinate of that image's feature, clipped to the image."""
        lookup = data.lookup
        row = pd.Series(np.arange(len(data.test)), index=data.test[self.image_id_col].to_numpy())
        i = row.loc[lookup[self.image_id_col].to_numpy()].to_numpy()
        j = lookup["FeatureName"].map({c: k for k, c in enumerate(COLUMNS)}).to_numpy()
        loc = np.clip(np.asarray(decoded, dtype=np.float64)[i, j], 0.0, float(SIDE))
        return pd.DataFrame({self.id_col: lookup[self.id_col].to_numpy(), self.target_col: loc})


COMPETITION = FacialKeypoints()

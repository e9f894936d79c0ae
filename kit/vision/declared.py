"""Image competitions declared without a `load`: the three layouts Kaggle's image competitions come in.

- `ImageCsvCompetition`: a labels CSV (`train_file`: id, label or space-separated tags) naming the images of a
  folder (`train_images`), the test images named by the sample submission's ids in `test_images` (Dog Breed,
  Planet);
- `ClassFolderCompetition`: one sub-folder of `train_images` per class (ImageNet / fastbook style), the test
  images named by the sample's ids;
- `PixelCsvCompetition`: one grayscale pixel per column (`pixel_prefix` 0 .. side*side-1) in the train and test
  CSVs, the label in `label_col` (Digit Recognizer).

Each declares `presets` (cpu / gpu) and `augmentation`; `kit init` writes them. Missing or unreadable images are
listed and stop training unless `--skip-bad-images`, as `VisionCompetition` does.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kit.errors import DataError
from kit.io import read_csv, show
from kit.vision.competition import VisionCompetition
from kit.vision.data import ImageData
from kit.vision.images import ImageArray, describe_bad, pixel_columns_to_images

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
PRESETS: dict[str, dict[str, Any]] = {
    # a small CNN at 64 px: a few thousand images x 5 folds in minutes on 2 CPU cores
    "cpu": {"arch": "small_cnn", "size": 64, "epochs": 10, "lr": 4e-3, "bs": 64, "schedule": "one_cycle", "tta": 2},
    # resnet34 at 224 px, fastai's fine_tune (pretrained when the weights can be had)
    "gpu": {"arch": "resnet34", "size": 224, "epochs": 8, "lr": 3e-3, "bs": 64, "schedule": "fine_tune", "tta": 2},
}


def _unique(df: pd.DataFrame, col: str, path: Path) -> None:
    dup = df[col].duplicated()
    if dup.any():
        i = int(dup.to_numpy().argmax())
        raise DataError(f"{path}: row {i + 2}, column {col}: id {show(df[col].iloc[i])} repeated")


class _ImageFiles(VisionCompetition):
    """Images in files: the test rows are the sample's ids, found in `test_images` (one folder or several)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    train_images: ClassVar[str] = "train"
    test_images: ClassVar[str | list[str]] = "test"
    image_ext: ClassVar[str] = ".jpg"  # appended to an id to name its file ("" when the ids carry it)
    # True: the sample lists the whole test folder (Kaggle's usual layout), so an image there that it does not
    # name means the files do not belong together, and is refused
    test_folder_is_sample: ClassVar[bool] = False

    def _folder(self, data_dir: Path, name: str, hint: str) -> Path:
        d = data_dir / name
        if not d.is_dir():
            raise DataError(f"{d}: folder not found; {hint}")
        return d

    def _sample(self, data_dir: Path, hint: str) -> tuple[pd.DataFrame, Path]:
        path = data_dir / self.sample_file
        sample = read_csv(path, required=[self.id_col], hint=hint, dtype={self.id_col: str})
        _unique(sample, self.id_col, path)
        return sample, path

    def _test_paths(self, data_dir: Path, ids: list[str], hint: str) -> list[str]:
        dirs = [self.test_images] if isinstance(self.test_images, str) else list(self.test_images)
        folders = [self._folder(data_dir, d, hint) for d in dirs]
        out = []
        for i in ids:
            name = f"{i}{self.image_ext}"
            hit = next((f / name for f in folders if (f / name).is_file()), folders[0] / name)
            out.append(str(hit))
        if self.test_folder_is_sample:
            named = {f"{i}{self.image_ext}" for i in ids}
            extra = sorted(p for f in folders for p in f.iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in named)
            if extra:
                raise DataError(f"{extra[0]}: test image not in {self.sample_file}"
                                f"{f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''}: the sample's "
                                f"{self.id_col} column lists the test set")
        return out

    def _check_present(self, paths: list[str], where: Path, what: str) -> None:
        """Before decoding anything: a listed image file that is not there is one line, unless skip_bad_images."""
        if self.skip_bad is not False:
            return
        missing = [i for i, p in enumerate(paths) if not Path(p).is_file()]
        if missing:
            i = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DataError(f"{where}: row {i + 2}, column {self.id_col}: image {paths[i]} not found{more}; add it, "
                            f"or pass --skip-bad-images to {what}")

    def _decode(self, train: pd.DataFrame, test: pd.DataFrame, sample: pd.DataFrame, y: np.ndarray,
                classes: list | None, files: dict[str, Path], data_dir: Path) -> ImageData:
        """Decode every image once (cached); bad training rows are left out and listed, bad test rows listed."""
        sources = {"train": train["path"].tolist(), "test": test["path"].tolist()}
        if not self.inference_only:
            self._check_present(sources["train"], files["train"], "leave such rows out of training")
        self._check_present(sources["test"], files["sample"], "fill such rows from the fold-ensemble prior")
        size, bars = self.decode_size(), sys.stderr.isatty()
        probe = ImageData(train=train, test=test, sample=sample, y=y, files={}, sources=sources)
        imgs_train = (ImageArray(np.zeros((0, size, size, 3), np.uint8)) if self.inference_only
                      else self.images(probe, "train", size, bars, self.load_workers))
        imgs_test = self.images(probe, "test", size, bars, self.load_workers)
        names = [Path(p).name for p in sources["train"]]
        bad_train = {names[i]: why for i, why in imgs_train.bad.items()}
        bad_test = {Path(test["path"].iloc[i]).name: why for i, why in imgs_test.bad.items()}
        keep = np.ones(len(train), dtype=bool)
        keep[list(imgs_train.bad)] = False
        if not keep.all():
            log.warning("%d of %d training images are missing or unreadable and are left out: %s",
                        (~keep).sum(), len(keep), describe_bad(names, imgs_train.bad, 5))
        rows = np.flatnonzero(keep)
        return ImageData(train=train.iloc[rows].reset_index(drop=True), test=test, sample=sample, y=y[rows],
                         files=files, classes=classes, data_dir=Path(data_dir), bad_train=bad_train,
                         bad_test=bad_test, sources=sources, train_rows=rows, decoded=probe.decoded)


class ImageCsvCompetition(_ImageFiles):
    """A labels CSV (`train_file`: `id_col`, `target_col`) naming images in `train_images`."""

    def _labels(self, data_dir: Path, hint: str) -> tuple[pd.DataFrame, Path]:
        path = data_dir / self.train_file
        opts: dict[str, Any] = {"dtype": str}
        if self.task.multi_label:
            opts["keep_default_na"] = False  # an empty tag string is a row with no tags
        train = read_csv(path, required=[self.id_col, self.target_col], hint=hint, **opts)
        _unique(train, self.id_col, path)
        return train, path

    def load(self, data_dir: Path) -> ImageData:
        """The labels CSV, the sample's ids, every image decoded once."""
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        train, train_csv = self._labels(data_dir, hint)
        sample, sample_csv = self._sample(data_dir, hint)
        self._check_sample_columns(train, train_csv, sample, sample_csv)
        y, classes = self.task.encode(train[self.target_col], str(train_csv))
        folder = self._folder(data_dir, self.train_images, hint)
        train = train[[self.id_col]].assign(path=[str(folder / f"{i}{self.image_ext}") for i in train[self.id_col]])
        test = sample[[self.id_col]].copy()
        test["path"] = self._test_paths(data_dir, test[self.id_col].tolist(), hint)
        return self._decode(train, test, sample, y, classes, {"train": train_csv, "sample": sample_csv}, data_dir)

    def _check_sample_columns(self, train: pd.DataFrame, path: Path, sample: pd.DataFrame, sample_csv: Path) -> None:
        """A wide sample (one column per class): a label that has no column there is named by its row."""
        cols = [c for c in sample.columns if c != self.id_col]
        if len(cols) < 2 or self.target_col in cols:
            return
        known, seen = set(cols), set()
        for i, v in enumerate(train[self.target_col].tolist()):
            for label in (str(v).split() if self.task.multi_label else [v]):
                if isinstance(label, str) and label not in known:
                    raise DataError(f"{path}: row {i + 2}, column {self.target_col}: {self.target_col} {label!r} is "
                                    f"not a column of {sample_csv.name}")
                seen.add(label)
        unseen = [c for c in cols if c not in seen]
        if unseen:  # said now, not after training, when the submission could not be written
            raise DataError(f"{sample_csv}: column {unseen[0]!r} is no {self.target_col} of {path.name}"
                            f"{f' (and {len(unseen) - 1} more)' if len(unseen) > 1 else ''}: nothing to learn it from")

    def read_classes(self, data_dir: Path) -> list | None:
        """The labels CSV's classes (no image is read)."""
        train, path = self._labels(Path(data_dir), self.data_hint(Path(data_dir)))
        return self.task.encode(train[self.target_col], str(path))[1]


class ClassFolderCompetition(_ImageFiles):
    """`train_images/<class>/<image>`: the sub-folder names are the classes."""

    def _rows(self, data_dir: Path, hint: str) -> tuple[pd.DataFrame, Path]:
        folder = self._folder(data_dir, self.train_images, hint)
        rows = [(f"{d.name}/{p.name}", d.name) for d in sorted(p for p in folder.iterdir() if p.is_dir())
                for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not rows:
            raise DataError(f"{folder}: no images in class sub-folders ({', '.join(IMAGE_SUFFIXES)})")
        return pd.DataFrame(rows, columns=["image", self.target_col]), folder

    def load(self, data_dir: Path) -> ImageData:
        """The class folders' images, the sample's ids, every image decoded once."""
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        rows, folder = self._rows(data_dir, hint)
        sample, sample_csv = self._sample(data_dir, hint)
        y, classes = self.task.encode(rows[self.target_col], str(folder))
        train = pd.DataFrame({self.id_col: rows["image"], "path": [str(folder / r) for r in rows["image"]]})
        test = sample[[self.id_col]].copy()
        test["path"] = self._test_paths(data_dir, test[self.id_col].tolist(), hint)
        return self._decode(train, test, sample, y, classes, {"train": folder, "sample": sample_csv}, data_dir)

    def read_classes(self, data_dir: Path) -> list | None:
        """The class folders' names (no image is read)."""
        rows, folder = self._rows(Path(data_dir), self.data_hint(Path(data_dir)))
        return self.task.encode(rows[self.target_col], str(folder))[1]


class PixelCsvCompetition(VisionCompetition):
    """Grayscale pixels one per column (`pixel_prefix`0 .. side*side-1) in train and test; label in `label_col`.

    The test rows are the sample's, in order: by the id when test has the id column, else by position."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {"arch": "small_cnn", "size": 28, "epochs": 16, "lr": 4e-3, "bs": 64, "schedule": "one_cycle",
                "tta": 1},
        "gpu": {"arch": "resnet18", "size": 64, "epochs": 12, "lr": 3e-3, "bs": 128, "schedule": "fine_tune",
                "tta": 1},
    }
    # grayscale glyphs: no lighting jitter, a wider small CNN (digit-recognizer's own choices)
    default_params: ClassVar[dict[str, Any]] = {**VisionCompetition.default_params, "aug": 0.0, "width": 32}
    label_col: ClassVar[str] = "label"
    pixel_prefix: ClassVar[str] = "pixel"
    side: ClassVar[int] = 28

    @property
    def pixels(self) -> list[str]:
        """The pixel columns' names."""
        return [f"{self.pixel_prefix}{i}" for i in range(self.side * self.side)]

    def load(self, data_dir: Path) -> ImageData:
        """Both CSVs' pixels as images, the labels, the sample's ids."""
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        paths = {"train": data_dir / self.train_file, "test": data_dir / self.test_file,
                 "sample": data_dir / self.sample_file}
        train = read_csv(paths["train"], required=[self.label_col, *self.pixels], hint=hint)
        test = read_csv(paths["test"], required=self.pixels, hint=hint)
        sample = read_csv(paths["sample"], required=[self.id_col], hint=hint)
        y, classes = self.task.encode(train[self.label_col], str(paths["train"]))
        if self.id_col in test.columns:
            ids = test[self.id_col].to_numpy()
            missing = ~sample[self.id_col].astype(str).isin(set(test[self.id_col].astype(str)))
            if missing.any():
                i = int(missing.to_numpy().argmax())
                raise DataError(f"{paths['sample']}: row {i + 2}, column {self.id_col}: id "
                                f"{show(sample[self.id_col].iloc[i])} is not in {paths['test'].name}")
        else:
            if len(sample) != len(test):
                raise DataError(f"{paths['sample']}: {len(sample)} rows, {paths['test'].name} {len(test)}: without "
                                f"an {self.id_col} column in test, its rows are the sample's in order")
            ids = sample[self.id_col].to_numpy()
        x_train = pixel_columns_to_images(train, self.pixels, self.side, str(paths["train"]))
        x_test = pixel_columns_to_images(test, self.pixels, self.side, str(paths["test"]))
        return ImageData(train=pd.DataFrame({self.id_col: np.arange(1, len(train) + 1)}),
                         test=pd.DataFrame({self.id_col: ids}), sample=sample, y=y, files=paths, classes=classes,
                         data_dir=Path(data_dir), sources={"train": x_train, "test": x_test})

    def read_classes(self, data_dir: Path) -> list | None:
        """The label column's classes (no pixel is read)."""
        path = Path(data_dir) / self.train_file
        labels = read_csv(path, required=[self.label_col], usecols=[self.label_col])[self.label_col]
        return self.task.encode(labels, str(path))[1]

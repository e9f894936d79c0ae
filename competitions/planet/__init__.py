"""Planet: Understanding the Amazon from Space — multi-label tagging of satellite tiles, scored by mean F2.

Kaggle's files in the data folder: `train_v2.csv` (image_name,tags), `train-jpg/`, `test-jpg/`,
`test-jpg-additional/`, `sample_submission_v2.csv`. Every image is decoded and resized once into a cached
uint8 array (kit.vision); folds are multilabel-stratified; decoding is per-class thresholds chosen on OOF F2,
plus the weather rules of `competitions.planet.decoding` where they raise OOF F2.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from competitions.planet.decoding import TAGS, WeatherRules
from kit import learner, vision
from kit.decoders import Decoder
from kit.errors import DataError, KitError
from kit.io import read_csv
from kit.spec import Competition, Data, FoldOutput

log = logging.getLogger(__name__)

# Values a preset fills in when the parameter is left at its "unset" default (0, 0.0, "" or -1).
PRESETS: dict[str, dict[str, Any]] = {
    # small CNN at 64 px: 4,000 images, 5-fold CV + test prediction in a few minutes on 2 CPU cores
    "cpu": {"arch": "small_cnn", "size": 64, "epochs": 10, "lr": 4e-3, "bs": 64, "schedule": "one_cycle", "tta": 2},
    # resnet50 at 256 px with fastai's fine_tune schedule (1 frozen epoch, then discriminative lr)
    "gpu": {"arch": "resnet50", "size": 256, "epochs": 10, "lr": 3e-3, "bs": 64, "schedule": "fine_tune", "tta": 4},
}
UNSET: dict[str, Any] = {"arch": "", "size": 0, "epochs": 0, "lr": 0.0, "bs": 0, "schedule": "", "tta": -1}
SCHEDULES = ("one_cycle", "fine_tune")


def auto_preset() -> str:
    """'gpu' when CUDA is available, else 'cpu'."""
    return "gpu" if learner.default_device().type == "cuda" else "cpu"


class Planet(Competition):
    """17 tags per 256 px tile; fastai CNN, per-class thresholds and weather rules chosen on OOF F2."""

    name = "planet"
    slug = "planet-understanding-the-amazon-from-space"
    title = "Planet: Understanding the Amazon from Space"
    task = "multilabel"
    id_col = "image_name"
    target_col = "tags"
    train_file = "train_v2.csv"
    test_file = "sample_submission_v2.csv"
    sample_file = "sample_submission_v2.csv"
    metric = "f2_samples"
    n_folds = 5
    default_params: ClassVar[dict[str, Any]] = {
        "preset": "auto",  # auto | cpu | gpu: fills every unset value below
        **UNSET,
        "width": 24,  # small_cnn base width
        "dropout": 0.1,
        "wd": 0.01,
        "aug": 0.1,  # lighting strength (0: none)
        "dihedral": True,  # random flips / 90° rotations while training
        "pretrained": True,  # use pretrained backbone weights when they can be had
        "freeze_epochs": 1,  # fine_tune only
        "skip_bad_images": False,
        "workers": 0,  # image decoding processes (0: up to 8)
    }
    cache_dir: Path | None = Path("runs") / "planet" / "cache"  # decoded images, keyed by files + size

    def __init__(self) -> None:
        self._extra_tags: set[str] = set()

    # ---- parameters ---------------------------------------------------------------------------------
    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Params with the preset's values filled in where a value is unset; preset 'auto' picks by device."""
        p = {**self.default_params, **params}
        preset = p["preset"] if p["preset"] != "auto" else auto_preset()
        if preset not in PRESETS:
            raise KitError(f"planet: preset must be auto, cpu or gpu (got {p['preset']!r})")
        p["preset"] = preset
        for k, unset in UNSET.items():
            if p[k] == unset or p[k] is None:
                p[k] = PRESETS[preset][k]
        return p

    def params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults + overrides with the preset resolved (so run records show the values actually used)."""
        p = self.resolve({**self.default_params, **(overrides or {})})
        self.check_params(p)
        return p

    def check_params(self, params: dict[str, Any]) -> None:
        """Reject unknown names and unusable values."""
        super().check_params(params)
        p = self.resolve(params)
        for key in ("size", "epochs", "bs", "width"):
            if int(p[key]) < 1:
                raise KitError(f"planet: {key} must be >= 1 (got {p[key]})")
        if int(p["size"]) < 16:
            raise KitError(f"planet: size must be >= 16 pixels (got {p['size']})")
        if float(p["lr"]) <= 0 or float(p["wd"]) < 0:
            raise KitError(f"planet: lr must be > 0 and wd >= 0 (got lr={p['lr']}, wd={p['wd']})")
        if not 0 <= float(p["dropout"]) < 1 or not 0 <= float(p["aug"]) <= 1:
            raise KitError(f"planet: dropout must be in [0, 1) and aug in [0, 1] (got {p['dropout']}, {p['aug']})")
        if p["schedule"] not in SCHEDULES:
            raise KitError(f"planet: schedule must be one of {', '.join(SCHEDULES)} (got {p['schedule']!r})")
        if not 0 <= int(p["tta"]) <= 8:
            raise KitError(f"planet: tta must be 0..8 dihedral views (got {p['tta']})")
        if p["arch"] != "small_cnn":
            vision.torchvision_arch(p["arch"])

    def search_space(self, trial) -> dict[str, Any]:
        """lr, epochs, image size, architecture (small CNN width / backbone), augmentation strength, weight decay."""
        preset = auto_preset()
        space: dict[str, Any] = {
            "preset": preset,
            "lr": trial.suggest_float("lr", 5e-4, 1e-2, log=True),
            "aug": trial.suggest_float("aug", 0.0, 0.3),
            "dihedral": trial.suggest_categorical("dihedral", [True, False]),
            "wd": trial.suggest_float("wd", 1e-4, 0.1, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
        if preset == "cpu":
            space["arch"] = "small_cnn"
            space["epochs"] = trial.suggest_int("epochs", 6, 20, step=2)
            space["size"] = trial.suggest_categorical("size", [48, 64, 96])
            space["width"] = trial.suggest_categorical("width", [16, 24, 32, 48])
        else:
            space["arch"] = trial.suggest_categorical("arch", ["resnet18", "resnet34", "resnet50"])
            space["epochs"] = trial.suggest_int("epochs", 4, 14, step=2)
            space["size"] = trial.suggest_categorical("size", [128, 192, 256])
        return space

    # ---- data ---------------------------------------------------------------------------------------
    def load(self, data_dir: Path) -> Data:
        """Read the CSVs, locate every image (test images in either test folder) and decode all of them once.

        Images that are missing or cannot be decoded are listed in `data.extra['bad_train'|'bad_test']`;
        bad training rows are left out of `data` here, and `fit_fold` stops unless `skip_bad_images` is set.
        """
        data_dir = Path(data_dir)
        hint = self.data_hint(data_dir)
        train_csv, sample_csv = data_dir / self.train_file, data_dir / self.sample_file
        opts = {"keep_default_na": False, "dtype": str}  # an empty tag string is a legal "no tags" row
        train = read_csv(train_csv, required=[self.id_col, self.target_col], hint=hint, **opts)
        sample = read_csv(sample_csv, required=[self.id_col, self.target_col], hint=hint, **opts)
        for df, path in ((train, train_csv), (sample, sample_csv)):
            dup = df[self.id_col].duplicated()
            if dup.any():
                i = int(dup.to_numpy().argmax())
                raise DataError(f"{path}: row {i + 2}, column {self.id_col}: "
                                f"duplicate image {df[self.id_col].iloc[i]!r}")
        y, classes = self.task.encode(train[self.target_col], str(train_csv))
        unknown = sorted(set(classes) - set(TAGS))
        if unknown:
            log.warning("%s: tag(s) not in Planet's 17: %s (kept as classes)", train_csv, ", ".join(unknown))
        self._extra_tags = set(unknown)

        train_dir = data_dir / "train-jpg"
        if not train_dir.is_dir():
            raise DataError(f"{train_dir}: folder not found; {hint}")
        test_dirs = [data_dir / "test-jpg", data_dir / "test-jpg-additional"]
        if not any(d.is_dir() for d in test_dirs):
            raise DataError(f"{test_dirs[0]} and {test_dirs[1]}: folders not found; {hint}")
        found: dict[str, Path] = {}
        for d in reversed(test_dirs):  # test-jpg wins if a name were in both
            if d.is_dir():
                found.update({p.stem: p for p in d.glob("*.jpg")})
        train["path"] = [str(train_dir / f"{n}.jpg") for n in train[self.id_col]]
        test = sample[[self.id_col]].copy()
        test["path"] = [str(found.get(n, test_dirs[0] / f"{n}.jpg")) for n in test[self.id_col]]

        size = int(PRESETS[auto_preset()]["size"])
        bars = sys.stderr.isatty()
        imgs_train = self._decode(train["path"].tolist(), size, "train", bars)
        imgs_test = self._decode(test["path"].tolist(), size, "test", bars)
        names = train[self.id_col].tolist()
        bad_train = {names[i] + ".jpg": why for i, why in imgs_train.bad.items()}
        bad_test = {Path(test["path"].iloc[i]).name: why for i, why in imgs_test.bad.items()}
        keep = np.ones(len(train), dtype=bool)
        keep[list(imgs_train.bad)] = False
        if not keep.all():
            log.warning("%d of %d training images are missing or unreadable and are left out: %s",
                        (~keep).sum(), len(keep), vision.describe_bad(names, imgs_train.bad, 5))
        kept_rows = np.flatnonzero(keep)
        train_paths = train["path"].tolist()
        train = train.iloc[kept_rows].reset_index(drop=True)
        y = y[kept_rows]
        return Data(
            train=train,
            test=test,
            sample=sample,
            y=y,
            files={"train": train_csv, "sample": sample_csv},
            classes=classes,
            extra={
                "data_dir": str(data_dir),
                "bad_train": bad_train,
                "bad_test": bad_test,
                "train_paths": train_paths,  # every row of train_v2.csv
                "train_rows": kept_rows,  # the rows of train_v2.csv kept in `train`
                "images": {("train", size): imgs_train, ("test", size): imgs_test},
            },
        )

    def _decode(self, paths: list[str], size: int, name: str, progress: bool, workers: int = 0) -> vision.ImageArray:
        return vision.load_images(paths, size, cache_dir=self.cache_dir, workers=workers or None,
                                  progress=progress, name=name)

    def images(
        self, data: Data, which: str, size: int, progress: bool = False, workers: int = 0
    ) -> vision.ImageArray:
        """All train_v2.csv (or sample) images as a (n, size, size, 3) uint8 array, decoded once per size.

        Train rows of `data` map to rows of this array through `data.extra['train_rows']`.
        """
        cache = data.extra.setdefault("images", {})
        if (which, size) not in cache:
            paths = data.extra["train_paths"] if which == "train" else data.test["path"].tolist()
            cache[(which, size)] = self._decode(paths, size, which, progress, workers)
        arr = cache[(which, size)]
        if which == "train":
            new_bad = sorted(set(arr.bad) & set(data.extra["train_rows"].tolist()))
            if new_bad:  # decoded in `load` but not now: a file changed on disk mid-run
                names = [Path(p).name for p in data.extra["train_paths"]]
                raise DataError(f"training images became unreadable: "
                                f"{vision.describe_bad(names, {i: arr.bad[i] for i in new_bad})}")
        return arr

    def check_bad_images(self, data: Data, params: dict[str, Any]) -> None:
        """Stop before training when images are bad, unless `skip_bad_images`; then say what happens to them."""
        bad = {**data.extra.get("bad_train", {}), **data.extra.get("bad_test", {})}
        if not bad:
            return
        listing = ", ".join(f"{n} ({why})" for n, why in sorted(bad.items()))
        if not params.get("skip_bad_images"):
            raise DataError(
                f"{len(bad)} missing or unreadable image(s) in {data.extra.get('data_dir', 'the data folder')}: "
                f"{listing}; fix them, or pass --skip-bad-images to drop bad training images and fill bad test "
                "rows from the fold-ensemble prior"
            )
        if not data.extra.get("_bad_reported"):
            data.extra["_bad_reported"] = True
            n_tr, n_te = len(data.extra.get("bad_train", {})), len(data.extra.get("bad_test", {}))
            log.warning("--skip-bad-images: %d training image(s) dropped, %d test row(s) filled from the "
                        "fold-ensemble prior: %s", n_tr, n_te, listing)

    # ---- model --------------------------------------------------------------------------------------
    def fit_fold(
        self,
        data: Data,
        train_idx: np.ndarray,
        valid_idx: np.ndarray,
        params: dict[str, Any],
        seed: int,
        callbacks: list | None = None,
        progress: bool = True,
    ) -> FoldOutput:
        """Train one fold's CNN on cached images; valid and test probabilities (dihedral TTA when `tta` > 1)."""
        from fastai.metrics import accuracy_multi

        p = self.resolve(params)
        self.check_bad_images(data, p)
        size, bs = int(p["size"]), int(p["bs"])
        x_train = self.images(data, "train", size, progress, int(p["workers"])).x
        imgs_test = self.images(data, "test", size, progress, int(p["workers"]))
        x_test, rows = imgs_test.x, data.extra["train_rows"]
        device = learner.default_device()
        learner.seed_everything(seed)
        pretrained = bool(p["pretrained"]) and p["arch"] != "small_cnn" and vision.pretrained_available(p["arch"])
        stats = vision.dataset_stats_or_imagenet(pretrained, x_train, rows[train_idx])
        dls = vision.array_dataloaders(x_train, data.y.astype(np.float32), train_idx, valid_idx, stats, bs, device,
                                       lighting=float(p["aug"]), dihedral_aug=bool(p["dihedral"]), x_rows=rows)
        learn = vision.vision_learner_for(
            dls, p["arch"], len(data.classes), pretrained, self.task.loss(),
            [learner.competition_metric(self), accuracy_multi],
            wd=float(p["wd"]), dropout=float(p["dropout"]), width=int(p["width"]),
        )
        if p["schedule"] == "fine_tune" and not pretrained:
            # fine_tune = frozen head-only epochs + discriminative lrs (early layers at lr/100): right for pretrained
            # weights, wrong for a random body, which needs every layer trained at the full rate
            log.warning("no pretrained weights for %s: training with fit_one_cycle instead of fine_tune", p["arch"])
        if p["schedule"] == "fine_tune" and pretrained:
            quiet = learn.no_bar() if not progress else contextlib.nullcontext()
            with quiet, learn.no_logging():
                learn.fine_tune(int(p["epochs"]), base_lr=float(p["lr"]), freeze_epochs=int(p["freeze_epochs"]),
                                wd=float(p["wd"]), cbs=callbacks)
        else:
            learner.fit(learn, p, cbs=callbacks, progress=progress)
        hist = learner.history(learn)  # before predicting: get_preds resets the Recorder
        valid = self._predict(learn, x_train, rows[valid_idx], stats, bs, device, int(p["tta"]))
        test = self._predict(learn, x_test, np.arange(len(x_test)), stats, bs, device, int(p["tta"]))
        bad_test = sorted(imgs_test.bad)
        if bad_test:
            test[bad_test] = valid.mean(axis=0)  # this fold's prior; the fold mean is the ensemble's prior
        return FoldOutput(valid=valid, test=test, history=hist)

    def _predict(self, learn, x: np.ndarray, rows: np.ndarray, stats, bs: int, device, tta: int) -> np.ndarray:
        views = vision.tta_elements(tta)
        out = sum(learner.predict(learn, vision.array_test_dl(x, rows, stats, bs * 2, device, k), self.task)
                  for k in views)
        return out / len(views)

    # ---- decoding and submission ---------------------------------------------------------------------
    def decoder(self) -> Decoder:
        """Per-class thresholds (kit.thresholds), then the weather rules kept only where they raise OOF F2."""
        return WeatherRules()

    def allowed_labels(self, classes) -> list[str]:
        """Planet's 17 tags and any other tag seen in the loaded train_v2.csv."""
        return sorted(set(TAGS) | set(classes or []) | self._extra_tags)

    def read_classes(self, data_dir: Path) -> list[str]:
        """The tags of train_v2.csv (no image is read)."""
        path = Path(data_dir) / self.train_file
        train = read_csv(path, required=[self.target_col], keep_default_na=False, dtype=str)
        return sorted(set().union(*(str(t).split() for t in train[self.target_col])))


COMPETITION = Planet()

"""`VisionCompetition`: the base of image competitions. A competition declares where its images are (its `load`
returns an `ImageData` whose `sources` are file paths, decoded once into a cache, or pixel arrays read from CSV),
its task and metric, the augmentations that preserve its labels, and `cpu`/`gpu` presets; kit does the rest:
normalisation from the training fold, augmentation on the device, the fastai learner with the task's loss
(and `y_range` for points), fit_one_cycle or fine_tune, TTA, probabilities back in target units.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kit import devices
from kit.errors import DataError, KitError
from kit.spec import Competition, FoldOutput
from kit.vision.augment import Augment
from kit.vision.data import ImageData
from kit.vision.images import ImageArray, channel_stats, describe_bad, load_images, resize_images
from kit.vision.params import UNSET, Preset, VisionParams, progressive_sizes
from kit.vision.weights import backbone_stats, find_weights, resolve_arch

log = logging.getLogger(__name__)

def auto_preset() -> str:
    """'gpu' when CUDA is available, else 'cpu' (without importing torch where no GPU driver is installed)."""
    return "gpu" if devices.cuda_available() else "cpu"


class VisionCompetition(Competition):
    """An image competition: declare `presets`, `augmentation` and `load`; fit_fold and prediction are kit's."""

    # "cpu" / "gpu": declared as dicts (kit.vision.params.Preset's keys), read as Presets when the class is made
    presets: ClassVar[dict[str, Preset]] = {}
    augmentation: ClassVar[Augment] = Augment()
    default_params: ClassVar[dict[str, Any]] = VisionParams.defaults()  # every key: kit.vision.params
    # decoded image caches of file-based competitions, keyed by files + size; None: decoded in memory only.
    # Runs set it on a copy (`with_cache_dir`): `kit train/tune --runs R` -> R/<name>/cache.
    cache_dir: Path | None = None

    load_size: int | None = None  # the size `load` decodes images at (None: the preset's); see for_params
    inference_only: bool = False  # `load` decodes no training images (for_inference)
    load_workers: int = 0
    # the run's skip_bad_images (for_params); False: `load` refuses a missing image file before decoding anything
    skip_bad: bool | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "presets" in cls.__dict__:
            where = f"competition {cls.__dict__.get('name', cls.__name__)!r}: preset"
            cls.presets = {k: Preset.of(v, f"{where} {k!r}") for k, v in cls.__dict__["presets"].items()}

    def with_cache_dir(self, cache_dir: str | Path | None) -> VisionCompetition:
        """A copy of this competition whose decoded images are cached in `cache_dir` (this object is unchanged)."""
        other = copy.copy(self)
        other.cache_dir = None if cache_dir is None else Path(cache_dir)
        return other

    def for_params(self, params: dict[str, Any]) -> VisionCompetition:
        """A copy whose `load` decodes at the run's image size with its workers, so a `--set size=...` run
        decodes every image once, not once at the preset's size and again at its own."""
        p = self.resolved(params)
        other = copy.copy(self)
        other.load_size, other.load_workers = int(p["size"]), int(p["workers"])
        other.skip_bad = bool(p["skip_bad_images"])
        return other

    def for_inference(self) -> VisionCompetition:
        """A copy whose `load` leaves the training images undecoded (`inference_only`): predicting from saved fold
        models needs the test images only, and on Kaggle's Planet the training ones would cost minutes and GBs."""
        other = copy.copy(self)
        other.inference_only = True
        return other

    def decode_size(self) -> int:
        """The size `load` decodes at: the run's (for_params), else the preset's for this machine."""
        return self.load_size or int(self.presets[auto_preset()].size)

    # ---- parameters ---------------------------------------------------------------------------------
    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Params with the preset's values filled in where a value is unset; preset 'auto' picks by device."""
        p = {**self.default_params, **params}
        preset = p["preset"] if p["preset"] != "auto" else auto_preset()
        if preset not in self.presets:
            raise KitError(f"{self.name}: preset must be auto or one of {', '.join(self.presets)} "
                           f"(got {p['preset']!r})")
        p["preset"] = preset
        filled = self.presets[preset].as_dict()
        for k, unset in UNSET.items():
            if p[k] == unset or p[k] is None:
                p[k] = filled[k]
        return p

    def resolved(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` as they are when `params()` resolved them already (the run's path), else resolved now."""
        done = params.get("preset") in self.presets and set(self.default_params) <= set(params) and all(
            params[k] != unset for k, unset in UNSET.items() if k != "sizes")  # [] is also a resolved value
        return params if done else self.resolve(params)

    def params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults + overrides with the preset resolved (so run records show the values actually used)."""
        p = self.resolve({**self.default_params, **(overrides or {})})
        self.check_params(p)
        return p

    def check_params(self, params: dict[str, Any]) -> None:
        """Unknown names, then the declared constraints (kit.vision.params), then what the task or the
        architecture cannot use: one line each."""
        super().check_params(params)
        p = self.resolved(params)
        VisionParams.check(p, self.name)
        arch = resolve_arch(p["arch"])
        self._check_techniques(p, arch)

    def _check_techniques(self, p: dict[str, Any], arch) -> None:
        """chapter 7's keys the task or the architecture cannot use."""
        points = hasattr(self.task, "flip_perm")
        if points and (float(p["mixup"]) > 0 or float(p["cutmix"]) > 0):
            raise KitError(f"{self.name}: mixup/cutmix blend two faces, whose keypoints cannot be blended; "
                           "leave them at 0 for point targets")
        if not self.task.classification and float(p["label_smoothing"]) > 0:
            raise KitError(f"{self.name}: label_smoothing is for class targets, not {self.task}")
        sizes = progressive_sizes(p, self.name)
        if points and arch.kind == "small_cnn" and len(set(sizes)) > 1:
            raise KitError(f"{self.name}: small_cnn's point head is made for one input size; progressive "
                           "resizing needs a pooled backbone (a torchvision or timm arch)")
        if p["weights"]:
            if not arch.pretrainable:
                raise KitError(f"{self.name}: weights={p['weights']}: small_cnn has no pretrained weights; "
                               "set arch to a torchvision or timm name")
            if not Path(p["weights"]).expanduser().exists():
                raise DataError(f"{Path(p['weights']).expanduser()}: weights file not found")

    def search_space(self, trial) -> dict[str, Any]:
        """lr, epochs, image size, architecture (small CNN width / backbone), augmentation, weight decay, dropout."""
        preset = auto_preset()
        base = self.presets[preset].as_dict()
        space: dict[str, Any] = {
            "preset": preset,
            "lr": trial.suggest_float("lr", base["lr"] / 8, base["lr"] * 3, log=True),
            "aug": trial.suggest_float("aug", 0.0, 0.3),
            "geometric": trial.suggest_categorical("geometric", [True, False]),
            "wd": trial.suggest_float("wd", 1e-4, 0.1, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
        e = int(base["epochs"])
        space["epochs"] = trial.suggest_int("epochs", max(2, e // 2), e * 2, step=2)
        s = int(base["size"])
        space["size"] = trial.suggest_categorical("size", sorted({max(16, s * 3 // 4), s, s * 3 // 2}))
        if base["arch"] == "small_cnn":
            space["arch"] = "small_cnn"
            space["width"] = trial.suggest_categorical("width", [16, 24, 32, 48])
        else:
            space["arch"] = trial.suggest_categorical("arch", ["resnet18", "resnet34", "resnet50"])
        space.update(self.technique_space(trial))
        return space

    def technique_space(self, trial) -> dict[str, Any]:
        """chapter 7's keys as searched: MixUp alpha and label smoothing (class targets), progressive resizing."""
        space: dict[str, Any] = {}
        if self.task.classification:
            space["mixup"] = trial.suggest_categorical("mixup", [0.0, 0.2, 0.4])
            space["label_smoothing"] = trial.suggest_categorical("label_smoothing", [0.0, 0.05, 0.1])
        if not hasattr(self.task, "flip_perm"):  # points: small_cnn's head is made for one size
            space["progressive"] = trial.suggest_categorical("progressive", [0.0, 0.5])
        return space

    def augment(self, p: dict[str, Any]) -> Augment:
        """The declared augmentation with the run's lighting strength; geometric moves off when not wanted."""
        a = dataclasses.replace(self.augmentation, lighting=float(p["aug"]))
        if not p["geometric"]:
            a = dataclasses.replace(a, flip=False, vflip=False, rot90=False, rotate=0.0, scale=0.0, translate=0.0)
        return a

    # ---- images -------------------------------------------------------------------------------------
    def images(self, data: ImageData, which: str, size: int, progress: bool = False, workers: int = 0) -> ImageArray:
        """All images of `which` ('train': every training row before bad ones were dropped; 'test') as a
        (n, size, size, 3) uint8 array, made once per size from `data.sources[which]`."""
        cache = data.decoded
        if (which, size) not in cache:
            src = data.sources[which]
            if isinstance(src, np.ndarray):
                cache[(which, size)] = ImageArray(resize_images(src, size))
            else:
                cache[(which, size)] = devices.rank0_first(load_images, src, size, cache_dir=self.cache_dir,
                                                           workers=workers or None, progress=progress, name=which)
        arr = cache[(which, size)]
        if which == "train" and data.train_rows is not None:  # rows kept by `load`: their images must still decode
            new_bad = sorted(set(arr.bad) & set(np.asarray(data.train_rows).tolist()))
            if new_bad:  # decoded in `load` but not now: a file changed on disk mid-run
                names = [str(p).rsplit("/", 1)[-1] for p in data.sources["train"]]
                raise DataError(f"training images became unreadable: "
                                f"{describe_bad(names, {i: arr.bad[i] for i in new_bad})}")
        return arr

    @staticmethod
    def train_rows(data: ImageData) -> np.ndarray:
        """Row of the training image array holding each training row of `data` (bad images dropped in load)."""
        return np.arange(len(data.y)) if data.train_rows is None else np.asarray(data.train_rows)

    def check_bad_images(self, data: ImageData, params: dict[str, Any]) -> None:
        """Stop before training when images are bad, unless `skip_bad_images`; then say what happens to them."""
        bad = {**data.bad_train, **data.bad_test}
        if not bad:
            return
        listing = ", ".join(f"{n} ({why})" for n, why in sorted(bad.items()))
        if not params.get("skip_bad_images"):
            raise DataError(
                f"{len(bad)} missing or unreadable image(s) in {data.data_dir or 'the data folder'}: "
                f"{listing}; fix them, or pass --skip-bad-images to drop bad training images and fill bad test "
                "rows from the fold-ensemble prior"
            )
        if not data.bad_reported:
            data.bad_reported = True
            log.warning("--skip-bad-images: %d training image(s) dropped, %d test row(s) filled from the "
                        "fold-ensemble prior: %s", len(data.bad_train), len(data.bad_test), listing)

    # ---- model --------------------------------------------------------------------------------------
    def fit_fold(
        self,
        data: ImageData,
        train_idx: np.ndarray,
        valid_idx: np.ndarray,
        params: dict[str, Any],
        seed: int,
        callbacks: list | None = None,
        progress: bool = True,
    ) -> FoldOutput:
        """Train one fold's network on the cached images; valid and test predictions (TTA when `tta` > 1)."""
        # torch and fastai here, not at the top: a competition folder imports this module, and `kit download`,
        # `kit submit` or a missing-data error need neither (~2.5 s a command)
        from fastai.metrics import accuracy_multi

        from kit import learner
        from kit.predictors import cpu_copy
        from kit.vision.loaders import array_dataloaders
        from kit.vision.models import vision_learner_for
        from kit.vision.predictor import VisionPredictor, tta_mean
        from kit.vision.techniques import ProgressiveResize, mix_callbacks

        p = self.resolved(params)
        self.check_bad_images(data, p)
        size, bs = int(p["size"]), int(p["bs"])
        x_train = self.images(data, "train", size, progress, int(p["workers"])).x
        self.images(data, "test", size, progress, int(p["workers"]))  # decoded now, with the progress bar
        rows = self.train_rows(data)
        device = learner.default_device()
        learner.seed_everything(seed)
        arch = resolve_arch(p["arch"])
        weights = self.weights_used(p)
        pretrained = weights is not None
        backbone = p["norm"] == "backbone" or (p["norm"] == "auto" and pretrained)
        stats = backbone_stats(arch) if backbone else channel_stats(x_train, rows[train_idx])
        task = self.task
        scaler = task.fit_target(data.y[train_idx])
        y = np.asarray(scaler.transform_y(data.y)).astype(task.target_dtype())
        points = hasattr(task, "flip_perm")
        n_out = task.n_outputs(data.y, data.classes)
        perm = task.flip_perm(n_out) if points else None
        dls = array_dataloaders(x_train, y, train_idx, valid_idx, stats, bs, device, augment=self.augment(p),
                                x_rows=rows, points=points, flip_perm=perm)
        metrics = [learner.competition_metric(self, scaler)]
        if task.multi_label:
            metrics.append(accuracy_multi)
        cbs = mix_callbacks(float(p["mixup"]), float(p["cutmix"]))
        if learner.cpu_bf16(str(p["precision"]), device):
            cbs.append(learner.BF16Autocast())
        sizes = progressive_sizes(p, self.name)
        if len(set(sizes)) > 1:
            cbs.append(ProgressiveResize(sizes, dls.train.batch_tfm))
        learn = vision_learner_for(dls, p["arch"], n_out, weights, task.loss(float(p["label_smoothing"])), metrics,
                                   wd=float(p["wd"]), dropout=float(p["dropout"]), width=int(p["width"]),
                                   residual=bool(p["residual"]), y_range=getattr(task, "y_range", None),
                                   spatial=size if points else None, cbs=cbs)
        if p["schedule"] == "fine_tune" and not pretrained:
            # fine_tune = frozen head-only epochs + discriminative lrs (early layers at lr/100): right for pretrained
            # weights, wrong for a random body, which needs every layer trained at the full rate
            log.warning("no pretrained weights for %s: training with fit_one_cycle instead of fine_tune", p["arch"])
        if p["schedule"] == "fine_tune" and pretrained:
            quiet = learn.no_bar() if not progress else contextlib.nullcontext()
            with quiet, learn.no_logging(), devices.fit_context(learn):
                learn.fine_tune(int(p["epochs"]), base_lr=float(p["lr"]), freeze_epochs=int(p["freeze_epochs"]),
                                wd=float(p["wd"]), cbs=callbacks)
        else:
            learner.fit(learn, int(p["epochs"]), float(p["lr"]), float(p["wd"]), cbs=callbacks, progress=progress)
        hist = learner.history(learn)  # before predicting: get_preds resets the Recorder
        views = self.augment(p).tta_views(int(p["tta"]))
        valid = scaler.inverse(tta_mean(lambda dl: learner.predict(learn, dl, task), x_train, rows[valid_idx], stats,
                                        bs * 2, device, views, perm))
        # test images that cannot be read get this fold's prior; the fold mean is the ensemble's prior
        predictor = VisionPredictor(cpu_copy(learn.model), stats, size, bs * 2, views, scaler, perm,
                                    amp=device.type == "cuda", fill=np.nanmean(valid, axis=0))
        return FoldOutput(valid=valid, test=predictor.predict(self, data), history=hist, predictor=predictor)

    def weights_used(self, params: dict[str, Any]):
        """The pretrained weights file a run with `params` loads (kit.vision.weights.Weights), or None."""
        p = self.resolved(params)
        arch = resolve_arch(p["arch"])
        return find_weights(arch, str(p["weights"]), bool(p["pretrained"])) if arch.pretrainable else None

    def record_extra(self, params: dict[str, Any]) -> dict[str, Any]:
        """The weights file the run loaded (path, name, SHA-256, where found), for its record and `kit package`."""
        w = self.weights_used(params)
        return {"weights": w.record() if w is not None else None}

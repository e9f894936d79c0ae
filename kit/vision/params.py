"""Image competitions' parameters, declared once: a `Preset` (what `cpu` / `gpu` fill in) and `VisionParams`
(every key with its default and constraints, kit.params); `VisionCompetition.resolve` fills a run's unset values
from its preset once, and the resolved values are what the run records."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kit.errors import KitError
from kit.params import Flag, Interval, IntList, Options, Params, Text

SCHEDULES = ("one_cycle", "fine_tune")
NORMS = ("auto", "backbone", "fold")
PRECISIONS = ("auto", "fp32", "bf16")
ALPHA = Interval(float, 0, None)


@dataclass(frozen=True)
class Preset:
    """What a preset fills into a run's unset values: the net, its input size and schedule (required), small_cnn's
    width, and fastbook chapter 7's techniques (off unless the preset turns them on)."""

    arch: str
    size: int
    epochs: int
    lr: float
    bs: int
    schedule: str
    tta: int
    norm: str = "auto"
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.0
    progressive: float = 0.0
    sizes: tuple[int, ...] = ()
    width: int = 24  # small_cnn's base width (other archs ignore it)

    @classmethod
    def of(cls, declared: Preset | Mapping[str, Any], where: str) -> Preset:
        """A declared preset (a dict in a competition's folder) as a Preset; one line for a missing or unknown
        key, or a value its constraint refuses."""
        if isinstance(declared, Preset):
            return declared
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(declared) - set(names))
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.name not in declared]
        if unknown or missing:
            said = "; ".join(s for s in (unknown and f"unknown key(s) {', '.join(unknown)}",
                                          missing and f"missing {', '.join(missing)}") if s)
            raise KitError(f"{where}: {said} (a preset sets {', '.join(names)})")
        VisionParams.check(declared, where)
        return cls(**{**declared, "sizes": tuple(declared.get("sizes", ()))})

    def as_dict(self) -> dict[str, Any]:
        """The preset's values, `sizes` as a list (as `--set sizes=[...]` and records have it)."""
        d = dataclasses.asdict(self)
        d["sizes"] = list(self.sizes)
        return d


@dataclass(frozen=True)
class VisionParams(Params):
    """Every parameter of an image competition's run. The preset's keys default to "unset" (0, 0.0, "", -1, []):
    the preset fills them (`resolve`), so a run records the values it used."""

    preset: str = "auto"  # auto | cpu | gpu (auto: gpu when CUDA is there)
    arch: str = ""
    size: int = 0
    epochs: int = 0
    lr: float = 0.0
    bs: int = 0
    schedule: str = ""
    tta: int = -1
    # chapter 7 (unset: the preset's, else off): norm auto = the backbone's stats when pretrained, else the
    # training fold's; mixup / cutmix: fastai's callbacks' Beta alpha (0: off); label_smoothing: eps of the
    # task's smoothed loss; progressive: train the first half of the epochs at this fraction of size;
    # sizes: an explicit progressive schedule, e.g. [32, 48, 64] (epochs split evenly, the last = size)
    norm: str = ""
    mixup: float = -1.0
    cutmix: float = -1.0
    label_smoothing: float = -1.0
    progressive: float = -1.0
    sizes: list = dataclasses.field(default_factory=list)
    width: int = 0  # small_cnn's base width (unset: the preset's)
    residual: bool = False  # small_cnn: each stage's second conv as a residual branch (other archs ignore it)
    dropout: float = 0.1
    wd: float = 0.01
    aug: float = 0.1  # lighting strength (0: none)
    geometric: bool = True  # the competition's label-preserving flips / turns / small affine moves while training
    pretrained: bool = True  # use pretrained backbone weights when they can be had
    weights: str = ""  # a weights file (or folder) for the backbone; else $KIT_WEIGHTS, the caches, a download
    freeze_epochs: int = 1  # fine_tune only
    skip_bad_images: bool = False
    workers: int = 0  # image decoding processes (0: up to 8)
    precision: str = "auto"  # training batches under bfloat16 autocast: auto = on a CPU with AMX tiles
    # (kit.devices.fast_cpu_bf16), fp32 elsewhere; a GPU trains in fastai's fp16 mixed precision either way

    # the resolved values' constraints (an unset value is filled before these are checked)
    _parameter_constraints: ClassVar = {
        "preset": Text(), "arch": Text(), "size": Interval(int, 16, None), "epochs": Interval(int, 1, None),
        "bs": Interval(int, 1, None), "width": Interval(int, 1, None), "residual": Flag(),
        "lr": Interval(float, 0, None, "neither"),
        "wd": Interval(float, 0, None), "dropout": Interval(float, 0, 1, "left"), "aug": Interval(float, 0, 1),
        "schedule": Options(*SCHEDULES), "tta": Interval(int, 0, 8), "norm": Options(*NORMS),
        "mixup": ALPHA, "cutmix": ALPHA, "label_smoothing": Interval(float, 0, 1, "left"),
        "progressive": Interval(float, 0, 1, "left"), "sizes": IntList(16), "geometric": Flag(),
        "pretrained": Flag(), "weights": Text(), "freeze_epochs": Interval(int, 0, None),
        "skip_bad_images": Flag(), "workers": Interval(int, 0, None), "precision": Options(*PRECISIONS),
    }
    _notes: ClassVar = {"tta": "views", "mixup": "the Beta distribution's alpha, 0 off",
                        "cutmix": "the Beta distribution's alpha, 0 off", "size": "pixels",
                        "progressive": "the first half's fraction of size, 0 off"}

    @classmethod
    def _check_together(cls, params: Mapping[str, Any], where: str) -> None:
        if float(params.get("mixup", 0) or 0) > 0 and float(params.get("cutmix", 0) or 0) > 0:
            raise KitError(f"{where}: mixup and cutmix both on; use one (got mixup={params['mixup']}, "
                           f"cutmix={params['cutmix']})")


# the keys a preset fills, at their unset values
UNSET: dict[str, Any] = {k: v for k, v in VisionParams.defaults().items()
                         if k in {f.name for f in dataclasses.fields(Preset)}}


def progressive_sizes(p: dict[str, Any], name: str = "") -> list[int]:
    """The training sizes, one phase each, epochs split evenly (a single size: no progressive resizing).

    `sizes` when given (non-decreasing, each >= 16, ending at `size`, no more phases than epochs), else
    `progressive` f > 0: the first half at round(f * size) (at least 16), the second at `size`."""
    size, epochs = int(p["size"]), int(p["epochs"])
    where = f"{name}: " if name else ""
    sizes = p.get("sizes") or []
    if sizes:
        if not isinstance(sizes, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
            raise KitError(f"{where}sizes must be a list of image sizes, e.g. [32, 64] (got {sizes!r})")
        if any(s < 16 for s in sizes) or sizes != sorted(sizes) or sizes[-1] != size:
            raise KitError(f"{where}sizes must be non-decreasing sizes >= 16 ending at size={size} "
                           f"(got {sizes})")
        if len(sizes) > epochs:
            raise KitError(f"{where}sizes has {len(sizes)} phases for {epochs} epoch(s): at most one per epoch")
        return [int(s) for s in sizes]
    f = float(p.get("progressive") or 0.0)
    if f > 0:
        return [max(16, round(f * size)), size] if epochs >= 2 else [size]
    return [size]

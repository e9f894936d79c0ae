"""Image competitions: `augment` (the label-preserving symmetries a competition declares), `transforms` (those
applied to batches on the device), `images` (decoding, caches, pixels from CSV), `loaders` (fastai DataLoaders over
uint8 arrays), `models` (SmallCNN, torchvision and timm backbones), `weights` (architectures and pretrained weights
offline), `techniques` (MixUp/CutMix, progressive resizing), `params` (presets and every parameter, typed), `data`
(`ImageData`) and `competition` (the `VisionCompetition` base that a competition folder subclasses).

The names below are imported on first use (PEP 562): a competition folder imports `Augment` and its base class,
which need no torch, so `kit download`, `kit submit` and a missing-data error on an image competition start
without the training libraries (~2.5 s a command); training imports them.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "augment": ["Augment"],
    "transforms": ["BatchTransform", "dihedral", "flip_points"],
    "competition": ["VisionCompetition", "auto_preset"],
    "data": ["ImageData"],
    "declared": ["ClassFolderCompetition", "ImageCsvCompetition", "PixelCsvCompetition"],
    "images": ["ImageArray", "cache_key", "channel_stats", "decode_image", "describe_bad", "load_images",
               "pixel_columns_to_images", "pixel_strings_to_images", "resize_images"],
    "loaders": ["ArrayDataLoader", "array_dataloaders", "array_test_dl"],
    "models": ["IMAGENET_STATS", "SmallCNN", "dataset_stats_or_imagenet", "describe_device", "pretrained_available",
               "torchvision_arch", "vision_learner_for"],
    "params": ["UNSET", "Preset", "VisionParams", "progressive_sizes"],
    "techniques": ["ProgressiveResize", "mix_callbacks"],
    "weights": ["Arch", "Weights", "backbone_stats", "find_weights", "load_weights", "resolve_arch"],
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}

__all__ = list(_MODULE)


def __getattr__(name: str) -> Any:
    if name in _MODULE:
        value = getattr(importlib.import_module(f"kit.vision.{_MODULE[name]}"), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    if name in _WHERE:  # a submodule, e.g. kit.vision.weights
        return importlib.import_module(f"kit.vision.{name}")
    raise AttributeError(f"module 'kit.vision' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE])

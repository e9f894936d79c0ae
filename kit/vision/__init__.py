"""Image competitions: `images` (decoding, caches, pixels from CSV), `augment` (label-preserving transforms on
the device), `loaders` (fastai DataLoaders over uint8 arrays), `models` (SmallCNN, torchvision and timm
backbones), `weights` (architectures and pretrained weights offline), `techniques` (MixUp/CutMix, progressive
resizing), `params` (presets and every parameter, typed), `data` (`ImageData`) and `competition` (the
`VisionCompetition` base that a competition folder subclasses)."""

from kit.vision.augment import Augment, BatchTransform, dihedral, flip_points
from kit.vision.competition import VisionCompetition, auto_preset
from kit.vision.data import ImageData
from kit.vision.declared import ClassFolderCompetition, ImageCsvCompetition, PixelCsvCompetition
from kit.vision.images import (
    ImageArray,
    cache_key,
    channel_stats,
    decode_image,
    describe_bad,
    load_images,
    pixel_columns_to_images,
    pixel_strings_to_images,
    resize_images,
)
from kit.vision.loaders import ArrayDataLoader, array_dataloaders, array_test_dl
from kit.vision.models import (
    IMAGENET_STATS,
    SmallCNN,
    dataset_stats_or_imagenet,
    describe_device,
    pretrained_available,
    torchvision_arch,
    vision_learner_for,
)
from kit.vision.params import UNSET, Preset, VisionParams
from kit.vision.techniques import ProgressiveResize, mix_callbacks, progressive_sizes
from kit.vision.weights import Arch, Weights, backbone_stats, find_weights, load_weights, resolve_arch

__all__ = [
    "Augment", "BatchTransform", "dihedral", "flip_points", "UNSET", "Preset", "VisionParams",
    "VisionCompetition", "auto_preset", "ImageData",
    "ClassFolderCompetition", "ImageCsvCompetition", "PixelCsvCompetition",
    "ImageArray", "cache_key", "channel_stats", "decode_image", "describe_bad", "load_images",
    "pixel_columns_to_images", "pixel_strings_to_images", "resize_images", "ArrayDataLoader", "array_dataloaders",
    "array_test_dl", "IMAGENET_STATS", "SmallCNN", "dataset_stats_or_imagenet", "describe_device",
    "pretrained_available", "torchvision_arch", "vision_learner_for", "ProgressiveResize", "mix_callbacks",
    "progressive_sizes", "Arch", "Weights", "backbone_stats", "find_weights", "load_weights", "resolve_arch",
]

"""Dog Breed Identification: one of 120 breeds per photo, submitted as one probability column per breed, scored by
multi-class log loss.

Kaggle's files: `labels.csv` (`id,breed`), `train/<id>.jpg`, `test/<id>.jpg`, `sample_submission.csv` (`id`
then the breeds, sorted). Declared on `ImageCsvCompetition`: every photo (any size; RGB, grayscale, CMYK or with
alpha) is decoded once to RGB at the run's size; a breed of labels.csv that is not a sample column, a listed
image that is missing (unless --skip-bad-images) and a test image the sample does not name are refused in one
line before anything is decoded. Log loss pays for calibration: the multiclass log-loss decoder scales the
fold-mean probabilities by one temperature fitted on OOF (`kit.decoders.Temperature`, kept at 1 unless it
lowers OOF log loss). Photos of dogs keep their label when mirrored left-right, slightly turned, zoomed or
shifted, never upside down. `python -m competitions.dog-breed-identification.synthetic OUT` writes this layout.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kit.vision import Augment, ImageCsvCompetition

PRESETS: dict[str, dict[str, Any]] = {
    # small CNN at 64 px: the generated 1,200 photos x 5 folds in a few minutes on 2 CPU cores
    "cpu": {"arch": "small_cnn", "size": 64, "epochs": 12, "lr": 4e-3, "bs": 64, "schedule": "one_cycle", "tta": 2},
    # a pretrained resnet50 at 224 px with fastai's fine_tune (ImageNet holds these breeds)
    "gpu": {"arch": "resnet50", "size": 224, "epochs": 6, "lr": 2e-3, "bs": 64, "schedule": "fine_tune", "tta": 2},
}


class DogBreedIdentification(ImageCsvCompetition):
    """labels.csv naming train/<id>.jpg; one probability per breed, temperature-scaled on OOF log loss."""

    name = "dog-breed-identification"
    slug = "dog-breed-identification"
    title = "Dog Breed Identification"
    task = "multiclass"
    metric = "logloss"
    id_col, target_col = "id", "breed"
    train_file, test_file, sample_file = "labels.csv", "test", "sample_submission.csv"
    train_images, test_images, image_ext = "train", "test", ".jpg"
    test_folder_is_sample: ClassVar[bool] = True
    n_folds = 5
    presets = PRESETS
    augmentation = Augment(flip=True, rotate=10.0, scale=0.1, translate=0.05)


COMPETITION = DogBreedIdentification()

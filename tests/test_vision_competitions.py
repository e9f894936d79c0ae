"""digit-recognizer (single-label images) and facial-keypoints (image regression of points) end to end on
small generated data, the loss each Learner really uses, keypoint mirroring, masked loss, and bad input."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastai.callback.core import Callback
from torch import nn

from kit import registry
from kit.errors import DataError
from kit.losses import MaskedMSELoss
from kit.run import train_and_submit
from kit.submission import validate_submission
from kit.vision import Augment, BatchTransform, flip_points

DIGITS = registry.get("digit-recognizer")
FACES = registry.get("facial-keypoints")
digits_synth = importlib.import_module("competitions.digit-recognizer.synthetic")
faces_synth = importlib.import_module("competitions.facial-keypoints.synthetic")
layout = importlib.import_module("competitions.facial-keypoints.layout")
TINY = {"preset": "cpu", "epochs": 1, "bs": 16, "width": 8}


@pytest.fixture(scope="module")
def digits_src(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("digits")
    digits_synth.generate(d, n_train=120, n_test=30, seed=3, solution_path=d / "solution.csv")
    return d


@pytest.fixture(scope="module")
def faces_src(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faces")
    faces_synth.generate(d, n_train=60, n_test=12, seed=3, solution_path=d / "solution.csv")
    return d


def _copy(src: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(src, d)
    return d


class LossSpy(Callback):
    """Records the loss function the Learner trains with."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def before_fit(self) -> None:
        self.seen.append(self.learn.loss_func)


def test_digits_end_to_end_with_cross_entropy(digits_src, workdir):
    data = DIGITS.load(digits_src)
    assert data.classes == list(range(10)) and data.sources["train"].shape == (120, 28, 28, 3)
    seen: list = []
    idx = np.arange(len(data.y))
    plain = DIGITS.params({**TINY, "label_smoothing": 0.0})  # the cpu preset smooths labels (its A/B won)
    out = DIGITS.fit_fold(data, idx[::2], idx[1::2], plain, seed=0, callbacks=[LossSpy(seen)], progress=False)
    assert isinstance(seen[0].func, nn.CrossEntropyLoss)
    assert out.valid.shape == (60, 10) and np.allclose(out.valid.sum(axis=1), 1.0)
    r = train_and_submit(DIGITS, digits_src, DIGITS.params(TINY), seed=1, n_folds=2, progress=False)
    sub = pd.read_csv(r.submission)
    assert list(sub.columns) == ["ImageId", "Label"] and sub["ImageId"].tolist() == list(range(1, 31))
    assert set(sub["Label"]) <= set(range(10))
    validate_submission(DIGITS, r.submission, digits_src / "sample_submission.csv", classes=list(range(10)))


def test_digits_never_flip_or_turn():
    a = DIGITS.augment(DIGITS.params({"preset": "cpu"}))
    assert not (a.flip or a.vflip or a.rot90) and a.tta_views(8) == [0] and a.rotate > 0


def test_faces_end_to_end_with_masked_mse(faces_src, workdir):
    data = FACES.load(faces_src)
    assert data.y.shape == (60, 30) and np.isnan(data.y).any()  # most rows have 4 of the 15 keypoints
    seen: list = []
    idx = np.arange(len(data.y))
    out = FACES.fit_fold(data, idx[::2], idx[1::2], FACES.params(TINY), seed=0, callbacks=[LossSpy(seen)],
                         progress=False)
    assert isinstance(seen[0].func, MaskedMSELoss)
    assert out.test.shape == (12, 30) and (out.test >= 0).all() and (out.test <= 96).all()  # clipped to the image
    r = train_and_submit(FACES, faces_src, FACES.params(TINY), seed=1, n_folds=2, progress=False)
    sub = pd.read_csv(r.submission)
    lookup = pd.read_csv(faces_src / "IdLookupTable.csv")
    assert list(sub.columns) == ["RowId", "Location"] and sub["RowId"].tolist() == lookup["RowId"].tolist()
    validate_submission(FACES, r.submission, faces_src / "SampleSubmission.csv")
    oof = pd.read_csv(r.run_dir / "oof.csv")
    assert list(oof.columns) == ["ImageId", *layout.COLUMNS]


def test_mirroring_swaps_left_and_right_keypoints():
    task = FACES.task
    perm = torch.as_tensor(task.flip_perm(30))
    y = torch.arange(30, dtype=torch.float32).view(1, 30) / 30 - 0.5
    f = flip_points(y, perm)
    le, re = layout.KEYPOINTS.index("left_eye_center"), layout.KEYPOINTS.index("right_eye_center")
    assert f[0, 2 * le] == -y[0, 2 * re] and f[0, 2 * le + 1] == y[0, 2 * re + 1]  # x mirrored, y kept, swapped
    nose = layout.KEYPOINTS.index("nose_tip")
    assert f[0, 2 * nose] == -y[0, 2 * nose]  # unpaired points stay themselves
    assert torch.equal(flip_points(f, perm), y)  # mirroring twice is the identity
    # in a training batch: a mirrored image's targets are mirrored with it, NaN (missing) stays missing
    x = torch.zeros(64, 8, 8, 3, dtype=torch.uint8)
    x[:, :, :2] = 255  # a bright stripe on the left
    yb = y.repeat(64, 1)
    yb[:, 0] = float("nan")
    torch.manual_seed(0)
    tfm = BatchTransform([0.5] * 3, [0.5] * 3, train=True, augment=Augment(flip=True), points=True, flip_perm=perm)
    xo, yo = tfm((x, yb))
    mirrored = xo[:, 0, 0, -1] > 0  # stripe moved to the right
    assert mirrored.any() and (~mirrored).any()
    assert torch.allclose(yo[~mirrored], yb[~mirrored], equal_nan=True)
    assert torch.allclose(yo[mirrored], flip_points(yb, perm)[mirrored], equal_nan=True)


def test_missing_keypoints_add_no_loss_and_no_gradient():
    loss = MaskedMSELoss()
    pred = torch.tensor([[0.5, 0.2, -0.3], [0.1, 0.9, 0.0]], requires_grad=True)
    targ = torch.tensor([[0.0, float("nan"), -0.3], [float("nan"), float("nan"), 1.0]])
    v = loss(pred, targ)
    present = ~torch.isnan(targ)
    assert torch.isclose(v, ((pred - targ)[present] ** 2).mean())
    v.backward()
    assert (pred.grad[~present] == 0).all() and (pred.grad[present] != 0).any()


def _rewrite(path: Path, fn) -> None:
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    fn(df)
    df.to_csv(path, index=False)


@pytest.mark.parametrize("case, message", [
    ("label", r"train\.csv: row 3, column label: 'x' is not a digit label 0-9"),
    ("pixel", r"train\.csv: row 2, column pixel5: 300 is not a pixel value 0\.\.255"),
    ("count", r"test\.csv: missing column\(s\) pixel783"),
])
def test_digits_bad_input_is_one_line(digits_src, tmp_path, case, message):
    d = _copy(digits_src, tmp_path)
    if case == "label":
        _rewrite(d / "train.csv", lambda df: df.__setitem__("label", ["1", "x", *df["label"][2:]]))
    elif case == "pixel":
        _rewrite(d / "train.csv", lambda df: df.__setitem__("pixel5", ["300", *df["pixel5"][1:]]))
    else:
        _rewrite(d / "test.csv", lambda df: df.drop(columns="pixel783", inplace=True))
    with pytest.raises(DataError, match=message) as e:
        DIGITS.load(d)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("case, message", [
    ("short", r"training\.csv: row 2, column Image: 9215 pixel values, expected 9216 \(96x96\)"),
    ("parse", r"training\.csv: row 2, column Image: 'abc' is not a pixel value"),
    ("range", r"test\.csv: row 3, column Image: 256 is not a pixel value 0\.\.255"),
    ("outside", r"training\.csv: row 2, column nose_tip_x: 97\.5 is outside the 96x96 image"),
    ("feature", r"IdLookupTable\.csv: row 2, column FeatureName: unknown feature 'nose_x'"),
    ("image", r"IdLookupTable\.csv: row 2, column ImageId: image 999 is not in test\.csv"),
    ("count", r"test\.csv has 13 images but IdLookupTable\.csv asks about 12"),
])
def test_faces_bad_input_is_one_line(faces_src, tmp_path, case, message):
    d = _copy(faces_src, tmp_path)
    if case == "short":
        _rewrite(d / "training.csv", lambda df: df.__setitem__("Image", [df["Image"][0].rsplit(" ", 1)[0],
                                                                         *df["Image"][1:]]))
    elif case == "parse":
        _rewrite(d / "training.csv", lambda df: df.__setitem__("Image", ["abc " + df["Image"][0].split(" ", 1)[1],
                                                                         *df["Image"][1:]]))
    elif case == "range":
        _rewrite(d / "test.csv", lambda df: df.__setitem__("Image", [df["Image"][0], "256 " +
                                                                     df["Image"][1].split(" ", 1)[1],
                                                                     *df["Image"][2:]]))
    elif case == "outside":
        _rewrite(d / "training.csv", lambda df: df.__setitem__("nose_tip_x", ["97.5", *df["nose_tip_x"][1:]]))
    elif case == "feature":
        _rewrite(d / "IdLookupTable.csv", lambda df: df.__setitem__("FeatureName", ["nose_x",
                                                                                    *df["FeatureName"][1:]]))
    elif case == "image":
        _rewrite(d / "IdLookupTable.csv", lambda df: df.__setitem__("ImageId", ["999", *df["ImageId"][1:]]))
    else:
        test = pd.read_csv(d / "test.csv")
        pd.concat([test, test.iloc[[0]].assign(ImageId=test["ImageId"].max() + 1)]).to_csv(d / "test.csv",
                                                                                            index=False)
    with pytest.raises(DataError, match=message) as e:
        FACES.load(d)
    assert "\n" not in str(e.value)


def test_affine_moves_move_the_points_with_the_image():
    """A bright dot drawn at a keypoint stays under the keypoint after random rotations, zooms and shifts."""
    side, n = 48, 32
    rng = np.random.default_rng(0)
    pts = rng.uniform(14, 34, size=(n, 2))  # (x, y) in pixels, left edge = 0
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    img = np.exp(-((xx[None] - pts[:, 0, None, None]) ** 2 + (yy[None] - pts[:, 1, None, None]) ** 2) / 4.0)
    x = torch.from_numpy(np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=-1))
    y = torch.from_numpy((pts / (side / 2) - 1).astype(np.float32))  # the Points task's (-1, 1) scaling
    torch.manual_seed(1)
    tfm = BatchTransform([0.0] * 3, [1.0] * 3, train=True, augment=Augment(rotate=25, scale=0.15, translate=0.1),
                         points=True)
    xo, yo = tfm((x, y))
    w = xo[:, 0].clamp(min=0).numpy() ** 2
    cx = (w * xx[None]).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    cy = (w * yy[None]).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    px = (yo.numpy() + 1) * side / 2
    moved = np.hypot(px[:, 0] - pts[:, 0], px[:, 1] - pts[:, 1])
    assert moved.mean() > 2  # the transforms did move things
    assert np.hypot(cx - px[:, 0], cy - px[:, 1]).max() < 0.75  # and the dot is where the target says


def test_image_folds_can_be_grouped_by_person(faces_src):
    """As the seeds split BIWI head poses by person: a competition declaring group_col never splits a group."""
    from kit.cv import make_folds

    class ByPerson(type(FACES)):
        group_col = "person"

    comp = ByPerson()
    data = comp.load(faces_src)
    data.train["person"] = np.arange(len(data.y)) // 6
    folds = make_folds(comp.task, data.y, 3, 0, comp.fold_groups(data))
    per_person = pd.Series(folds).groupby(data.train["person"]).nunique()
    assert (per_person == 1).all() and len(set(folds)) == 3

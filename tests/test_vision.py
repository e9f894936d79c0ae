"""kit.vision: decoding + cache, normalisation stats, batch transforms, array DataLoaders, models."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kit import vision
from kit.learner import predict
from kit.tasks import Multilabel


def _write(path: Path, arr: np.ndarray, fmt: str = "JPEG", mode: str | None = None) -> Path:
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(path, format=fmt, quality=95) if fmt == "JPEG" else im.save(path, format=fmt)
    return path


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        arr = np.zeros((64, 64, 3), dtype=np.uint8)
        arr[..., i % 3] = 200
        arr[: 8 * (i + 1)] = rng.integers(0, 255, 3, dtype=np.uint8)
        paths.append(_write(tmp_path / f"img_{i}.jpg", arr))
    return paths


def test_decode_resizes_and_converts_every_mode_to_rgb(tmp_path: Path):
    arr = np.full((64, 64, 3), (200, 40, 10), dtype=np.uint8)
    for name, fmt, mode in [("rgb.jpg", "JPEG", None), ("gray.jpg", "JPEG", "L"), ("cmyk.jpg", "JPEG", "CMYK"),
                            ("rgba.png", "PNG", "RGBA"), ("pal.png", "PNG", "P")]:
        out = vision.decode_image(_write(tmp_path / name, arr, fmt, mode), 16)
        assert out.shape == (16, 16, 3) and out.dtype == np.uint8, name
        if mode == "L":
            assert (out[..., 0] == out[..., 1]).all()
        elif mode != "CMYK":  # CMYK JPEGs round-trip through an inverted colour model
            assert np.abs(out.astype(int) - arr[0, 0]).max() <= 6, name


def test_load_images_lists_bad_files_and_reuses_the_cache(images: list[Path], tmp_path: Path):
    images[1].write_bytes(images[1].read_bytes()[:100])  # truncated JPEG
    paths = [*images, tmp_path / "missing.jpg"]
    cache = tmp_path / "cache"
    a = vision.load_images(paths, 32, cache_dir=cache, workers=1)
    assert a.x.shape == (6, 32, 32, 3)
    assert set(a.bad) == {1, 5} and a.bad[5] == "missing" and a.bad[1].startswith("unreadable")
    assert (np.asarray(a.x[1]) == 0).all()
    assert a.cache_file is not None and a.cache_file.is_file()
    stamp = a.cache_file.stat().st_mtime_ns
    b = vision.load_images(paths, 32, cache_dir=cache, workers=1)
    assert isinstance(b.x, np.memmap) and b.cache_file == a.cache_file and b.cache_file.stat().st_mtime_ns == stamp
    assert b.bad == a.bad and np.array_equal(np.asarray(a.x), np.asarray(b.x))
    # a changed file, or another size, is another cache entry
    _write(images[0], np.zeros((64, 64, 3), dtype=np.uint8))
    c = vision.load_images(paths, 32, cache_dir=cache, workers=1)
    assert c.cache_file != a.cache_file and (np.asarray(c.x[0]) < 3).all()
    assert vision.load_images(paths, 16, cache_dir=cache, workers=1).x.shape == (6, 16, 16, 3)
    # no cache dir: same pixels, nothing written
    d = vision.load_images(paths, 32, workers=2)
    assert np.array_equal(np.asarray(c.x), d.x) and d.cache_file is None
    assert vision.describe_bad([p.name for p in paths], a.bad) == "img_1.jpg (" + a.bad[1] + "), missing.jpg (missing)"


@pytest.mark.parametrize("chunk", [256, 7])
def test_channel_stats_match_numpy(chunk, monkeypatch):
    """The histogram's mean and std are numpy's over the rows, whatever chunks of images they are counted in."""
    from kit.vision import images

    monkeypatch.setattr(images, "STATS_CHUNK", chunk)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    x[..., 2] //= 4  # channels of different ranges: a channel's counts must not land in another's
    rows = np.arange(0, 40, 2)
    mean, std = vision.channel_stats(x, rows)
    ref = x[rows].astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 1, 2)), atol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 1, 2)), atol=1e-12)


def test_dihedral_gives_the_eight_symmetries():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    outs = {tuple(vision.dihedral(x, k).flatten().tolist()) for k in range(8)}
    assert len(outs) == 8
    rots = {tuple(torch.rot90(x, r, dims=(-2, -1)).flatten().tolist()) for r in range(4)}
    assert rots <= outs
    every = vision.Augment(flip=True, vflip=True, rot90=True)
    assert every.tta_views(0) == [0] and every.tta_views(2) == [0, 1] and len(every.tta_views(99)) == 8
    assert vision.Augment(flip=True).tta_views(8) == [0, 1]  # faces: identity and the mirror only
    assert vision.Augment().tta_views(8) == [0]  # digits: no symmetry


def test_batch_transform_normalises_augments_and_applies_tta():
    torch.manual_seed(0)
    xb = torch.randint(0, 256, (64, 8, 8, 3), dtype=torch.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    plain = vision.BatchTransform(mean, std)((xb,))[0]
    ref = (xb.permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1)
    assert plain.shape == (64, 3, 8, 8) and torch.allclose(plain, ref, atol=1e-6)
    tta = vision.BatchTransform(mean, std, tta=5)((xb,))[0]
    assert torch.allclose(tta, vision.dihedral(ref, 5), atol=1e-6)
    every = vision.Augment(flip=True, vflip=True, rot90=True)
    aug = vision.BatchTransform(mean, std, train=True, augment=every)((xb,))[0]
    # every augmented image is one of the 8 symmetries of its source, and not all are the identity
    matches = [[torch.allclose(aug[i], vision.dihedral(ref[i], k), atol=1e-6) for k in range(8)] for i in range(64)]
    assert all(any(m) for m in matches) and sum(not m[0] for m in matches) > 20
    lit = vision.BatchTransform(mean, std, train=True, augment=vision.Augment(lighting=0.3))((xb,))[0]
    assert lit.shape == ref.shape and not torch.allclose(lit, ref)
    raw = lit * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    assert raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6  # lighting keeps pixels in [0, 1]


def test_array_dataloaders_map_rows_and_predict_in_order():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    y = (rng.random((20, 4)) < 0.5).astype(np.float32)
    x_rows = np.arange(10, 30)  # item i lives in row 10 + i of x
    stats = ([0.5] * 3, [0.25] * 3)
    dls = vision.array_dataloaders(x, y, np.arange(12), np.arange(12, 20), stats, bs=4, device=torch.device("cpu"),
                                   x_rows=x_rows)
    xb, yb = dls.valid.one_batch()
    assert xb.shape == (8, 3, 16, 16) and torch.equal(yb, torch.tensor(y[12:20]))  # valid batches are 2 x bs
    assert torch.allclose(xb[0], vision.BatchTransform(*stats)((torch.from_numpy(x[22:23]),))[0][0])
    assert len(dls.train) == 3  # drop_last: 12 rows / bs 4
    from fastai.losses import BCEWithLogitsLossFlat

    learn = vision.vision_learner_for(dls, "small_cnn", 4, False, BCEWithLogitsLossFlat(), [], width=8)
    learn.model.eval()
    rows = np.array([5, 0, 29, 17, 3])
    probs = predict(learn, vision.array_test_dl(x, rows, stats, bs=2, device=torch.device("cpu")), Multilabel())
    with torch.no_grad():
        ref = torch.sigmoid(learn.model(vision.BatchTransform(*stats)((torch.from_numpy(x[rows]),))[0])).numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-5)


def test_models_build_and_run():
    m = vision.SmallCNN(17, width=8)
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 17)
    dls = vision.array_dataloaders(np.zeros((8, 32, 32, 3), np.uint8), np.zeros((8, 17), np.float32), np.arange(6),
                                   np.arange(6, 8), ([0.5] * 3, [0.2] * 3), 2, torch.device("cpu"))
    from fastai.losses import BCEWithLogitsLossFlat

    learn = vision.vision_learner_for(dls, "resnet18", 17, False, BCEWithLogitsLossFlat(), [])
    learn.model.eval()
    assert learn.model(torch.zeros(2, 3, 32, 32)).shape == (2, 17)
    with pytest.raises(Exception, match="unknown architecture"):
        vision.torchvision_arch("resnet_9000")


def test_pretrained_weights_unavailable_warns_once_and_falls_back(offline_weights, caplog):
    with caplog.at_level(logging.WARNING, logger="kit.vision"):
        assert vision.pretrained_available("resnet34") is False
        assert vision.pretrained_available("resnet34") is False
    warnings = [r for r in caplog.records if "no pretrained weights for resnet34" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "the net trains from random weights" in warnings[0].getMessage()
    assert vision.dataset_stats_or_imagenet(True, np.zeros((1, 2, 2, 3), np.uint8), np.arange(1))[0] == [
        0.485, 0.456, 0.406]


def test_a_predictor_pickled_under_its_old_path_still_loads(tmp_path: Path, monkeypatch):
    # run folders saved before the move pickle `kit.predictors.VisionPredictor`; loading maps it (predictors.MOVED)
    from kit import predictors
    from kit.tasks import TargetScaler
    from kit.vision.predictor import VisionPredictor

    assert not hasattr(predictors, "VisionPredictor")
    old = VisionPredictor(vision.SmallCNN(3, width=4).eval(), ((0.5,) * 3, (0.25,) * 3), 16, 8, [0, 1],
                          TargetScaler(), fill=np.array([0.1, 0.2, 0.7]))
    with monkeypatch.context() as m:
        m.setattr(VisionPredictor, "__module__", "kit.predictors")  # as the class was named when saved
        m.setattr(predictors, "VisionPredictor", VisionPredictor, raising=False)  # where pickle then found it
        predictors.save(old, tmp_path / "fold-0.pt")
    raw = (tmp_path / "fold-0.pt").read_bytes()
    assert b"kit.predictors\nVisionPredictor" in raw and b"kit.vision.predictor" not in raw
    new = predictors.load(tmp_path / "fold-0.pt")
    assert type(new) is VisionPredictor and new.views == [0, 1] and new.size == 16
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(new.model(x), old.model(x)) and np.array_equal(new.fill, old.fill)


def test_image_competitions_declare_params_and_refuse_missing_data_without_torch(tmp_path: Path):
    """A competition folder, its resolved parameters and `kit train`'s missing-data error import no torch or
    fastai (kit.vision's names load on first use): `kit download/submit` on an image competition start ~2.5 s
    sooner. Fails when a module a competition imports pulls torch in at its top."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from kit import registry\n"
        "from kit.commands.train import main\n"
        "from kit.vision import VisionCompetition\n"
        "names = [n for n in registry.names() if isinstance(registry.get(n), VisionCompetition)]\n"
        "for n in names:\n"
        "    registry.get(n).params()\n"
        f"    assert main(['--comp', n, '--data-dir', {str(tmp_path / 'missing')!r}]) == 3\n"
        "print(len(names), sorted(m for m in ('torch', 'fastai', 'torchvision') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "4 []", out.stdout + out.stderr
    assert out.stderr.count("folder not found") == 4

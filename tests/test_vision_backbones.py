"""Backbones (small_cnn, torchvision, timm) for every vision task; pretrained weights from local files in the
caches' layouts, refused in one line when they do not fit; fastbook chapter 7's techniques (MixUp, CutMix,
label smoothing, progressive resizing, normalisation) attached when asked and reproducible by `kit predict`."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
from fastai.callback.core import Callback
from fastai.callback.mixup import CutMix, MixUp
from fastai.losses import LabelSmoothingCrossEntropyFlat

from kit import registry, vision
from kit.errors import DataError, KitError
from kit.inference import predict_run
from kit.losses import SmoothBCEWithLogitsLossFlat
from kit.run import train_and_submit
from kit.tasks import Multiclass, Multilabel, Points
from kit.vision import weights as W

pytestmark = pytest.mark.usefixtures("offline_weights")
DIGITS = registry.get("digit-recognizer")
PLANET = registry.get("planet")
FACES = registry.get("facial-keypoints")
TINY = {"preset": "cpu", "epochs": 1, "bs": 16, "width": 8}
TIMM = "test_resnet"  # timm's 0.4M-parameter test net; its pretrained config normalises with 0.5 / 0.5


@pytest.fixture(scope="module")
def digits_src(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("digits")
    importlib.import_module("competitions.digit-recognizer.synthetic").generate(d, n_train=64, n_test=16, seed=3)
    return d


@pytest.fixture(scope="module")
def planet_src(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("planet")
    importlib.import_module("competitions.planet.synthetic").generate(d, n_train=40, n_test=8, size=32, seed=5,
                                                                     workers=1)
    return d


def _timm_file(path: Path, name: str = TIMM, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    sd = timm.create_model(name, pretrained=False).state_dict()  # with its 1000-class classifier, as timm ships
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return sd


class Spy(Callback):
    """Sees the learner after the technique callbacks (order 50): its cbs and loss, batch sizes, mixed targets."""

    order = 50

    def __init__(self) -> None:
        self.cbs, self.losses, self.sides, self.targets, self.learns = [], [], [], [], []

    def before_fit(self) -> None:
        self.cbs.append(list(self.learn.cbs))
        self.learns.append(self.learn)
        self.losses.append(self.learn.loss_func)

    def before_batch(self) -> None:
        if self.training:
            self.sides.append((self.epoch, int(self.x.shape[-1])))
            self.targets.append(self.y.detach().clone())
            self.losses.append(self.learn.loss_func)


def _fit(comp, src, spy, **params):
    data = comp.for_params(comp.params({**TINY, **params})).load(src)
    idx = np.arange(len(data.y))
    return comp.fit_fold(data, idx[::2], idx[1::2], comp.params({**TINY, **params}), seed=0, callbacks=[spy],
                         progress=False)


# ---- backbones -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["small_cnn", "resnet18", TIMM, "timm/resnet10t"])
@pytest.mark.parametrize("task", [Multiclass(), Multilabel(), Points(extent=32.0, flip_pairs=())])
def test_each_backbone_kind_builds_and_trains_for_each_task(arch, task):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    y = {"multiclass": rng.integers(0, 3, 8), "multilabel": rng.integers(0, 2, (8, 3)).astype(np.float32),
         "points": rng.uniform(-0.9, 0.9, (8, 4)).astype(np.float32)}[task.name]
    n_out = y.shape[1] if y.ndim == 2 else 3
    points = task.name == "points"
    dls = vision.array_dataloaders(x, y, np.arange(6), np.arange(6, 8), ([0.5] * 3, [0.2] * 3), 3,
                                   torch.device("cpu"), points=points)
    learn = vision.vision_learner_for(dls, arch, n_out, False, task.loss(), [], width=8,
                                      y_range=(-1.0, 1.0) if points else None, spatial=32 if points else None)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)
    learn.model.eval()
    out = learn.model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, n_out) and torch.isfinite(out).all()


def test_an_architecture_that_exists_nowhere_is_one_line_naming_where_kit_looked(digits_src, workdir, capsys):
    from kit.commands.train import main as train_main

    with pytest.raises(KitError, match="kit looked in small_cnn, torchvision.models .* and timm"):
        vision.resolve_arch("resnet_9000")
    code = train_main(["--comp", "digit-recognizer", "--data-dir", str(digits_src), "--set", "arch=resnet_9000"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "kit looked in" in err
    assert not Path("runs").exists() and not Path("submissions").exists()
    assert vision.resolve_arch("resnet18").kind == "torchvision" and vision.resolve_arch("timm/resnet18").kind == "timm"
    assert vision.resolve_arch(TIMM).kind == "timm"


# ---- weights ---------------------------------------------------------------------------------------------


def test_weights_are_found_in_the_caches_layouts(offline_weights, monkeypatch):
    root = offline_weights / "kw"
    monkeypatch.setenv("KIT_WEIGHTS", str(root))
    tv = root / "hub" / "checkpoints" / "resnet18-f37072fd.pth"  # torch hub's file name for resnet18's weights
    tv.parent.mkdir(parents=True)
    tv.write_bytes(b"x")
    hf = root / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc123" / "model.safetensors"
    hf.parent.mkdir(parents=True)
    hf.write_bytes(b"x")
    plain = root / "resnet10t.pth"
    plain.write_bytes(b"x")
    for arch, want in (("resnet18", tv), (TIMM, hf), ("timm/resnet10t", plain)):
        w = vision.find_weights(vision.resolve_arch(arch))
        assert w is not None and w.path == want.resolve() and w.source == "$KIT_WEIGHTS", arch
    # --weights: a folder is searched the same way; a file is taken as it is
    assert vision.find_weights(vision.resolve_arch("resnet18"), str(root)).path == tv.resolve()
    assert vision.find_weights(vision.resolve_arch("resnet18"), str(plain)).path == plain.resolve()


def test_no_weights_anywhere_is_one_line_and_random_weights(caplog):
    with caplog.at_level(logging.WARNING, logger="kit.vision"):
        assert vision.find_weights(vision.resolve_arch(TIMM)) is None
        assert vision.find_weights(vision.resolve_arch(TIMM)) is None
    lines = [r.getMessage() for r in caplog.records if "no pretrained weights for test_resnet" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "the net trains from random weights" in lines[0]
    assert "$KIT_WEIGHTS" in lines[0] or "--weights" in lines[0]


@pytest.mark.parametrize("kind", ["timm", "torchvision"])
def test_a_local_weights_file_is_loaded_into_the_backbone(tmp_path, kind):
    x = np.zeros((8, 32, 32, 3), np.uint8)
    dls = vision.array_dataloaders(x, np.zeros(8, np.int64), np.arange(6), np.arange(6, 8),
                                   ([0.5] * 3, [0.2] * 3), 2, torch.device("cpu"))
    if kind == "timm":
        path, arch = tmp_path / "w.safetensors", TIMM
        sd = _timm_file(path, seed=1)
    else:
        path, arch = tmp_path / "resnet18.pth", "resnet18"
        torch.manual_seed(1)
        sd = torchvision.models.resnet18().state_dict()
        torch.save(sd, path)
    learn = vision.vision_learner_for(dls, arch, 3, vision.Weights(path, "--weights"), Multiclass().loss(), [])
    if kind == "timm":
        body = learn.model[0].model.state_dict()
        assert all(torch.equal(body[k], sd[k]) for k in body)
    else:
        body = learn.model[0]
        assert torch.equal(body[0].weight, sd["conv1.weight"]) and torch.equal(body[4][0].conv1.weight,
                                                                             sd["layer1.0.conv1.weight"])
    assert not next(learn.model[0].parameters()).requires_grad  # frozen, as fastai's pretrained learners start


def test_weights_that_do_not_fit_are_refused_in_one_line(tmp_path):
    x = np.zeros((8, 32, 32, 3), np.uint8)
    dls = vision.array_dataloaders(x, np.zeros(8, np.int64), np.arange(6), np.arange(6, 8),
                                   ([0.5] * 3, [0.2] * 3), 2, torch.device("cpu"))
    other = tmp_path / "resnet10t.pth"
    _timm_file(other, "resnet10t")
    with pytest.raises(DataError, match=r"not weights for test_resnet \(.*other shapes") as e:
        vision.vision_learner_for(dls, TIMM, 3, vision.Weights(other, "--weights"), Multiclass().loss(), [])
    assert "\n" not in str(e.value)
    good = tmp_path / "test_resnet.pth"
    _timm_file(good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="cannot read the weights .truncated") as e:
        vision.vision_learner_for(dls, TIMM, 3, vision.Weights(truncated, "--weights"), Multiclass().loss(), [])
    assert "\n" not in str(e.value)
    # a whole kit model (body + head) made for another number of classes
    learn = vision.vision_learner_for(dls, TIMM, 5, False, Multiclass().loss(), [])
    full = tmp_path / "five.pth"
    torch.save(learn.model.state_dict(), full)
    with pytest.raises(DataError, match="made for 5 outputs; this run has 3"):
        vision.vision_learner_for(dls, TIMM, 3, vision.Weights(full, "--weights"), Multiclass().loss(), [])
    learn3 = vision.vision_learner_for(dls, TIMM, 5, vision.Weights(full, "--weights"), Multiclass().loss(), [])
    assert torch.equal(learn3.model[1][-1].weight, learn.model[1][-1].weight)


def test_a_run_records_its_weights_uses_their_stats_and_predict_reproduces_it(digits_src, tmp_path, workdir):
    path = tmp_path / "weights" / "test_resnet.pth"
    _timm_file(path)
    params = DIGITS.params({**TINY, "arch": TIMM, "weights": str(path), "size": 32, "mixup": 0.4,
                            "label_smoothing": 0.1, "sizes": [16, 32], "epochs": 2})
    assert params["norm"] == "auto" and params["schedule"] == "one_cycle"
    r = train_and_submit(DIGITS.for_params(params), digits_src, params, seed=1, n_folds=2, progress=False)
    rec = json.loads((r.run_dir / "record.json").read_text())
    assert rec["weights"]["sha256"] == W.sha256(path) and rec["weights"]["source"] == "--weights"
    assert r.cv.predictors[0].stats == ([0.5] * 3, [0.5] * 3)  # the timm config's, not ImageNet's or the fold's
    pred = predict_run(DIGITS, r.run_dir, digits_src)
    assert np.array_equal(pred.probs, r.cv.test)
    # kit package ships the weights file, under a name the notebook's $KIT_WEIGHTS lookup finds
    from kit import package

    pkg = package.build_package(DIGITS, r.run_dir, out_root=tmp_path / "packages", owner="bob", extra_wheels=())
    assert (pkg.dataset_dir / "weights" / "test_resnet.pth").read_bytes() == path.read_bytes()
    assert "kit.notebook" in (pkg.kernel_dir / "inference.py").read_text()  # which points $KIT_WEIGHTS at weights/
    import inspect

    from kit import notebook

    assert '"weights"' in inspect.getsource(notebook.main) and "KIT_WEIGHTS" in inspect.getsource(notebook.main)
    path.write_bytes(path.read_bytes()[:-8] + b"12345678")
    with pytest.raises(DataError, match="changed since the run"):
        package.build_package(DIGITS, r.run_dir, out_root=tmp_path / "p2", owner="bob", extra_wheels=())
    assert not (tmp_path / "p2" / "digit-recognizer").exists()


def test_the_weights_option_checks_the_file_before_anything_is_written(digits_src, workdir, capsys):
    from kit.commands.train import main as train_main

    code = train_main(["--comp", "digit-recognizer", "--data-dir", str(digits_src), "--set", f"arch={TIMM}",
                       "--weights", "no/such.pth"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "weights file not found" in err
    assert not Path("runs").exists() and not Path("submissions").exists()


def test_a_cpu_trains_channels_last_and_in_bfloat16_where_it_has_amx(digits_src, monkeypatch):
    # oneDNN's convolutions run fastest on channels-last tensors: on a CPU the batches and the model are so;
    # precision=auto autocasts the training batches to bfloat16 where the CPU has AMX tiles, bf16 always, fp32 never
    from kit import devices
    from kit.learner import BF16Autocast

    class Layout(Spy):
        def before_batch(self) -> None:
            super().before_batch()
            if not self.training:  # validation batches stay float32
                assert not torch.is_autocast_enabled("cpu")
                return
            conv = next(m for m in self.learn.model.modules() if isinstance(m, torch.nn.Conv2d))
            cl = torch.channels_last
            self.sides.append((self.x.is_contiguous(memory_format=cl), conv.weight.is_contiguous(memory_format=cl),
                               torch.is_autocast_enabled("cpu")))

    for amx, precision, on in ((True, "auto", True), (False, "auto", False), (False, "bf16", True),
                               (True, "fp32", False)):
        monkeypatch.setattr(devices, "fast_cpu_bf16", lambda amx=amx: amx)
        spy = Layout()
        out = _fit(DIGITS, digits_src, spy, precision=precision)
        assert any(isinstance(cb, BF16Autocast) for cb in spy.cbs[0]) is on, (amx, precision)
        layouts = [s for s in spy.sides if len(s) == 3]
        assert layouts and all(s[:2] == (True, True) for s in layouts), layouts
        assert all(s[2] is on for s in layouts)  # the training batches' forward under autocast, or not
        assert np.isfinite(out.valid).all() and out.valid.dtype != np.dtype("float16")


def test_residual_stages_start_as_their_stride_2_conv_and_reach_planets_model(planet_src):
    # the same convolutions; each stage's second one a branch whose BN scale starts at 0: relu(x + 0) = x after
    # the stage's ReLU'd stride-2 conv, so a new net starts as its stride-2 convs alone and learns the branches
    from kit.vision.models import _Residual

    convs = lambda m: [tuple(c.weight.shape) for c in m.modules() if isinstance(c, torch.nn.Conv2d)]  # noqa: E731
    plain, res = vision.SmallCNN(5, width=8), vision.SmallCNN(5, width=8, residual=True)
    assert convs(plain) == convs(res) and sum(isinstance(m, _Residual) for m in res.modules()) == 3
    block, x = _Residual(8), torch.relu(torch.randn(4, 8, 6, 6))
    assert torch.equal(block(x.clone()), x)
    block(x.clone()).sum().backward()
    assert block.bn.weight.grad.abs().sum() > 0 and block.conv.weight.grad is not None
    for params, on in (({}, True), ({"residual": False}, False)):  # Planet's default; --set residual=false
        spy = Spy()
        _fit(PLANET, planet_src, spy, size=24, workers=1, **params)
        model = spy.learns[0].model
        assert any(isinstance(m, _Residual) for m in model.modules()) is on


# ---- chapter 7 -------------------------------------------------------------------------------------------


def test_mixup_is_attached_and_mixes_single_label_through_the_loss(digits_src):
    spy = Spy()
    _fit(DIGITS, digits_src, spy, mixup=0.4)
    mix = [cb for cb in spy.cbs[0] if isinstance(cb, MixUp)]
    assert mix and all(getattr(f, "__func__", None) is MixUp.lf for f in spy.losses[1:])  # fastai's mixed loss
    spy = Spy()
    _fit(DIGITS, digits_src, spy)
    assert not any(isinstance(cb, (MixUp, CutMix)) for cb in spy.cbs[0])


@pytest.mark.parametrize("key, cls", [("mixup", MixUp), ("cutmix", CutMix)])
def test_mixup_and_cutmix_blend_multilabel_targets(planet_src, key, cls):
    spy = Spy()
    _fit(PLANET, planet_src, spy, size=24, workers=1, **{key: 1.0})
    assert any(isinstance(cb, cls) for cb in spy.cbs[0])
    y = torch.cat(spy.targets)
    assert ((y > 0) & (y < 1)).any()  # 0/1 tags blended by lam


def test_label_smoothing_is_the_loss(digits_src, planet_src):
    spy = Spy()
    _fit(DIGITS, digits_src, spy, label_smoothing=0.1)
    assert isinstance(spy.losses[0], LabelSmoothingCrossEntropyFlat) and spy.losses[0].func.eps == 0.1
    spy = Spy()
    _fit(PLANET, planet_src, spy, size=24, workers=1, label_smoothing=0.1)
    assert isinstance(spy.losses[0], SmoothBCEWithLogitsLossFlat) and spy.losses[0].eps == 0.1


@pytest.mark.parametrize("params, want", [({"sizes": [16, 28]}, [16, 28]), ({"progressive": 0.5}, [16, 28]),
                                          ({}, [28, 28])])
def test_progressive_resizing_trains_each_epoch_at_its_size(digits_src, params, want):
    spy = Spy()
    out = _fit(DIGITS, digits_src, spy, epochs=2, **params)
    sides = {e: s for e, s in spy.sides}
    assert [sides[0], sides[1]] == want
    assert out.predictor.size == 28  # validation and prediction at the final size


def test_norm_picks_fold_or_backbone_stats(digits_src, tmp_path):
    spy = Spy()
    fold = _fit(DIGITS, digits_src, spy, arch=TIMM, size=32, pretrained=False)
    assert fold.predictor.stats[0] != [0.5] * 3  # no weights: the training fold's statistics
    backbone = _fit(DIGITS, digits_src, Spy(), arch=TIMM, size=32, pretrained=False, norm="backbone")
    assert backbone.predictor.stats == ([0.5] * 3, [0.5] * 3)


@pytest.mark.parametrize("comp, params, message", [
    (FACES, {"mixup": 0.4}, "keypoints cannot be blended"),
    (FACES, {"label_smoothing": 0.1}, "label_smoothing is for class targets"),
    (FACES, {"sizes": [32, 64]}, "small_cnn's point head is made for one input size"),
    (DIGITS, {"mixup": 0.4, "cutmix": 1.0}, "use one"),
    (DIGITS, {"mixup": -1.5}, "alpha"),
    (DIGITS, {"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
    (DIGITS, {"sizes": [16, 20]}, "ending at size=28"),
    (DIGITS, {"sizes": [16, 20, 24, 28], "epochs": 2}, "at most one per epoch"),
    (DIGITS, {"norm": "imagenet"}, "norm must be one of auto, backbone, fold"),
    (DIGITS, {"weights": "x.pth"}, "small_cnn has no pretrained weights"),
])
def test_bad_technique_values_are_one_line(comp, params, message):
    with pytest.raises((KitError, DataError), match=message) as e:
        comp.params({"preset": "cpu", **params})
    assert "\n" not in str(e.value)


def test_tune_searches_the_techniques_with_the_defaults_off():
    from kit.tune.objective import FixedParams, _probe_trial, default_trial

    for comp in (DIGITS, PLANET):
        trial = _probe_trial()
        space = comp.search_space(FixedParams(trial, {}))
        assert {"mixup", "label_smoothing", "progressive"} <= set(space), comp.name
        comp.params(space)
        d = default_trial(comp, {})  # the defaults trial is the preset's: techniques off but what an A/B kept
        kept = comp.presets["cpu"].label_smoothing
        assert d["mixup"] == 0.0 and d["label_smoothing"] == kept and d["progressive"] == 0.0
    assert "mixup" not in FACES.search_space(FixedParams(_probe_trial(), {}))


def test_same_seed_same_submission_bytes_with_every_technique(digits_src, tmp_path, workdir):
    params = DIGITS.params({**TINY, "epochs": 2, "mixup": 0.4, "label_smoothing": 0.1, "progressive": 0.6})
    a = train_and_submit(DIGITS, digits_src, params, seed=7, n_folds=2, out=tmp_path / "a", progress=False)
    b = train_and_submit(DIGITS, digits_src, params, seed=7, n_folds=2, out=tmp_path / "b", progress=False)
    assert a.submission.read_bytes() == b.submission.read_bytes()
    assert np.array_equal(predict_run(DIGITS, a.run_dir, digits_src).probs, a.cv.test)

"""The tabular nets (kit.nets): the modern MLP (`mlp`, arch=modern, the template's default) and TabM (`--model
tabm`), on tiny generated tables of every task kind; their encoder, losses, callbacks and modules."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kit import devices, learner, registry
from kit.cv import cross_validate
from kit.errors import KitError
from kit.learner import BF16Autocast
from kit.losses import EnsembleLoss, SmoothBCEWithLogitsLossFlat
from kit.nets.callbacks import BestEpoch
from kit.nets.features import NetFeatures, smooth_clip
from kit.nets.fit import (
    auto_batch_size,
    auto_epochs,
    auto_models,
    bf16,
    fold_batch_size,
    fold_epochs,
    numeric_bins,
)
from kit.nets.modules import FastDropout, TabM, TabularMLP
from kit.nets.targets import fold_target, log_probe_z, mean_factor, probe_applies, target_scaler
from kit.tasks import Binary, Multiclass, Regression
from tests.test_contract import (  # noqa: F401
    FAST,
    binary_yes_no,
    comps_root,
    label_sample,
    prob_sample,
    raw_scale,
    tags,
    text_labels,
    train,
    train_main,
    write_comp,
)

QUICK = {"width": 32, "depth": 2, "d_emb": 4}
CASES = {
    "binary": ("binary", "auc", binary_yes_no, prob_sample),
    "multiclass": ("multiclass", "accuracy", text_labels, label_sample),
    "regression": ("regression", "rmse", raw_scale, label_sample),
    "multilabel": ("multilabel", "f2_samples", tags, label_sample),
}


@pytest.mark.parametrize("family", ["mlp", "tabm"])
@pytest.mark.parametrize("kind", list(CASES))
def test_net_learns_every_task_kind_deterministically(comps_root, family, kind):  # noqa: F811
    task, metric, target, sample = CASES[kind]
    name = f"n_{kind}_{family}"
    d = write_comp(comps_root, name, task, metric, target, sample, n=240, n_test=40)
    comp = registry.get(name).with_model(family)
    assert comp.net_kind(comp.default_params) == family  # the template's default is the modern MLP
    data = comp.load(d)
    params = comp.params({**QUICK, **({"k": 4} if family == "tabm" else {"arch": "modern"})})  # data-sized epochs
    a = cross_validate(comp, data, params, seed=1, n_folds=3, progress=False)
    # the seed fixes everything: fold 1 again (cross_validate's fold k trains with seed + k) gives the same bytes
    va = np.flatnonzero(a.folds == 1)
    again = comp.fit_fold(data, np.flatnonzero(a.folds != 1), va, params, seed=2, progress=False)
    assert np.array_equal(again.valid, a.oof[va]) and again.test.shape == a.test.shape
    if kind == "binary":
        assert a.oof.ndim == 1 and ((a.oof > 0) & (a.oof < 1)).all() and a.mean > 0.75
    elif kind == "multiclass":
        assert a.oof.shape[1] == 3 and np.allclose(a.oof.sum(1), 1, atol=1e-5) and a.mean > 0.6
    elif kind == "regression":
        assert a.mean < 0.6 * data.y.std()
    else:
        assert a.oof.shape[1] == 3 and a.mean > 0.6


def test_piecewise_linear_embeddings_take_the_training_folds_quantiles(comps_root):  # noqa: F811
    x = np.column_stack([np.arange(100.0), np.full(100, 3.0), np.repeat([0.0, 1.0, 5.0, 9.0], 25)])
    bins = numeric_bins(x, n_bins=8)
    assert len(bins[0]) == 9 and bins[0][0] == 0 and bins[0][-1] == 99  # quantile edges over the fold's range
    assert bins[1].tolist() == [2.0, 4.0]  # a constant column: two edges around its value
    assert bins[2][0] == 0 and bins[2][-1] == 9 and (bins[2].diff() > 0).all()  # distinct, increasing edges
    d = write_comp(comps_root, "n_ple", "regression", "rmse", raw_scale, label_sample, n=240, n_test=40)
    comp = registry.get("n_ple").with_model("mlp")
    data = comp.load(d)
    params = comp.params({**QUICK, "arch": "modern", "num_emb": "ple", "n_bins": 16, "epochs": 3})
    idx = np.arange(len(data.y))
    out = comp.fit_fold(data, idx[:180], idx[180:], params, seed=0, progress=False)
    from rtdl_num_embeddings import PiecewiseLinearEmbeddings

    net = out.predictor.models[0]
    assert isinstance(net.encoder.numbers, PiecewiseLinearEmbeddings)
    again = pickle.loads(pickle.dumps(out.predictor))  # the edges travel with the fold's model
    assert np.array_equal(again.predict(comp, data), out.test)
    with pytest.raises(ValueError, match="bin edges"):
        TabularMLP(2, [], 1, num_emb="ple")


def test_auto_is_the_seeds_mlp_on_small_tables_and_the_modern_net_on_larger_ones(comps_root):  # noqa: F811
    import torch.nn as nn

    from kit.nets.params import AUTO_SEED_ROWS

    d = write_comp(comps_root, "nauto", "binary", "auc", binary_yes_no, prob_sample, n=AUTO_SEED_ROWS + 300,
                   n_test=20)
    comp = registry.get("nauto")
    data = comp.load(d)
    params = comp.params({"epochs": 1})
    assert params["arch"] == "auto" and comp.net_kind(params, 10) == "seed"
    small = np.arange(200)
    out = comp.fit_fold(data, small[:150], small[150:], params, seed=0, progress=False)
    assert isinstance(out.predictor.models[0], nn.Sequential)  # the seeds' MLP
    assert out.predictor.models[0][0].out_features == 128  # with its own width, not the modern 256
    big = np.arange(len(data.y))
    out = comp.fit_fold(data, big[: AUTO_SEED_ROWS + 100], big[AUTO_SEED_ROWS + 100 :], params, seed=0,
                        progress=False)
    assert isinstance(out.predictor.models[0], TabularMLP)


def test_net_features_are_fit_on_the_training_rows_only():
    tr = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 100.0] * 4, "const": 1.0, "empty": np.nan,
                       "city": ["x", "y", "x", None, "z"] * 4, "many": [f"l{i}" for i in range(20)]})
    te = pd.DataFrame({"a": [1e9, np.nan], "const": [1.0, 1.0], "empty": [np.nan, 2.0], "city": ["unseen", "y"],
                       "many": ["l3", "never"]})
    enc = NetFeatures(["a", "const", "empty"], ["city", "many"], min_count=1, max_levels=5).fit(tr)
    x = enc.transform(te)
    # a is a number (with a missing indicator); const (one value) and empty (none) are value codes; 3 + 1, 5 + 1
    assert enc.n_numeric == 1 and enc.cardinalities == [2, 2, 1, 4, 6]
    assert x.shape == (2, 1 + 5) and np.isfinite(x).all()
    assert abs(x[0, 0]) <= 3  # an outlier test value is smoothly clipped, never 1e9 / IQR
    assert x[1, 1] == 1 and x[0, 1] == 0  # a's missing indicator
    assert list(x[:, 2]) == [1, 1] and list(x[:, 3]) == [0, 0]  # const's one value; empty never saw 2.0
    assert x[0, 4] == 0 and x[1, 4] > 0  # an unseen city is code 0; a known one is not
    assert x[1, 5] == 0  # a level outside the 5 kept ones is code 0
    assert np.allclose(smooth_clip(np.array([0.0, 1e6, -1e6])), [0, 3, -3], atol=1e-4)
    q = NetFeatures(["a"], [], num_transform="quantile").fit(tr).transform(te)
    assert np.isfinite(q).all()
    with pytest.raises(KitError, match="num_transform must be one of"):
        NetFeatures(["a"], [], num_transform="log").fit(tr)


def test_two_valued_numbers_are_codes_not_embedded_numbers():
    tr = pd.DataFrame({"flag": [0, 1, 1, 0] * 5, "two": [5.0, 7.0, np.nan, 7.0] * 5, "x": np.arange(20.0)})
    te = pd.DataFrame({"flag": [1, 0], "two": [6.0, 5.0], "x": [3.0, 4.0]})
    enc = NetFeatures(["flag", "two", "x"], [], num_transform="quantile").fit(tr)
    x = enc.transform(te)
    # any function of a two-valued column is affine in it: a periodic embedding of one adds only cost
    assert enc.n_numeric == 1 and enc.cardinalities == [3, 3]  # codes 1..2, 0 for missing or unseen
    assert x[:, 1:].tolist() == [[2, 0], [1, 1]]  # 6.0 was never seen in training: code 0, as a missing value
    net = TabularMLP(enc.n_numeric, enc.cardinalities, 1)
    assert net.encoder.onehot == [0, 1] and net(torch.as_tensor(x)).shape == (2, 1)


def test_batch_size_and_epochs_follow_the_data_size():
    assert auto_batch_size(700) == 32 and auto_batch_size(3_000) == 128 and auto_batch_size(40_000) == 512
    assert auto_batch_size(100_000) == auto_batch_size(4_000_000) == 1024 and auto_batch_size(3_000, per=64) == 64
    # the epochs do not follow the batch: ~1,500 steps of a rows/64 batch, capped at 600k rows seen
    assert auto_epochs(400_000) == 4 < auto_epochs(20_000) < auto_epochs(3_000) == 33
    # the modern MLP: twice the batch again for classification, two nets a fold; TabM one net at rows/32
    binary, regression = Binary(), Regression()
    assert fold_batch_size("mlp", binary, 3_000) == 256 and fold_batch_size("mlp", binary, 20_000) == 1024
    assert fold_batch_size("mlp", regression, 3_000) == fold_batch_size("tabm", binary, 3_000) == 128
    assert auto_models("mlp") == 2 and auto_models("tabm") == 1
    # the MLP's regression sees half the rows per fold (its batches are half as large): the same steps
    assert fold_epochs("mlp", regression, 38_400) == 10 and fold_epochs("mlp", binary, 38_400) == 16
    assert fold_epochs("mlp", regression, 12_900) == auto_epochs(12_900) == 30
    assert fold_epochs("tabm", regression, 38_400) == 16 and fold_epochs("mlp", regression, 5_000) == auto_epochs(5_000)


def test_skewed_non_negative_targets_are_fit_on_log1p_and_clipped_to_the_range():
    rng = np.random.default_rng(0)
    price = np.exp(rng.normal(7, 1, 2000))
    s = target_scaler(Regression(), price, "auto")
    assert s.transform == "log1p" and s.inverse(np.array([50.0]))[0] == pytest.approx(price.max())
    assert target_scaler(Regression(), rng.normal(size=500), "auto").transform is None  # symmetric: as it is
    assert target_scaler(Regression(), price, "none").transform is None
    assert target_scaler(Regression(), price, "auto", "rmse").transform is None  # squared error: the raw mean
    assert target_scaler(Regression(), price, "auto", "mae").transform == "log1p"  # log1p keeps the median


def level_prices(seed: int, multiplicative: bool, n: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Six 5-level factors whose effects multiply a price (log-additive) or add to it, small noise of each kind."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=(n, 6))
    effect = rng.normal(0, 0.5, size=(6, 5))[np.arange(6), x].sum(axis=1)
    y = np.exp(3 + effect + rng.normal(0, 0.2, n)) if multiplicative else 30 + 8 * effect + rng.normal(0, 1.5, n)
    return x.astype(np.float32), np.clip(y, 0, None)


def test_under_rmse_the_log_scale_is_taken_only_where_a_probe_on_the_training_fold_finds_it_pays():
    task = Regression()
    x, price = level_prices(0, multiplicative=True)
    scaler, restore = fold_target(task, price, "auto", "rmse", x, seed=0)
    assert scaler.transform == "log1p" and restore  # log1p with the arithmetic mean restored (log1p_mean)
    assert log_probe_z(x, price, 0) == log_probe_z(x, price, 0) > 3  # deterministic with the seed
    x, sum_ = level_prices(0, multiplicative=False)
    scaler, restore = fold_target(task, sum_, "auto", "rmse", x, seed=0)
    assert scaler.transform is None and not restore and log_probe_z(x, sum_, 0) < 3
    x, price = level_prices(1, multiplicative=True)
    assert fold_target(task, price, "none", "rmse", x, seed=0)[0].transform is None  # asked for: no probe
    assert fold_target(task, price, "auto", "mae", x, seed=0)[0].transform == "log1p"  # the skew rule, no probe
    assert not fold_target(task, price, "auto", "mae", x, seed=0)[1]
    assert probe_applies(task, price, "rmse") and not probe_applies(task, price[:999], "rmse")
    assert not probe_applies(task, price - price.mean(), "rmse") and not probe_applies(Binary(), price, "rmse")


def expense(df, rng):
    return np.round(np.exp(1 + 0.8 * df["b"] + 0.5 * (df["city"] == "rome") + rng.normal(0, 1.2, len(df))), 2)


def test_log1p_mean_restores_the_arithmetic_mean_that_rmse_rewards(comps_root):  # noqa: F811
    rng = np.random.default_rng(0)
    log_fit = rng.normal(2, 0.1, 5000)
    y = np.expm1(log_fit + rng.normal(0, 1, 5000))  # the net's log-space fit is exact; the noise is multiplicative
    geo = np.expm1(log_fit)
    s = mean_factor(y, geo)
    assert s > 1.3 and abs(np.mean((1 + geo) * s - 1) - y.mean()) < 0.1 * y.mean()
    assert np.sqrt(np.mean(((1 + geo) * s - 1 - y) ** 2)) < np.sqrt(np.mean((geo - y) ** 2))
    assert target_scaler(Regression(), y, "log1p_mean").transform == "log1p"
    d = write_comp(comps_root, "n_expense", "regression", "rmse", expense, label_sample, n=300, n_test=40)
    comp = registry.get("n_expense")
    data = comp.load(d)
    runs = {t: cross_validate(comp, data, comp.params({**QUICK, "arch": "modern", "epochs": 6,
                                                       "target_transform": t}), seed=0, n_folds=3, progress=False,
                             keep_predictors=True)
            for t in ("log1p", "log1p_mean")}
    assert all(p.scaler.factor > 1 for p in runs["log1p_mean"].predictors)
    assert all(p.scaler.factor == 1 for p in runs["log1p"].predictors)
    assert runs["log1p_mean"].oof.mean() > runs["log1p"].oof.mean()  # the geometric mean sits below y's mean


def test_label_smoothing_and_the_ensemble_loss():
    logits, y = torch.tensor([[4.0], [-4.0]]), torch.tensor([[1.0], [0.0]])
    plain = Binary().loss()(logits, y)
    smooth = Binary().loss(0.1)(logits, y)
    assert isinstance(Binary().loss(0.1), SmoothBCEWithLogitsLossFlat) and smooth > plain
    assert type(Multiclass().loss(0.1)).__name__ == "LabelSmoothingCrossEntropyFlat"
    heads = torch.randn(5, 3, 1)
    targ = torch.randint(0, 2, (5, 1)).float()
    loss = EnsembleLoss(Binary().loss())
    per_head = torch.stack([Binary().loss()(heads[:, i], targ) for i in range(3)]).mean()
    assert torch.allclose(loss(heads, targ), per_head)
    assert torch.allclose(loss.activation(torch.zeros(2)), torch.full((2,), 0.5))


def test_tabm_trains_every_head_and_predicts_their_mean_probability():
    torch.manual_seed(0)
    m = TabM(2, [3], 4, "softmax", k=5, width=16, depth=2)
    x = torch.tensor([[0.1, -0.2, 1.0], [1.0, 0.5, 2.0]])
    assert m.train()(x).shape == (2, 5, 4)
    out = m.eval()(x)
    heads = m.net(m.encoder(x))
    assert torch.allclose(torch.softmax(out, -1), torch.softmax(heads, -1).mean(1), atol=1e-6)
    b = TabM(2, [3], 1, "sigmoid", k=3, width=8, depth=1).eval()
    p = torch.sigmoid(b(x))
    assert torch.allclose(p, torch.sigmoid(b.net(b.encoder(x))).mean(1), atol=1e-5)
    with pytest.raises(ValueError, match="combine"):
        TabM(2, [], 1, "mean")
    packed = TabM(2, [3], 1, "identity", k=2, width=8, depth=1, arch_type="tabm-packed")
    assert packed.train()(x).shape == (2, 2, 1)  # two independent MLPs: their first layers differ
    w = next(p for n, p in packed.net.backbone.named_parameters() if n.endswith("weight"))
    assert w.shape[0] == 2 and not torch.equal(w[0], w[1])


def test_front_scale_starts_as_the_identity_and_learns_lr_mult_times_faster():
    from kit.nets.modules import FrontScale

    x = torch.tensor([[0.1, -0.2, 1.0], [1.0, 0.5, 2.0]])
    torch.manual_seed(0)
    plain = TabularMLP(2, [3], 1, 16, 2, 0.0)
    torch.manual_seed(0)
    scaled = TabularMLP(2, [3], 1, 16, 2, 0.0, front_scale=6.0)
    assert isinstance(scaled.body[0], FrontScale) and not any(isinstance(m, FrontScale) for m in plain.modules())
    assert torch.allclose(plain.eval()(x), scaled.eval()(x))  # the same weights, the scale at 1
    steps = {}
    for mult in (1.0, 6.0):
        layer = FrontScale(4, mult)
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(torch.ones(2, 4)).sum().backward()
        opt.step()
        steps[mult] = float((layer.weight * layer.lr_mult - 1).abs().mean())
    assert steps[6.0] == pytest.approx(6 * steps[1.0], rel=1e-4)  # Adam's step is lr a unit: the scale moves 6x
    t = TabM(2, [3], 1, "identity", k=2, width=8, depth=1, front_scale=6.0)
    assert isinstance(t.scale, FrontScale)
    old = pickle.loads(pickle.dumps(TabM(2, [3], 1, "identity", k=2, width=8, depth=1)))
    del old._modules["scale"]  # a TabM pickled before the scale existed
    assert pickle.loads(pickle.dumps(old)).eval()(x).shape == (2, 1)


def test_chosen_epoch_restores_the_best_validation_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    dls, _ = learner.tensor_dataloaders(x[:150], y[:150], x[150:], y[150:], x[:0], 32, Binary())
    learn = learner.make_learner(dls, TabularMLP(3, [], 1, 16, 1, 0.0, "none"), Binary(), 0.5, 0.0)
    best = BestEpoch()
    learner.seed_everything(0)
    learner.fit(learn, 8, 0.5, None, cbs=[best], progress=False)  # a large lr: epochs get worse
    losses = [h["valid_loss"] for h in learner.history(learn)]
    assert best.chosen_epoch == int(np.argmin(losses))
    assert learn.validate()[0] == pytest.approx(min(losses), rel=1e-5)


def test_event_learner_calls_the_same_handlers_in_the_same_order_as_fastais_learner():
    """kit's Learner skips only callbacks without a handler: the calls, their order, a callback added for one fit,
    a handler given as a keyword (fastai's funcs_kwargs), `run=False` and after_fit's reset are fastai's."""
    from fastai.callback.core import Callback
    from fastai.learner import Learner

    def calls(cls: type) -> tuple[list, float]:
        seen: list = []

        class Early(Callback):
            order = -5

            def before_fit(self):
                seen.append(("early", "before_fit"))

            def after_batch(self):
                seen.append(("early", "after_batch", self.training, self.iter))

        class Late(Callback):
            order = 50

            def before_batch(self):
                seen.append(("late", "before_batch", self.training))

            def after_loss(self):
                seen.append(("late", "after_loss"))

            def after_epoch(self):
                seen.append(("late", "after_epoch", self.epoch))
                self.run = self.epoch < 1  # off for the rest of this fit; after_fit turns it on again

        class Once(Callback):
            def after_step(self):
                seen.append(("once", "after_step"))

        keyword = Callback(before_epoch=lambda self: seen.append(("keyword", "before_epoch")))
        rng = np.random.default_rng(0)
        x = rng.normal(size=(96, 3)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.float32)
        learner.seed_everything(0)
        dls, _ = learner.tensor_dataloaders(x[:64], y[:64], x[64:], y[64:], x[:0], 16, Binary())
        learn = cls(dls, TabularMLP(3, [], 1, 8, 1, 0.0, "none"), loss_func=Binary().loss(),
                    cbs=[Early(), keyword, Late()])
        learn.fit(3, 1e-2, cbs=[Once()])  # added for this fit only
        learn.fit(3, 1e-2)  # Late runs again: after_fit reset its `run`
        return seen, float(learn.validate()[0])

    kit_calls, kit_loss = calls(learner.EventLearner)
    fastai_calls, fastai_loss = calls(Learner)
    assert kit_calls == fastai_calls and kit_loss == fastai_loss
    # off after epoch 1 in each fit, on again at the next (validate() runs an epoch's events too)
    assert [c[2] for c in kit_calls if c[:2] == ("late", "after_epoch")] == [0, 1, 0, 1, 0]
    assert kit_calls.count(("once", "after_step")) == 4 * 3  # 64 rows in batches of 16, three epochs, one fit
    assert kit_calls.count(("keyword", "before_epoch")) == 2 * 3 + 1  # two fits of three epochs, and validate()'s
    assert isinstance(learner.make_learner(*_tiny_learner_args()), learner.EventLearner)


def _tiny_learner_args() -> tuple:
    x = np.zeros((8, 2), dtype=np.float32)
    dls, _ = learner.tensor_dataloaders(x, np.zeros(8, np.float32), x, np.zeros(8, np.float32), x[:0], 4, Binary())
    return dls, TabularMLP(2, [], 1, 4, 1, 0.0, "none"), Binary(), 1e-2, 0.0


def test_fast_dropout_drops_p_of_the_units_reproducibly_and_is_the_identity_in_eval():
    torch.manual_seed(0)
    a = FastDropout(0.25)
    torch.manual_seed(0)
    b = FastDropout(0.25)
    x = torch.ones(400, 250, requires_grad=True)
    y = a(x)
    assert torch.equal(y, b(x))  # seeded from torch's generator: a seeded fit draws the same masks
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01 and torch.allclose(y[kept], torch.tensor(256 / 192))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient flows through the kept units, scaled alike
    assert not torch.equal(a(x), y)  # a new mask every batch
    c = pickle.loads(pickle.dumps(b))  # saved fold models carry the generator, as a plain state dict
    assert torch.equal(c(x), b(x)) and isinstance(b.__getstate__()["rng"], dict)
    a.eval()
    assert a(x) is x
    assert FastDropout(0.0)(x) is x
    near_one = FastDropout(0.999)(x)  # rounds to 255/256, not to a division by zero
    assert torch.isfinite(near_one).all() and 0 < (near_one != 0).float().mean().item() < 0.01
    for dtype in (torch.float32, torch.bfloat16, torch.float64):  # the mask: 0 below the threshold, else 1/(1-p)
        for p in (0.1, 0.5, 0.999):
            torch.manual_seed(1)
            d, z = FastDropout(p), torch.randn(64, 33).to(dtype)
            draws = torch.from_numpy(np.frombuffer(copy.deepcopy(d.rng).bytes(z.numel()), np.uint8).copy())
            keep = 1 / (1 - d.threshold / 256)
            want = z * torch.where(draws.view(z.shape) >= d.threshold, torch.tensor(keep).to(dtype), 0).to(dtype)
            assert torch.equal(d(z), want), (dtype, p)
    # the modern nets' dropouts are all FastDropout (TabM's inside the tabm package's block too)
    for net in (TabularMLP(3, [5], 1), TabM(3, [5], 1, "identity", k=2)):
        drops = [m for m in net.modules() if isinstance(m, torch.nn.Dropout | FastDropout)]
        assert drops and all(isinstance(m, FastDropout) for m in drops)


def test_bfloat16_autocast_runs_the_training_batches_where_the_cpu_has_amx(tmp_path, monkeypatch):
    amx, avx = tmp_path / "amx", tmp_path / "avx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n")
    avx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_bf16\n")
    assert devices.fast_cpu_bf16(amx) and not devices.fast_cpu_bf16(avx)
    assert not devices.fast_cpu_bf16(tmp_path / "none")  # no /proc/cpuinfo: float32
    for flag in (True, False):
        monkeypatch.setattr(devices, "fast_cpu_bf16", lambda flag=flag: flag)
        assert bf16("auto") is flag and bf16("bf16") and not bf16("fp32")
        assert not bf16("auto", 256) and bf16("bf16", 64)  # small batches gain nothing from it
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    for cbs, train_dtype in (([BF16Autocast()], torch.bfloat16), ([], torch.float32)):
        learner.seed_everything(0)
        dls, _ = learner.tensor_dataloaders(x[:200], y[:200], x[200:], y[200:], x[:0], 50, Binary())
        net = TabularMLP(3, [], 1, 32, 2, 0.1, "none")
        seen = set()
        net.body[0].register_forward_hook(lambda m, i, o, seen=seen: seen.add((m.training, o.dtype)))
        learn = learner.make_learner(dls, net, Binary(), 1e-2, 0.0, opt_func=learner.torch_adamw)
        learner.fit(learn, 4, 1e-2, None, cbs=cbs, progress=False)
        assert seen == {(True, train_dtype), (False, torch.float32)}  # validation in float32
        assert all(p.dtype == torch.float32 for p in net.parameters())
        assert learn.opt.opt.defaults["fused"]  # torch's fused AdamW step on a CPU
        assert learner.history(learn)[-1]["valid_loss"] < 0.5  # it learns (log 2 = 0.69 at chance)


def test_bad_net_parameters_are_one_line(comps_root):  # noqa: F811
    write_comp(comps_root, "nbad", "binary", "auc", binary_yes_no, prob_sample, n=60, n_test=10)
    comp = registry.get("nbad")
    for bad, msg in (({"num_emb": "fourier"}, "num_emb must be one of periodic, ple, none"),
                     ({"label_smoothing": 0.7}, r"label_smoothing must be in \[0, 0.5\)"),
                     ({"bs": -1}, "bs must be >= 1, or 0"),
                     ({"arch": "resnet"}, "arch must be one of auto, modern, seed"),
                     ({"precision": "fp16"}, "precision must be one of auto, fp32, bf16")):
        with pytest.raises(KitError, match=msg):
            comp.check_params(comp.params(bad))


def _write_table(root, name: str, train: pd.DataFrame, test: pd.DataFrame, numeric: list[str],
                 categorical: list[str]):
    pkg = root / "comps" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"""from kit.tabular import TabularCompetition


class Odd(TabularCompetition):
    name, slug, task, metric = {name!r}, {name!r}, "binary", "auc"
    id_col, target_col = "id", "target"
    raw_columns = {[*numeric, *categorical]!r}
    numeric_features = {numeric!r}
    categorical_features = {categorical!r}


COMPETITION = Odd()
""")
    d = root / "data" / name
    d.mkdir(parents=True)
    train.to_csv(d / "train.csv", index=False)
    test.to_csv(d / "test.csv", index=False)
    test[["id"]].assign(target=0.5).to_csv(d / "sample_submission.csv", index=False)
    return d


def test_odd_columns_are_said_and_handled_and_text_in_a_numeric_column_is_refused(comps_root):  # noqa: F811
    import logging

    from kit.errors import DataError

    rng = np.random.default_rng(0)
    n = 2600
    df = pd.DataFrame({"id": np.arange(n), "a": rng.normal(size=n), "const": 7.0, "empty": np.nan,
                       "many": [f"u{i}" for i in rng.integers(0, 1500, n)]})
    df["target"] = np.where(df["a"] + rng.normal(0, 0.5, n) > 0, "yes", "no")
    train, test = df.iloc[:2400], df.iloc[2400:].drop(columns="target")
    d = _write_table(comps_root, "odd", train, test, ["a", "const", "empty"], ["many"])
    comp = registry.get("odd")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("kit.tabular")
    logger.addHandler(handler)
    try:
        data = comp.load(d)
    finally:
        logger.removeHandler(handler)
    said = " ".join(r.getMessage() for r in records)
    assert "column const is constant (7.0)" in said and "column empty is empty" in said
    assert "column many has 1" in said and "most frequent" in said
    params = comp.params({"epochs": 2, "width": 16, "depth": 1, "d_emb": 4})
    cv = cross_validate(comp, data, params, seed=0, n_folds=2, progress=False)
    assert np.isfinite(cv.oof).all() and cv.mean > 0.7
    bad = test.copy()
    bad["a"] = bad["a"].astype(object)
    bad.loc[bad.index[3], "a"] = "n/a?"
    d2 = _write_table(comps_root, "odd2", train, bad, ["a"], ["many"])
    with pytest.raises(DataError, match=r"test.csv: row 5, column a: 'n/a\?' is not a number"):
        registry.get("odd2").load(d2)


def test_large_categoricals_are_target_encoded_without_their_own_labels():
    rng = np.random.default_rng(0)
    n = 600
    city = rng.integers(0, 30, n)
    y = ((city % 3 == 0) ^ (rng.random(n) < 0.15)).astype(np.int64)
    X = pd.DataFrame({"a": rng.normal(size=n), "city": [f"c{c}" for c in city], "small": rng.choice(["u", "v"], n)})
    enc = NetFeatures(["a"], ["city", "small"], num_transform="standard", target_type="binary", seed=0)
    with warnings.catch_warnings():  # what users see: scikit-learn 1.9 warns on TargetEncoder(shuffle=...)
        warnings.simplefilter("error", FutureWarning)
        train_x = enc.fit_transform(X, y)
        price = NetFeatures(["a"], ["city"], num_transform="standard", target_type="continuous", seed=0)
        by_price = price.fit_transform(X, city * 1.5 + rng.normal(size=n))
    assert enc.te_columns_ == ["city"] and enc.n_numeric == 2  # a, and city's encoding; small has 2 levels
    assert np.array_equal(train_x, NetFeatures(["a"], ["city", "small"], num_transform="standard",
                                               target_type="binary", seed=0).fit_transform(X, y))
    other = NetFeatures(["a"], ["city", "small"], num_transform="standard", target_type="binary", seed=1)
    assert not np.array_equal(train_x[:, 1], other.fit_transform(X, y)[:, 1])  # the seed shuffles the folds
    assert np.corrcoef(by_price[:, 1], city)[0, 1] > 0.9
    again = enc.transform(X)
    assert not np.allclose(train_x[:, 1], again[:, 1])  # cross-fitted on the training fold, full fit after
    assert np.corrcoef(again[:, 1], city % 3 == 0)[0, 1] > 0.9
    plain = NetFeatures(["a"], ["city"]).fit(X, y)  # no target type (multi-label): codes only
    assert plain.te_columns_ == [] and plain.n_numeric == 1


def test_tune_searches_tabm_in_its_own_study(titanic_dir, workdir, capsys):
    from kit.commands.tune import main as tune_main

    rc = tune_main(["--comp", "titanic", "--data-dir", str(titanic_dir), "--model", "tabm", "--n-trials", "2",
                    "--folds", "2", "--repeats", "1", "--set", "epochs=1", "--set", "d_emb=4", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "study titanic-tabm" in out and "'k':" in out and "'front_scale':" in out


def test_one_hot_columns_are_one_scatter_and_old_pickled_encoders_still_predict():
    import io

    import torch.nn.functional as F

    from kit.nets.modules import InputEncoder

    torch.manual_seed(0)
    cards = [3, 9, 2, 50, 5, 1]
    enc = InputEncoder(4, cards).eval()
    codes = torch.stack([torch.randint(-1, c + 2, (64,)) for c in cards], 1)  # out-of-range codes are clamped
    x = torch.cat([torch.randn(64, 4), codes.float()], 1)
    blocks = [F.one_hot(codes[:, i].clamp(0, cards[i] - 1), cards[i]).float() for i in enc.onehot]
    embedded = [e(codes[:, i].clamp(0, e.num_embeddings - 1)) for i, e in zip(enc.embedded, enc.embeddings,
                                                                             strict=True)]
    assert torch.equal(enc(x), torch.cat([enc.numbers(x[:, :4]).flatten(1), *blocks, *embedded], 1))
    assert enc.n_out == enc(x).shape[1] and not any(k.startswith("onehot") for k in enc.state_dict())
    old = pickle.loads(pickle.dumps(enc))  # an encoder pickled before the scatter existed: no buffers
    for k in ("onehot_at", "onehot_max", "onehot_offset"):
        del old._buffers[k]
    del old.n_onehot
    # and the numbers' embedding under its old name, `periodic`
    old._modules = {("periodic" if k == "numbers" else k): v for k, v in old._modules.items()}
    buf = io.BytesIO()
    torch.save(old, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf, weights_only=False)(x), enc(x))


def test_folds_in_worker_processes_match_one_process_and_their_errors_are_one_line(comps_root, capsys):  # noqa: F811
    # `--jobs 2` spreads the folds over two spawned workers of one thread (the competition comes from a folder
    # outside competitions/): the same submission bytes as one process on one thread, fold models saved that
    # `kit predict` reproduces; a fold's error inside a worker ends the run in one line.
    from kit.commands.predict import main as predict_main

    d = write_comp(comps_root, "n_jobs", "regression", "rmse", raw_scale, label_sample, n=240, n_test=40)
    quick = ["--set", "arch=modern", "--set", "width=32", "--set", "depth=1", "--set", "epochs=3",
             "--set", "n_models=1", "--threads", "1"]
    one, _ = train(capsys, "n_jobs", d, *quick, "--jobs", "1")
    one_bytes = one.read_bytes()
    two, rec = train(capsys, "n_jobs", d, *quick, "--jobs", "2")
    assert two.read_bytes() == one_bytes
    assert predict_main(["--comp", "n_jobs", "--data-dir", str(d), "--run", Path(rec["run_dir"]).name, "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]).read_bytes() == one_bytes
    bad = pd.read_csv(d / "train.csv").assign(target=lambda t: t["target"] - 1000)
    bad.to_csv(d / "train.csv", index=False)
    before = sorted(p.name for p in Path("submissions").rglob("*"))
    rc = train_main(["--comp", "n_jobs", "--data-dir", str(d), *FAST, *quick, "--jobs", "2",
                     "--set", "target_transform=log1p"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err[-1] == "error: target_transform=log1p needs targets > -1", err[-3:]
    assert sorted(p.name for p in Path("submissions").rglob("*")) == before


def test_a_folds_nets_train_apart_when_that_evens_the_workers_and_give_the_same_bytes(comps_root, capsys):  # noqa: F811
    # 3 folds of 2 nets on 2 workers: the 6 nets go one by one (3 rounds, not 2 of whole folds with a core idle in
    # the second); each fold's nets joined give the bytes of one process, the fold's model is their join, `kit
    # predict` reproduces the submission from it, and the process that joins them never imports fastai
    from kit import predictors, workers
    from kit.commands.predict import main as predict_main

    assert workers.split_pays(3, 2, 2) and workers.split_pays(5, 2, 2) and workers.split_pays(5, 4, 2)
    assert not workers.split_pays(4, 2, 2) and not workers.split_pays(5, 5, 2) and not workers.split_pays(5, 2, 1)
    d = write_comp(comps_root, "n_parts", "binary", "auc", binary_yes_no, prob_sample, n=240, n_test=40)
    quick = ["--set", "arch=modern", "--set", "width=32", "--set", "depth=1", "--set", "epochs=3",
             "--set", "n_models=2", "--threads", "1"]
    one, _ = train(capsys, "n_parts", d, *quick, "--jobs", "1")
    # (--threads imports torch to set its threads; the training stack, fastai and kit.nets.fit, stays out)
    code = ("import sys; from kit.commands.train import main; rc = main({0!r}); "
            "print(rc, sorted(m for m in ('fastai', 'kit.nets.fit', 'kit.learner') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["--comp", "n_parts", "--data-dir", str(d), *FAST, *quick, "--jobs", "2"]
    out = subprocess.run([sys.executable, "-c", code.format(args)], capture_output=True, text=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
    two = Path(out.stdout.strip().splitlines()[-2])
    assert two.read_bytes() == one.read_bytes()
    run_dir = Path(json.loads(two.with_suffix(".json").read_text())["run_dir"])
    joined = predictors.load(run_dir / "models" / "fold-0.pt")
    assert isinstance(joined, predictors.Joined) and len(joined.parts) == 2
    assert predict_main(["--comp", "n_parts", "--data-dir", str(d), "--run", run_dir.name, "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]).read_bytes() == one.read_bytes()


def test_a_killed_runs_work_folder_goes_on_the_next_run(tmp_path):
    # the workers read the data from a folder in the temp dir, removed when the run ends; a run killed by SIGKILL
    # cannot, so the next run removes the folders whose process is gone (and keeps a live one's)
    from kit import workers

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{workers.STAGING}{done.stdout.strip()}-abc"
    live = tmp_path / f"{workers.STAGING}{os.getpid()}-abc"
    other = tmp_path / f"{workers.STAGING}x-abc"
    for d in (dead, live, other):
        d.mkdir()
        (d / "work.pkl").write_bytes(b"data")
    workers.clear_stale(tmp_path)
    assert not dead.exists() and live.exists() and other.exists()


def test_the_nets_folds_go_to_workers_from_3000_rows_on_a_cpu(comps_root, monkeypatch):  # noqa: F811
    monkeypatch.setattr("kit.devices.cores", lambda: 4)
    comp = registry.get("titanic")
    mlp = comp.params({"arch": "modern"})
    assert comp.fold_jobs(mlp, 2999, 5) == 1 and comp.fold_jobs(mlp, 3000, 5) == 4
    assert comp.fold_jobs(mlp, 3000, 3) == 3  # never more workers than folds
    assert comp.with_model("lightgbm").fold_jobs(comp.with_model("lightgbm").default_params, 10**6, 5) == 1
    from kit import devices

    assert devices.threads_per_job(4) == 1 and devices.threads_per_job(2) == 2


def test_workers_count_the_cores_a_container_allows_and_fall_back_where_they_cannot_start(tmp_path, monkeypatch):
    from kit import devices, workers

    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(64)))
    (tmp_path / "cpu.max").write_text("200000 100000\n")  # docker --cpus 2 on a 64-core host
    assert devices.cores(tmp_path / "cpu.max") == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert devices.cores(tmp_path / "cpu.max") == 64 == devices.cores(tmp_path / "absent")
    monkeypatch.setattr("kit.devices.cores", lambda: 4)
    assert workers.auto_jobs(5) == 4

    class NoSemaphores:
        def Lock(self):  # noqa: N802 (multiprocessing's name)
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU: one process, the device shared
    assert workers.auto_jobs(5) == 1 and devices.gpu_possible()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not devices.gpu_possible()
    monkeypatch.delitem(sys.modules, "torch")  # not imported: asked of the drivers' device nodes, torch not imported
    assert not devices.gpu_possible((str(tmp_path / "no-such-node"),)) and devices.gpu_possible((str(tmp_path),))
    assert "torch" not in sys.modules
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr("multiprocessing.get_context", lambda _method: NoSemaphores())
    assert workers.auto_jobs(5) == 1  # the default falls back to one process
    with pytest.raises(KitError, match="--jobs 2: worker processes cannot be started here"):
        next(workers.fit_folds(None, None, {}, np.zeros(4), [0], 0, 2, 1))


def test_a_dead_workers_error_names_a_script_without_a_main_guard(monkeypatch, tmp_path):
    # spawned workers import the main module again: a user's script that calls kit at its top level runs again in
    # each worker and dies there (Python's RuntimeError scrolls by); kit's one line says so, naming the script
    import types

    from kit import workers

    unguarded = tmp_path / "train_folds.py"
    unguarded.write_text("from kit.cv import cross_validate\ncross_validate(comp, data, {}, 0)\n")
    console = tmp_path / "kit"  # a console script, as pip writes `kit` and `pytest`: guarded
    console.write_text("import sys\nfrom kit.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n")
    script = types.ModuleType("__main__")
    script.__file__, script.__spec__ = str(unguarded), None
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert "train_folds.py calls kit outside `if __name__ == '__main__':`" in workers._death_cause()
    script.__file__ = str(console)
    assert workers._death_cause() == "out of memory?"
    script.__file__, script.__spec__ = str(unguarded), types.SimpleNamespace(name="train_folds")  # `-m`: by name
    assert "train_folds.py calls kit outside" in workers._death_cause()
    script.__spec__ = types.SimpleNamespace(name="kit.__main__")  # `python -m kit train`: spawn never re-runs it
    assert workers._death_cause() == "out of memory?"

import numpy as np
import pytest

from kit import registry
from kit.cv import cross_validate, make_folds
from kit.errors import KitError


def test_stratified_folds_hold_class_ratio():
    rng = np.random.default_rng(1)
    y = (rng.random(503) < 0.38).astype(int)
    folds = make_folds("binary", y, 5, seed=3)
    assert set(folds) == set(range(5))
    for k in range(5):
        part = y[folds == k]
        assert abs(len(part) - len(y) / 5) <= 1
        assert abs(part.sum() - y.sum() / 5) <= 1  # positives spread to within one row


def test_folds_deterministic_and_seed_dependent():
    y = np.random.default_rng(0).integers(0, 2, 200)
    a, b, c = make_folds("binary", y, 5, 1), make_folds("binary", y, 5, 1), make_folds("binary", y, 5, 2)
    assert (a == b).all() and (a != c).any()


def test_multilabel_folds_stratify_each_label():
    rng = np.random.default_rng(2)
    y = (rng.random((600, 8)) < np.linspace(0.05, 0.6, 8)).astype(int)
    folds = make_folds("multilabel", y, 4, seed=0)
    assert (folds >= 0).all()
    for k in range(4):
        frac = y[folds == k].mean(axis=0)
        assert np.all(np.abs(frac - y.mean(axis=0)) < 0.03)


def test_group_folds_keep_groups_together():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 40, 300)
    folds = make_folds("binary", rng.integers(0, 2, 300), 5, seed=0, groups=groups)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1


def test_regression_kfold_partitions():
    folds = make_folds("regression", np.random.default_rng(0).normal(size=101), 3, seed=0)
    assert sorted(np.bincount(folds)) == [33, 34, 34]


def test_fold_errors():
    with pytest.raises(KitError, match="at least 2"):
        make_folds("binary", np.array([0, 1, 0, 1]), 1, 0)
    with pytest.raises(KitError, match="fewer than 5 folds"):
        make_folds("binary", np.array([0] * 20 + [1] * 3), 5, 0)


def test_cross_validate_oof_for_every_row_and_test_is_fold_mean(titanic_dir):
    comp = registry.get("titanic")
    data = comp.load(titanic_dir)
    params = comp.params({"epochs": 2})
    seen = []
    res = cross_validate(comp, data, params, seed=0, n_folds=3, progress=False,
                         on_fold=lambda k, s: seen.append((k, s)))
    assert res.oof.shape == (len(data.train),) and np.isfinite(res.oof).all()
    assert ((res.oof >= 0) & (res.oof <= 1)).all()
    assert res.test.shape == (len(data.test),)
    assert [k for k, _ in seen] == [0, 1, 2] and len(res.fold_scores) == 3
    assert res.fold_scores == [s for _, s in seen]
    # per-epoch losses recorded for every fold (learning_curves.png is drawn from these)
    assert all(len(h) == 2 and all(e["train_loss"] is not None and e["valid_loss"] is not None for e in h)
               for h in res.histories)
    # the test prediction is the mean of the fold models: refit fold 0 alone and compare the pieces
    tr, va = np.flatnonzero(res.folds != 0), np.flatnonzero(res.folds == 0)
    out0 = comp.fit_fold(data, tr, va, params, seed=0, progress=False)
    assert np.allclose(out0.valid, res.oof[va])


def test_cross_validate_pruning_hook_stops_early(titanic_dir):
    comp = registry.get("titanic")
    data = comp.load(titanic_dir)

    class Stop(Exception):
        pass

    def stop_after_first(k, score):
        raise Stop

    with pytest.raises(Stop):
        cross_validate(comp, data, comp.params({"epochs": 1}), seed=0, n_folds=3, progress=False,
                       on_fold=stop_after_first)

"""Gradient-boosted tree families on the same folds and fold pipeline as the MLP: `kit train --model ...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit import registry
from kit.commands.train import main as train_main
from kit.commands.tune import main as tune_main
from kit.cv import cross_validate, make_folds
from kit.errors import KitError
from kit.families.trees import LightGBM, XGBoost, curve_rows
from kit.tasks import Binary
from tests.test_contract import comps_root, label_sample, raw_scale, text_labels, write_comp  # noqa: F401

FAST = {"lightgbm": ["--set", "n_estimators=60"], "catboost": ["--set", "iterations=60"],
        "xgboost": ["--set", "n_estimators=60"]}
SMALL = {"lightgbm": {"n_estimators": 40}, "catboost": {"iterations": 40}, "xgboost": {"n_estimators": 40}}


@pytest.mark.parametrize("family", ["lightgbm", "catboost", "xgboost"])
def test_family_trains_on_the_same_folds_and_records_itself(titanic_dir, workdir, capsys, family):
    rc = train_main(["--comp", "titanic", "--data-dir", str(titanic_dir), "--folds", "2", "--model", family,
                     "--quiet", *FAST[family]])
    out, err = capsys.readouterr()
    assert rc == 0, err
    path = Path(out.strip().splitlines()[-1])
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["model"] == family and side["cv"]["mean"] > 0.6
    assert set(pd.read_csv(path)["Survived"]) <= {0, 1}
    mlp = registry.get("titanic")
    data = mlp.load(titanic_dir)
    folds = pd.read_csv(Path(side["run_dir"]) / "folds.csv")["fold"].to_numpy()
    assert (folds == make_folds(mlp.task, data.y, 2, 42)).all()  # the same folds as the MLP's


@pytest.mark.parametrize("family", ["lightgbm", "catboost", "xgboost"])
def test_family_is_deterministic_with_the_seed(titanic_dir, family):
    comp = registry.get("titanic").with_model(family)
    data = comp.load(titanic_dir)
    params = comp.params(SMALL[family])
    a = cross_validate(comp, data, params, seed=3, n_folds=2, progress=False)
    b = cross_validate(comp, data, params, seed=3, n_folds=2, progress=False)
    assert np.array_equal(a.oof, b.oof) and np.array_equal(a.test, b.test)


def test_with_model_copies_and_leaves_the_shared_competition_alone():
    comp = registry.get("titanic")
    lgb = comp.with_model("lightgbm")
    assert lgb is not comp and lgb.model_family == "lightgbm" and comp.model_family == "mlp"
    assert "num_leaves" in lgb.default_params and "width" in comp.default_params
    assert registry.get("titanic").model_family == "mlp"
    with pytest.raises(KitError, match="unknown model 'xgb'; one of mlp, tabm, lightgbm, catboost, xgboost"):
        comp.with_model("xgb")
    with pytest.raises(KitError, match="no model families"):
        registry.get("planet").with_model("lightgbm")
    with pytest.raises(KitError, match="needs the no_such_pkg package: pip install no_such_pkg"):
        type("Missing", (LightGBM,), {"name": "x", "package": "no_such_pkg"})().require()


@pytest.mark.parametrize("family", ["lightgbm", "catboost", "xgboost"])
def test_families_follow_the_task_multiclass_text_labels_and_raw_regression(comps_root, family):  # noqa: F811
    mc = write_comp(comps_root, f"gmc_{family}", "multiclass", "accuracy", text_labels, label_sample, n=200)
    reg = write_comp(comps_root, f"greg_{family}", "regression", "rmse", raw_scale, label_sample, n=200)
    small = {k: 80 for k in SMALL[family]}
    comp = registry.get(f"gmc_{family}").with_model(family)
    cv = cross_validate(comp, comp.load(mc), comp.params(small), seed=0, n_folds=3, progress=False)
    assert cv.oof.shape[1] == 3 and np.allclose(cv.oof.sum(axis=1), 1) and cv.mean > 0.6
    comp = registry.get(f"greg_{family}").with_model(family)
    data = comp.load(reg)
    cv = cross_validate(comp, data, comp.params(small), seed=0, n_folds=3, progress=False)
    assert cv.mean < 0.6 * data.y.std()


def test_tune_searches_a_family_in_its_own_study(titanic_dir, workdir, capsys):
    rc = tune_main(["--comp", "titanic", "--data-dir", str(titanic_dir), "--model", "lightgbm", "--n-trials", "2",
                    "--folds", "2", "--set", "n_estimators=40"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "study titanic-lightgbm" in out and "num_leaves" in out


def test_a_tree_predictor_pickled_under_its_old_path_still_loads(tmp_path: Path, monkeypatch):
    """Runs saved before the families moved pickle `kit.predictors.TreePredictor`; loading maps it (MOVED)."""
    from kit import predictors
    from kit.families.trees import TreePredictor
    from kit.tasks import TargetScaler

    assert not hasattr(predictors, "TreePredictor")
    old = TreePredictor("lightgbm", None, ["a model"], {"c": ["x", "y"]}, ["n"], ["c"], TargetScaler())
    with monkeypatch.context() as m:
        m.setattr(TreePredictor, "__module__", "kit.predictors")
        m.setattr(predictors, "TreePredictor", TreePredictor, raising=False)
        predictors.save(old, tmp_path / "fold-0.pt")
    assert b"kit.predictors\nTreePredictor" in (tmp_path / "fold-0.pt").read_bytes()
    new = predictors.load(tmp_path / "fold-0.pt")
    assert type(new) is TreePredictor and new.family == "lightgbm" and new.levels == {"c": ["x", "y"]}


@pytest.mark.parametrize("family", [LightGBM, XGBoost], ids=["lightgbm", "xgboost"])
def test_trees_score_their_train_curve_on_a_sample_and_stop_on_the_validation_rows(family):
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    y = (x["a"] + rng.normal(0, 1, 3000) > 0).astype(int).to_numpy()
    assert curve_rows(x, y, 0)[0] is x  # small folds: the training rows themselves (LightGBM reuses its scores)
    xs, ys = curve_rows(x, y, 0, limit=500)
    assert len(xs) == 500 and xs.index.is_monotonic_increasing and np.array_equal(ys, y[xs.index])
    params = {"n_estimators": 400, "learning_rate": 0.3, "num_leaves": 31, "early_stopping": 10}
    fits = {}
    for limit in (10_000, 500):  # the curve on every training row, then on a sample: the same trees either way
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("kit.families.trees.CURVE_ROWS", limit)
            model, curve = family().fit_model(Binary(), params, 0, 1, x[:2400], y[:2400], x[2400:], y[2400:], [])
        fits[limit] = (getattr(model, "best_iteration_", getattr(model, "best_iteration", None)),
                       model.predict_proba(x[2400:])[:, 1], curve)
    assert 0 < fits[500][0] == fits[10_000][0] < 400  # stopped by the validation rows, not the training sample
    assert np.array_equal(fits[500][1], fits[10_000][1])
    assert [e["valid_loss"] for e in fits[500][2]] == [e["valid_loss"] for e in fits[10_000][2]]
    assert fits[500][2][0]["train_loss"] != fits[10_000][2][0]["train_loss"]


def test_a_tree_run_and_its_predict_never_import_torch(comps_root):  # noqa: F811
    """A tree's whole run (train, record, fold models) and `kit predict` need no torch: importing it cost ~3 s a run."""
    data = write_comp(comps_root, "tree_notorch", "multiclass", "accuracy", text_labels, label_sample)
    code = ("import sys; from kit.commands.{0} import main; rc = main({1!r}); "
            "print(rc, sorted(m for m in ('torch', 'fastai') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["--comp", "tree_notorch", "--data-dir", str(data), "--model", "lightgbm", "--folds", "2", "--quiet",
            "--set", "n_estimators=30"]
    out = subprocess.run([sys.executable, "-c", code.format("train", args)], capture_output=True, text=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
    sub = Path(out.stdout.strip().splitlines()[-2])
    run = json.loads(sub.with_suffix(".json").read_text())["run_dir"]
    assert (Path(run) / "models" / "fold-0.pt").read_bytes()[:1] == b"\x80"  # a plain pickle, not torch's zip
    args = ["--comp", "tree_notorch", "--data-dir", str(data), "--run", Path(run).name, "--quiet"]
    out = subprocess.run([sys.executable, "-c", code.format("predict", args)], capture_output=True, text=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
    assert Path(out.stdout.strip().splitlines()[-2]).read_bytes() == sub.read_bytes()

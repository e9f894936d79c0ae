"""Runs keep what inference needs: each fold's fitted preprocessing and model, reloaded by `kit predict` to give
the run's own test predictions back exactly, for every model family and for images."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from kit import registry
from kit.commands.predict import main as predict_main
from kit.errors import KitError
from kit.inference import predict_run
from kit.run import train_and_submit

CASES = {
    "mlp": ("titanic", None, {"epochs": 2, "n_models": 2}),
    "lightgbm": ("titanic", "lightgbm", {"n_estimators": 30}),
    "catboost": ("titanic", "catboost", {"iterations": 30}),
    "xgboost": ("titanic", "xgboost", {"n_estimators": 30}),
    "mlp-modern": ("titanic", None, {"arch": "modern", "epochs": 3, "width": 16, "depth": 2, "d_emb": 4}),
    "tabm": ("titanic", "tabm", {"epochs": 3, "width": 16, "depth": 1, "k": 4, "d_emb": 4}),
}


@pytest.mark.parametrize("family", list(CASES))
def test_saved_tabular_run_predicts_its_own_test_set_exactly(titanic_dir, workdir, capsys, family):
    name, model, params = CASES[family]
    comp = registry.get(name)
    comp = comp.with_model(model) if model else comp
    r = train_and_submit(comp, titanic_dir, comp.params(params), seed=4, n_folds=2, progress=False)
    rec = json.loads((r.run_dir / "record.json").read_text())
    assert rec["models"]["files"] == ["models/fold-0.pt", "models/fold-1.pt"] and rec["model"] == (model or "mlp")
    pred = predict_run(registry.get(name), r.run_dir, titanic_dir)  # the family comes from the record
    assert np.array_equal(pred.probs, r.cv.test)
    assert predict_main(["--comp", name, "--data-dir", str(titanic_dir), "--run", r.run_dir.name]) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.read_bytes() == r.submission.read_bytes()  # the same submission, byte for byte
    if family == "mlp":  # --quiet: the submission's path alone
        assert predict_main(["--comp", name, "--data-dir", str(titanic_dir), "--run", r.run_dir.name, "--quiet"]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1 and Path(lines[0]).read_bytes() == r.submission.read_bytes()


@pytest.mark.parametrize("name, gen, extra", [
    ("digit-recognizer", {"n_train": 80, "n_test": 20}, {}),
    ("facial-keypoints", {"n_train": 40, "n_test": 8}, {}),
    ("planet", {"n_train": 40, "n_test": 12, "size": 40, "workers": 1}, {"size": 24, "workers": 1}),
])
def test_saved_image_run_predicts_its_own_test_set_exactly(tmp_path, workdir, name, gen, extra):
    synth = importlib.import_module(f"competitions.{name}.synthetic")
    d = tmp_path / name
    synth.generate(d, seed=5, **gen)
    comp = registry.get(name)
    params = comp.params({"preset": "cpu", "epochs": 1, "bs": 16, "width": 8, "tta": 2, **extra})
    r = train_and_submit(comp.for_params(params), d, params, seed=1, n_folds=2, progress=False)
    pred = predict_run(comp, r.run_dir, d)
    assert np.array_equal(pred.probs, r.cv.test)  # facial keypoints: the mirrored TTA view mirrored back
    # prediction decodes the test images once, at the run's size, and never the training images
    assert set(pred.data.decoded) <= {("test", params["size"])}


def test_a_run_without_models_is_one_line(titanic_dir, workdir, capsys):
    comp = registry.get("titanic")
    r = train_and_submit(comp, titanic_dir, comp.params({"epochs": 1}), seed=2, n_folds=2, progress=False)
    rec = json.loads((r.run_dir / "record.json").read_text())
    (r.run_dir / "record.json").write_text(json.dumps({**rec, "models": None}))
    with pytest.raises(KitError, match="saved no fold models"):
        predict_run(comp, r.run_dir, titanic_dir)
    assert predict_main(["--comp", "titanic", "--data-dir", str(titanic_dir), "--run", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err

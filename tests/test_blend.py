"""`kit blend`: runs trained on the same folds blended by mean, rank, hill climbing and stacking; refusals of
runs that cannot be blended; honest (out-of-fold) CV for the stack; binary, multiclass, multi-label, regression."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit import registry
from kit.commands.blend import main as blend_main
from kit.cv import make_folds
from kit.ensemble.blend import Stacker, blend, hill_climb, rank_scale
from kit.io import atomic_write_csv, atomic_write_json
from kit.run import train_and_submit
from kit.submission import validate_submission
from tests.test_contract import label_sample, raw_scale, tags, text_labels, wide_prob_sample, write_comp


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three tiny Titanic runs: two on the same folds (seed 3), the newest on other folds (seed 4)."""
    from competitions.titanic.synthetic import generate

    root = tmp_path_factory.mktemp("blend")
    data = root / "data"
    generate(data, n_train=160, n_test=60, seed=7)
    comp = registry.get("titanic")
    dirs = []
    for seed, width in ((3, 16), (3, 48), (4, 16)):
        r = train_and_submit(comp, data, comp.params({"epochs": 2, "width": width}), seed=seed, n_folds=2,
                             out=root / "submissions", runs=root / "runs", progress=False)
        dirs.append(r.run_dir)
    return {"root": root, "data": data, "runs": dirs}


def run_blend(capsys, t: dict, *args: str, comp: str = "titanic") -> tuple[int, str, str]:
    root = t["root"]
    rc = blend_main(["--comp", comp, "--data-dir", str(t["data"]), "--runs", str(root / "runs"),
                     "--out", str(root / "submissions"), *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("method", ["mean", "rank", "hill", "stack"])
def test_blend_writes_a_submission_and_a_blendable_run(trained, capsys, method):
    a, b, _ = trained["runs"]
    rc, out, err = run_blend(capsys, trained, str(a), b.name, "--method", method)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert any(ln.startswith("CV accuracy ") and "over 2 folds" in ln for ln in lines)
    assert lines[-3].startswith("OOF accuracy: ") and lines[-2].startswith("run folder: ")
    path = Path(lines[-1])
    validate_submission(registry.get("titanic"), path, trained["data"] / "gender_submission.csv")
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["method"] == method and side["kind"] == "blend"
    assert [i["name"] for i in side["inputs"]] == [a.name, b.name]
    assert all("mean" in i["cv"] for i in side["inputs"]) and len(side["cv"]["fold_scores"]) == 2
    if method != "stack":
        assert abs(sum(side["weights"]) - 1) < 1e-6
    run_dir = Path(lines[-2].split(": ", 1)[1])
    for f in ("folds.csv", "oof.csv", "test_probs.csv", "decoding.json", "record.json"):
        assert (run_dir / f).is_file(), f
    assert (run_dir / "folds.csv").read_bytes() == (a / "folds.csv").read_bytes()
    # a blend is itself a run: it blends with an input
    rc, out, err = run_blend(capsys, trained, str(run_dir), str(a), "--method", "mean")
    assert rc == 0, err


def test_quiet_blend_prints_only_the_result_lines(trained, capsys):
    a, b, _ = trained["runs"]
    rc, out, err = run_blend(capsys, trained, str(a), b.name, "--quiet")
    lines = out.strip().splitlines()
    assert rc == 0, err
    assert not any(ln.startswith(("input ", "hill: nested")) for ln in lines)
    assert lines[0].startswith("CV accuracy ") and lines[-2].startswith("run folder: ") and len(lines) == 4, lines


def test_default_runs_share_the_newest_runs_folds(trained, capsys, tmp_path):
    t = {**trained, "root": tmp_path}
    shutil.copytree(trained["root"] / "runs", tmp_path / "runs")
    # newest run (seed 4) has folds of its own: alone, nothing to blend
    rc, _, err = run_blend(capsys, t)
    assert rc == 2 and "at least two runs" in err and len(err.strip().splitlines()) == 1
    shutil.rmtree(tmp_path / "runs" / "titanic" / trained["runs"][2].name)
    rc, out, err = run_blend(capsys, t, "--method", "mean")
    assert rc == 0, err
    assert sum(ln.startswith("input ") for ln in out.splitlines()) == 2


def _edit_record(d: Path, **changes) -> None:
    rec = json.loads((d / "record.json").read_text())
    (d / "record.json").write_text(json.dumps({**rec, **changes}))


def _unhashed(d: Path) -> None:
    """The record as kit wrote it before it kept file hashes."""
    rec = json.loads((d / "record.json").read_text())
    rec.pop("files_sha256")
    (d / "record.json").write_text(json.dumps(rec))


def _set_cell(path: Path, row: int, col: int, value: str) -> None:
    """Row numbers count the header as 1, as the error messages do."""
    lines = path.read_text().split("\n")
    cells = lines[row - 1].split(",")
    cells[col] = value
    lines[row - 1] = ",".join(cells)
    path.write_text("\n".join(lines))


def _damaged(trained: dict, tmp_path: Path, fn) -> Path:
    d = tmp_path / "runs" / "titanic" / "damaged"
    shutil.copytree(trained["runs"][1], d)
    fn(d)
    return d


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "oof.csv").unlink(), "missing oof.csv"),
    (lambda d: (d / "test_probs.csv").unlink(), "missing test_probs.csv"),
    (lambda d: (d / "record.json").write_text("{not json"), "corrupt record"),
    (lambda d: (d / "record.json").write_text("[1, 2]"), "corrupt record"),
    (lambda d: (d / "oof.csv").write_text((d / "oof.csv").read_text().replace("\n1,", "\n9999,", 1)),
     "oof.csv: SHA-256"),  # the record's hash catches any change first
    (lambda d: (_unhashed(d), (d / "oof.csv").write_text((d / "oof.csv").read_text().replace("\n1,", "\n9999,", 1))),
     "oof.csv's rows differ"),
    (lambda d: (_unhashed(d), _set_cell(d / "oof.csv", 3, 1, "7.5")), "row 3, column p0: 7.5 is not a probability"),
    (lambda d: (_unhashed(d), _set_cell(d / "test_probs.csv", 2, 1, "1e9")), "1e+09 is not a probability in [0, 1]"),
    (lambda d: (_unhashed(d), _set_cell(d / "oof.csv", 4, 1, "-3")), "-3 is not a probability"),
    (lambda d: _edit_record(d, cv={"mean": "abc"}), "corrupt record (cv is not a CV summary"),
], ids=["no-oof", "no-test-probs", "bad-json", "not-object", "changed-oof", "other-rows", "oof-7.5", "test-1e9",
        "oof-negative", "cv-mean-text"])
def test_blend_refuses_damaged_runs(trained, capsys, tmp_path, damage, message):
    d = _damaged(trained, tmp_path, damage)
    rc, out, err = run_blend(capsys, trained, str(trained["runs"][0]), str(d))
    lines = err.strip().splitlines()
    assert rc == 3 and message in lines[-1] and lines[-1].startswith("error: ") and len(lines) <= 2, err
    assert len(lines) == 1 or "has no file hashes" in lines[0]  # an old record: one warning line first
    assert not out  # nothing printed, nothing written


def test_blend_refuses_other_folds_other_competitions_and_one_run(trained, capsys, tmp_path):
    a, b, c = trained["runs"]
    rc, _, err = run_blend(capsys, trained, str(a), str(c))
    assert rc == 3 and "different folds" in err
    rc, _, err = run_blend(capsys, trained, str(a))
    assert rc == 2 and "at least two runs" in err
    rc, _, err = run_blend(capsys, trained, str(a), str(a))
    assert rc == 2 and "given twice" in err
    other = tmp_path / "runs" / "planet" / b.name
    shutil.copytree(b, other)
    rc, _, err = run_blend(capsys, trained, str(a), str(other))
    assert rc == 3 and "competition 'planet'" in err
    rc, _, err = run_blend(capsys, trained, str(a), "no-such-run")
    assert rc == 2 and "no-such-run" in err
    with pytest.raises(SystemExit) as e:  # argparse's usage error, as for every command
        run_blend(capsys, trained, str(a), str(b), "--method", "median")
    assert e.value.code == 2


# ---- methods on constructed predictions ----------------------------------------------------------------
def _noisy_binary(n: int = 400, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    folds = make_folds("binary", y, 4, seed)
    # independent noise per run: their mean is more accurate than any one of them; the last run is poor
    oofs = [1 / (1 + np.exp(-((2 * y - 1) * (1.0 if j < k - 1 else 0.2) + rng.normal(0, 1.5, n)))) for j in range(k)]
    return y, folds, oofs


def test_hill_weights_sum_to_one_and_beat_every_input():
    comp = registry.get("titanic")
    y, folds, oofs = _noisy_binary()
    tests = [o[:50] for o in oofs]
    b = blend(comp, y, folds, oofs, tests, "hill")
    assert abs(sum(b.weights) - 1) < 1e-12 and all(w >= 0 for w in b.weights)
    singles = [comp.score(y, o) for o in oofs]
    assert comp.score(y, b.oof) >= max(singles)
    assert comp.score(y, b.oof) > max(singles)  # the constructed runs are complementary
    counts, steps = hill_climb(oofs, lambda p: comp.score(y, p), True)
    assert counts[int(np.argmax(singles))] >= 1 and steps[0]["score"] == max(singles)
    assert np.allclose(b.weights, counts / counts.sum())
    assert len(b.detail["cv_nested"]) == 4


def test_hill_minimises_a_loss_metric():
    comp = registry.get("titanic")
    y, folds, oofs = _noisy_binary(seed=1)

    class LossComp:  # the same competition scored by log loss (lower is better)
        task, greater_is_better = comp.task, False

        @staticmethod
        def score(y_, p):
            from kit.metrics import log_loss

            return log_loss(y_, p)

    b = blend(LossComp, y, folds, oofs, oofs, "hill")
    assert LossComp.score(y, b.oof) <= min(LossComp.score(y, o) for o in oofs)


def test_stack_cv_is_out_of_fold():
    comp = registry.get("titanic")
    y, folds, oofs = _noisy_binary(seed=2)
    b = blend(comp, y, folds, oofs, [o[:30] for o in oofs], "stack")
    for k in range(4):
        tr, va = folds != k, folds == k
        st = Stacker("binary").fit([o[tr] for o in oofs], y[tr])
        pred = st.predict([o[va] for o in oofs])
        assert np.allclose(b.oof[va], pred)
        assert b.fold_scores[k] == pytest.approx(comp.score(y[va], pred))
    # a fold's blended OOF never depends on that fold's labels
    y2 = y.copy()
    y2[folds == 0] = 1 - y2[folds == 0]
    b2 = blend(comp, y2, folds, oofs, [o[:30] for o in oofs], "stack")
    assert np.allclose(b.oof[folds == 0], b2.oof[folds == 0])
    assert not np.allclose(b.oof[folds == 1], b2.oof[folds == 1])
    assert np.allclose(b.test, Stacker("binary").fit(oofs, y).predict([o[:30] for o in oofs]))


def test_rank_scale_puts_test_on_the_oof_scale():
    oof = np.array([0.1, 0.2, 0.3, 0.4])
    ro, rt = rank_scale(oof, np.array([0.05, 0.3, 0.9]))
    assert np.allclose(ro, [0.125, 0.375, 0.625, 0.875]) and np.allclose(rt, [0.0, 0.625, 1.0])


# ---- other tasks: template competitions with hand-written run folders ---------------------------------------
def write_run(run_dir: Path, comp_name: str, ids, folds, oof: np.ndarray, test_ids, test: np.ndarray,
              columns: list[str], task: str, metric: str) -> Path:
    """A run folder as kit train writes it, from given predictions."""
    o, t = oof.reshape(len(oof), -1), test.reshape(len(test), -1)
    atomic_write_csv(run_dir / "folds.csv", pd.DataFrame({"id": ids, "fold": folds}))
    atomic_write_csv(run_dir / "oof.csv", pd.DataFrame({"id": ids, **{c: o[:, j] for j, c in enumerate(columns)}}))
    atomic_write_csv(run_dir / "test_probs.csv",
                     pd.DataFrame({"id": test_ids, **{c: t[:, j] for j, c in enumerate(columns)}}))
    atomic_write_json(run_dir / "decoding.json", {"kind": "identity"})
    atomic_write_json(run_dir / "record.json", {"task": task, "metric": metric, "seed": 0, "model": "mlp",
                                                "cv": {"metric": metric, "mean": 0.5, "std": 0.1,
                                                       "fold_scores": [0.4, 0.6], "n_folds": 2}})
    return run_dir


def _noisy(truth: np.ndarray, rng: np.random.Generator, scale: float, kind: str) -> np.ndarray:
    if kind == "regression":
        return truth + rng.normal(0, scale, truth.shape)
    z = np.log(np.clip(truth, 0.02, 0.98)) + rng.normal(0, scale, truth.shape)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True) if kind == "multiclass" else np.clip(p, 0.001, 0.999)


@pytest.mark.parametrize("kind, metric, target, sample", [
    ("multiclass", "accuracy", text_labels, label_sample),
    ("multiclass", "logloss", text_labels, wide_prob_sample),
    ("multilabel", "f2_samples", tags, label_sample),
    ("regression", "rmse", raw_scale, label_sample),
])
def test_blend_other_tasks(tmp_path, monkeypatch, capsys, kind, metric, target, sample):
    monkeypatch.setenv(registry.PATH_ENV, str(tmp_path / "comps"))
    name = f"b_{kind}_{metric}"
    data_dir = write_comp(tmp_path, name, kind, metric, target, sample, n=120, n_test=40)
    comp = registry.get(name)
    data = comp.load(data_dir)
    folds = make_folds(comp.task, data.y, 2, 0)
    rng = np.random.default_rng(0)
    if kind == "regression":
        truth, cols = data.y.astype(float), ["p0"]
    elif kind == "multiclass":
        truth, cols = np.eye(len(data.classes))[data.y], [str(c) for c in data.classes]
    else:
        truth, cols = data.y.astype(float), [str(c) for c in data.classes]
    test_truth = np.repeat(truth[:1], len(data.test), axis=0)
    runs = tmp_path / "runs"
    dirs = [write_run(runs / name / f"2026010{j}T000000000Z", name, data.train["id"], folds,
                      _noisy(truth, rng, 12.0 if kind == "regression" else 1.0, kind), data.test["id"],
                      _noisy(test_truth, rng, 12.0 if kind == "regression" else 1.0, kind), cols, kind, metric)
            for j in range(3)]
    for method in ("mean", "rank", "hill", "stack"):
        rc = blend_main(["--comp", name, "--data-dir", str(data_dir), "--runs", str(runs),
                         "--out", str(tmp_path / "subs"), "--method", method])
        out, err = capsys.readouterr()
        assert rc == 0, f"{method}: {err}"
        lines = out.strip().splitlines()
        assert any(ln.startswith(f"CV {metric} ") for ln in lines)
        if kind == "regression" and method == "rank":
            assert any("mean instead" in ln for ln in lines)
        path = Path(lines[-1])
        validate_submission(comp, path, data_dir / "sample_submission.csv", data.classes)
        side = json.loads(path.with_suffix(".json").read_text())
        if method == "hill":  # the blend's OOF metric is at least every input's
            def oof_of(d: Path) -> np.ndarray:
                return pd.read_csv(d / "oof.csv").iloc[:, 1:].to_numpy().squeeze()

            blended = comp.score(data.y, oof_of(Path(side["run_dir"])))
            assert not any(comp.metric.better(comp.score(data.y, oof_of(d)), blended) for d in dirs)
    assert len(list((runs / name).iterdir())) == 3 + 4

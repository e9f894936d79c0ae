"""The typed contract: competitions written from the README's template alone, one per task kind and submission
kind, train, tune and write valid submissions; decoders round-trip; bad declarations and data fail in one line;
kit/ never names a competition and no library module imports a command."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit import decoders, metrics, registry, tasks
from kit.commands.train import main as train_main
from kit.commands.tune import main as tune_main
from kit.errors import DataError, SubmissionError
from kit.submission import validate_submission

KIT = Path(__file__).resolve().parents[1] / "kit"
README = Path(__file__).resolve().parents[1] / "README.md"


def template(name: str, task: str, metric: str, target: str = "target", extra: str = "") -> str:
    """The README's 'Adding a competition' template, filled in (declarations only, no params or search space)."""
    block = re.search(r"```python\n(# competitions/mycomp/__init__\.py.*?)```", README.read_text(), re.S)
    assert block, "README lost its 'Adding a competition' template"
    src = block.group(1)
    src = src.replace('"mycomp", "kaggle-slug"', f'"{name}", "{name}-slug"')
    src = re.sub(r'task = "[a-z]+"', f'task = "{task}"', src)
    src = re.sub(r'metric = "[a-z0-9_]+"', f'metric = "{metric}"', src)
    src = src.replace('id_col, target_col = "id", "target"', f'id_col, target_col = "id", "{target}"')
    return src + extra


def tabular_data(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Columns a, b (numeric, with NaNs) and city (text, with NaNs), as the template declares."""
    a, b = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["paris", "rome", "oslo"], size=n)
    df = pd.DataFrame({"id": np.arange(1, n + 1), "a": a, "b": b, "city": city})
    df.loc[rng.random(n) < 0.08, "a"] = np.nan
    df.loc[rng.random(n) < 0.08, "city"] = np.nan
    return df


def write_comp(root: Path, name: str, task: str, metric: str, target_fn, sample_fn, n: int = 300,
               n_test: int = 80, seed: int = 0, extra: str = "") -> Path:
    """competitions/<name>/ (template only) in `root`, and its data in `root`/data/<name>/."""
    rng = np.random.default_rng(seed)
    df = tabular_data(rng, n + n_test)
    df["target"] = target_fn(df, rng)
    train, test = df.iloc[:n], df.iloc[n:].drop(columns="target")
    pkg = root / "comps" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(template(name, task, metric, extra=extra))
    data = root / "data" / name
    data.mkdir(parents=True)
    train.to_csv(data / "train.csv", index=False)
    test.to_csv(data / "test.csv", index=False)
    sample_fn(test[["id"]].copy(), train).to_csv(data / "sample_submission.csv", index=False)
    return data


def signal(df: pd.DataFrame) -> np.ndarray:
    return (df["a"].fillna(0) + df["b"] + df["city"].map({"paris": 1.0, "rome": -1.0}).fillna(0)).to_numpy()


def text_labels(df, rng):
    s = signal(df) + rng.normal(0, 0.3, len(df))
    return np.select([s < -0.6, s < 0.6], ["barolo", "cultivar_a"], "cultivar_b")


def int_labels_from_1(df, rng):
    s = signal(df) + rng.normal(0, 0.3, len(df))
    return np.select([s < -0.6, s < 0.6], [1, 2], 3)


def raw_scale(df, rng):
    return 150 + 40 * df["a"].fillna(0) + 25 * df["b"] + 30 * (df["city"] == "rome") + rng.normal(0, 10, len(df))


def binary_yes_no(df, rng):
    return np.where(signal(df) + rng.normal(0, 0.5, len(df)) > 0, "yes", "no")


def label_sample(test, train):
    return test.assign(target=train["target"].iloc[0])


def prob_sample(test, train):
    return test.assign(target=0.5)


def wide_prob_sample(test, train):
    classes = sorted(train["target"].unique())
    return test.assign(**{str(c): 1 / len(classes) for c in classes})


@pytest.fixture
def comps_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(registry.PATH_ENV, str(tmp_path / "comps"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


FAST = ["--folds", "3", "--quiet"]


def train(capsys, name: str, data: Path, *extra: str) -> tuple[Path, dict]:
    rc = train_main(["--comp", name, "--data-dir", str(data), *FAST, *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    path = Path(out.strip().splitlines()[-1])
    return path, json.loads(path.with_suffix(".json").read_text())


@pytest.mark.parametrize("labels", [text_labels, int_labels_from_1], ids=["text", "1..K"])
def test_multiclass_from_the_template(comps_root, capsys, labels):
    data = write_comp(comps_root, f"mc_{labels.__name__}", "multiclass", "accuracy", labels, label_sample)
    path, rec = train(capsys, f"mc_{labels.__name__}", data)
    sub, train_df = pd.read_csv(path), pd.read_csv(data / "train.csv")
    classes = sorted(train_df["target"].unique())
    assert set(sub["target"]) <= set(classes) and len(set(sub["target"])) > 1
    assert rec["classes"] == [c.item() if hasattr(c, "item") else c for c in classes]
    assert rec["cv"]["mean"] > 0.6  # three classes, a clear signal: well above the 0.33-0.4 of a constant
    oof = pd.read_csv(Path(rec["run_dir"]) / "oof.csv")
    assert list(oof.columns[1:]) == [str(c) for c in classes]  # no dead class 0 for labels 1..K
    assert np.allclose(oof.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-5)


def test_regression_on_a_raw_scale_target_beats_the_mean(comps_root, capsys):
    data = write_comp(comps_root, "reg", "regression", "rmse", raw_scale, label_sample)
    path, rec = train(capsys, "reg", data)
    y = pd.read_csv(data / "train.csv")["target"]
    assert rec["cv"]["mean"] < 0.5 * y.std()  # predicting the mean scores about y.std()
    sub = pd.read_csv(path)
    assert abs(sub["target"].mean() - y.mean()) < 0.2 * y.std()  # predictions back on the target's scale


def tune(capsys, name: str, data: Path) -> Path:
    rc = tune_main(["--comp", name, "--data-dir", str(data), "--n-trials", "2", "--folds", "3", "--set", "epochs=3"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return Path(out.split("submission: ")[1].split()[0])


def test_regression_tunes_two_trials(comps_root, capsys):
    data = write_comp(comps_root, "regt", "regression", "rmse", raw_scale, label_sample, n=150, n_test=30)
    path = tune(capsys, "regt", data)
    validate_submission(registry.get("regt"), path, data / "sample_submission.csv")


def tags(df, rng):
    s, a = signal(df), df["a"].fillna(0).to_numpy()
    out = []
    for si, ai, r in zip(s, a, rng.random(len(df)), strict=True):
        t = ["forest"] if si > -0.5 else []
        if ai > 0.3:
            t.append("river")
        if r < 0.15 or not t:
            t.append("town")
        out.append(" ".join(t))
    return out


def test_multilabel_from_the_template_trains_and_tunes(comps_root, capsys):
    data = write_comp(comps_root, "ml", "multilabel", "f2_samples", tags, label_sample)
    path, rec = train(capsys, "ml", data)
    sub = pd.read_csv(path, keep_default_na=False)
    assert all(t and set(t.split()) <= {"forest", "river", "town"} for t in sub["target"])
    assert rec["decoding"]["kind"] == "per_class" and rec["cv"]["mean"] > 0.6
    validate_submission(registry.get("ml"), tune(capsys, "ml", data), data / "sample_submission.csv")


def test_rmsle_trains_in_log_space(comps_root, capsys):
    data = write_comp(comps_root, "reglog", "regression", "rmsle", raw_scale, label_sample)
    assert registry.get("reglog").task.transform == "log1p"
    path, rec = train(capsys, "reglog", data)
    assert (pd.read_csv(path)["target"] >= 0).all() and rec["cv"]["metric"] == "rmsle"


def test_binary_log_loss_writes_probabilities_and_tunes(comps_root, capsys):
    data = write_comp(comps_root, "bll", "binary", "logloss", binary_yes_no, prob_sample)
    path, rec = train(capsys, "bll", data)
    sub = pd.read_csv(path)
    assert sub["target"].between(0, 1).all() and sub["target"].nunique() > 10  # probabilities, not labels
    assert rec["cv"]["mean"] < 0.6 and rec["decoding"]["kind"] == "identity"  # log(2) = 0.693 is a coin
    validate_submission(registry.get("bll"), tune(capsys, "bll", data), data / "sample_submission.csv")
    import optuna

    study = optuna.load_study(study_name="bll", storage="sqlite:///runs/bll/optuna.db")
    assert study.direction.name == "MINIMIZE"  # log loss: lower is better, from the Metric object


def test_multiclass_log_loss_writes_a_column_per_class(comps_root, capsys):
    data = write_comp(comps_root, "mll", "multiclass", "logloss", text_labels, wide_prob_sample)
    path, rec = train(capsys, "mll", data)
    sub = pd.read_csv(path)
    assert list(sub.columns) == list(pd.read_csv(data / "sample_submission.csv").columns)
    assert np.allclose(sub.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-6)
    assert rec["cv"]["mean"] < np.log(3)


def test_multiclass_tunes_two_trials(comps_root, capsys):
    data = write_comp(comps_root, "mct", "multiclass", "accuracy", text_labels, label_sample, n=150, n_test=30)
    path = tune(capsys, "mct", data)
    assert set(pd.read_csv(path)["target"]) <= {"barolo", "cultivar_a", "cultivar_b"}


# ---- bad declarations and bad data -------------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("metric", "logloss2", "competition 'bad': unknown metric 'logloss2'; built in: accuracy"),
    ("task", "ranking", "competition 'bad': unknown task 'ranking'; one of binary"),
])
def test_unknown_metric_or_task_is_one_line_at_load(comps_root, capsys, field, value, message):
    pkg = comps_root / "comps" / "bad"
    pkg.mkdir(parents=True)
    src = template("bad", "binary", "accuracy")
    src = re.sub(rf'{field} = "[a-z0-9_]+"', f'{field} = "{value}"', src)
    (pkg / "__init__.py").write_text(src)
    rc = train_main(["--comp", "bad"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and message in err


def test_sample_matching_neither_submission_kind(comps_root):
    data = write_comp(comps_root, "neither", "multiclass", "accuracy", text_labels,
                      lambda t, tr: t.assign(x=1, y=2))
    with pytest.raises(DataError, match=r"sample_submission\.csv: columns \['id', 'x', 'y'\] match neither a label "
                                        r"submission \[id, target\] nor a probability submission"):
        registry.get("neither").load(data)


@pytest.mark.parametrize("bad, message", [
    ("abc", r"row 3, column target: non-numeric value 'abc'"),
    ("inf", r"row 3, column target: inf is not a finite number"),
])
def test_regression_target_must_be_finite_numbers(comps_root, bad, message):
    data = write_comp(comps_root, "regbad", "regression", "rmse", raw_scale, label_sample, n=40, n_test=10)
    df = pd.read_csv(data / "train.csv")
    df["target"] = df["target"].astype(object)
    df.loc[1, "target"] = bad
    df.to_csv(data / "train.csv", index=False)
    with pytest.raises(DataError, match=message):
        registry.get("regbad").load(data)


def test_probability_submissions_are_checked(comps_root):
    data = write_comp(comps_root, "pchk", "multiclass", "logloss", text_labels, wide_prob_sample, n=60, n_test=5)
    comp, sample = registry.get("pchk"), pd.read_csv(data / "sample_submission.csv")
    classes = comp.read_classes(data)
    validate_submission(comp, sample, sample, classes)
    over = sample.copy()
    over.iloc[2, 1] = 1.5
    with pytest.raises(SubmissionError, match=r"row 4, column barolo: value 1.5 is not a probability in \[0, 1\]"):
        validate_submission(comp, over, sample, classes)
    off = sample.copy()
    off.iloc[1, 1:] = [0.5, 0.4, 0.05]
    with pytest.raises(SubmissionError, match=r"row 3: class probabilities sum to 0.950000, not 1"):
        validate_submission(comp, off, sample, classes)


def test_label_outside_the_training_classes_is_refused(comps_root):
    data = write_comp(comps_root, "lchk", "multiclass", "accuracy", text_labels, label_sample, n=60, n_test=5)
    comp, sample = registry.get("lchk"), pd.read_csv(data / "sample_submission.csv")
    sub = sample.assign(target=["barolo", "cultivar_a", "merlot", "barolo", "barolo"])
    with pytest.raises(SubmissionError, match=r"row 4, column target: value 'merlot' not in allowed set"):
        validate_submission(comp, sub, sample, comp.read_classes(data))


# ---- objects ---------------------------------------------------------------------------------------------


def test_decoders_round_trip_through_json():
    rng = np.random.default_rng(0)
    y_bin, p_bin = rng.integers(0, 2, 200), rng.random(200)
    y_ml, p_ml = (rng.random((200, 5)) < 0.3).astype(int), rng.random((200, 5))
    y_mc, p_mc = rng.integers(0, 3, 200), rng.dirichlet(np.ones(3), 200)
    cases = [
        (decoders.Threshold(), y_bin, p_bin, "accuracy"),
        (decoders.Threshold(at_least_one=True), y_ml, p_ml, "accuracy"),
        (decoders.PerClassThresholds(beta=2.0), y_ml, p_ml, "f2_samples"),
        (decoders.Argmax(), y_mc, p_mc, "accuracy"),
        (decoders.Identity(), y_mc, p_mc, "logloss"),
    ]
    for dec, y, p, m in cases:
        dec.fit(y, p, metrics.get(m))
        back = decoders.from_json(json.loads(json.dumps(dec.to_json())))
        assert type(back) is type(dec) and np.array_equal(back.apply(p), dec.apply(p)), dec
        assert back.score_ == pytest.approx(dec.score_) and back.summary() == dec.summary()
        assert back.report(m) == dec.report(m)


def test_task_encodes_any_label_type_and_maps_back():
    mc = tasks.get("multiclass")
    y, classes = mc.encode(pd.Series(["b", "c", "a", "b"], name="t"), "x.csv")
    assert classes == ["a", "b", "c"] and y.tolist() == [1, 2, 0, 1]
    assert mc.labels(np.array([2, 0]), classes).tolist() == ["c", "a"]
    y, classes = mc.encode(pd.Series([3, 1, 2, 3], name="t"), "x.csv")
    assert classes == [1, 2, 3] and mc.n_outputs(y, classes) == 3
    with pytest.raises(DataError, match=r"x\.csv: row 4, column t: missing target"):
        mc.encode(pd.Series(["a", "b", None], name="t"), "x.csv")
    b = tasks.get("binary")
    y, classes = b.encode(pd.Series(["no", "yes", "yes"], name="t"), "x.csv")
    assert classes == ["no", "yes"] and y.tolist() == [0, 1, 1]


def test_regression_scaler_is_fit_on_the_fold_and_undone():
    r = tasks.Regression()
    y = np.array([100.0, 150.0, 200.0, 250.0])
    sc = r.fit_target(y)
    z = sc.transform_y(y)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    assert np.allclose(sc.inverse(z), y)
    sc = tasks.Regression("log1p").fit_target(y)
    assert np.allclose(sc.inverse(sc.transform_y(y)), y)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_kit_never_names_a_competition_and_libraries_never_import_commands():
    names = registry.names()
    assert {"titanic", "planet"} <= set(names)
    for path in KIT.rglob("*.py"):
        rel = path.relative_to(KIT.parent)
        imports = _imports(path)
        named = {i for i in imports if i.startswith("competitions.")}
        assert not named, f"{rel} imports {named}"
        text = path.read_text()
        for n in names:
            assert not re.search(rf"\bcompetitions[./]{n}\b", text), f"{rel} names competition {n}"
        is_command = rel.parts[1] == "commands" or rel.name in ("cli.py", "__main__.py")
        if not is_command:
            cmds = {i for i in imports if i.startswith("kit.commands")}
            assert not cmds, f"library module {rel} imports a command: {cmds}"


def test_template_in_readme_is_declarations_only():
    src = template("x", "binary", "accuracy")
    assert "default_params" not in src and "def " not in textwrap.dedent(src)

"""`kit init`: every inferred column role, task and metric on small generated tables; Kaggle's metric names; the
refusals and bad input (one line, exit != 0, nothing written); and folders that `kit train` trains with no edit,
scoring as the hand-written ones do on the same folds (generated Titanic, the contract benchmark's tables)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from competitions.titanic.synthetic import generate as generate_titanic
from kit import registry
from kit.commands.init import main as init_main
from kit.commands.train import main as train_main
from kit.errors import DataError, KitError
from kit.features import Booleans, DateParts
from kit.scaffold import scaffold
from kit.scaffold.files import find_files, read_table
from kit.scaffold.kaggle_metrics import KAGGLE_METRICS, kit_metric
from kit.scaffold.tabular import column_role

BENCH = Path(__file__).resolve().parents[1] / "bench"
NO_KAGGLE = lambda slug: (None, "no Kaggle credentials, so Kaggle's metric was not looked up")  # noqa: E731


# ---- helpers ---------------------------------------------------------------------------------------------------
def write_files(d: Path, train: pd.DataFrame, test: pd.DataFrame, sample: pd.DataFrame, **to_csv) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    train.to_csv(d / "train.csv", index=False, **to_csv)
    test.to_csv(d / "test.csv", index=False, **to_csv)
    sample.to_csv(d / "sample_submission.csv", index=False, **to_csv)
    return d


def table(n: int = 120, n_test: int = 40, seed: int = 0, target: str = "binary") -> tuple[pd.DataFrame, ...]:
    """A small table with one column of each kind, a target of the kind asked, and Kaggle's three files."""
    rng = np.random.default_rng(seed)
    m = n + n_test
    df = pd.DataFrame({
        "id": np.arange(1, m + 1),
        "x": rng.normal(size=m).round(3),
        "k": rng.integers(0, 4, size=m),
        "flag01": rng.integers(0, 2, size=m),
        "color": rng.choice(["red", "green", "blue"], size=m),
        "shop": [f"s{i}" for i in rng.integers(0, 30, size=m)],
        "member": rng.choice(["True", "False"], size=m),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, size=m), unit="D"),
        "note": [" ".join(rng.choice(["the", "big", "red", "dog", "ran", "far", "away", "fast"], size=8))
                 + f" {i}" for i in range(m)],
        "code": [f"C{i:05d}" for i in rng.permutation(m)],
        "const": "same",
    })
    df["when"] = df["when"].dt.strftime("%Y-%m-%d")
    s = df["x"] + (df["color"] == "red") - 0.5 * df["k"] + rng.normal(0, 0.3, m)
    if target == "binary":
        df["y"] = (s > s.median()).astype(int)
    elif target == "multiclass":
        df["y"] = np.select([s < -0.8, s < 0.2], ["low", "mid"], "high")
    elif target == "multilabel":
        df["y"] = [" ".join(t for t, on in (("a", v > -0.5), ("b", v > 0.3), ("c", v < 0)) if on) or "a"
                   for v in s]
    else:
        df["y"] = (100 + 10 * s).round(2)
    train, test = df.iloc[:n].reset_index(drop=True), df.iloc[n:].drop(columns="y").reset_index(drop=True)
    value = {"binary": 0, "multiclass": "low", "multilabel": "a", "regression": 100.5}[target]
    sample = test[["id"]].assign(y=value)
    return train, test, sample


def init(*args: str, to: Path) -> int:
    return init_main(["--to", str(to), *args])


@pytest.fixture
def comps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty competitions folder on KIT_COMPETITIONS_PATH, Kaggle credentials absent, the cwd in tmp."""
    d = tmp_path / "comps"
    d.mkdir()
    monkeypatch.setenv(registry.PATH_ENV, str(d))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    for k in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return d


# ---- column roles ----------------------------------------------------------------------------------------------
def roles(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, tuple[str, str]]:
    return {c: (r.role, r.why) for c in train.columns if c in test.columns
            for r in [column_role(c, train[c], test[c])]}


def test_every_column_kind_gets_its_role_and_reason():
    train, test, _ = table()
    got = roles(train.drop(columns="y"), test)
    assert got["id"][0] == "left out" and "id-like" in got["id"][1]
    assert got["x"] == ("numeric", f"numbers ({train['x'].nunique()} distinct) -> numeric")
    assert got["k"][0] == "numeric"
    assert got["flag01"] == ("numeric", "0/1 -> boolean, numeric")
    assert got["color"] == ("categorical", "3 text values -> categorical")
    assert got["shop"][0] == "categorical" and "high cardinality" in got["shop"][1]
    assert got["member"][0] == "boolean"
    assert got["when"][0] == "datetime" and got["when"][1].endswith("-> year, month, day, dayofweek")
    assert got["note"][0] == "left out" and got["note"][1].startswith("free text")
    assert got["code"][0] == "left out" and "unique per row -> id-like" in got["code"][1]
    assert got["const"] == ("dropped", "one value 'same' -> constant, dropped")


def test_more_roles_bool_dtype_times_empty_and_mixed():
    tr = pd.DataFrame({"b": [True, False] * 10, "t": ["2021-03-04 10:30:00"] * 10 + ["2021-03-05 00:00:00"] * 10,
                       "e": [np.nan] * 20, "m": ["1", "2"] * 10, "n": [1.5] * 19 + [np.nan]})
    te = pd.DataFrame({"b": [True, False], "t": ["2021-03-06 11:00:00"] * 2, "e": [np.nan] * 2, "m": ["3", "x"],
                       "n": [1.5, 1.5]})
    got = roles(tr, te)
    assert got["b"][0] == "boolean"
    assert got["t"][0] == "datetime" and "hour" in got["t"][1]
    assert got["e"] == ("dropped", "empty in train -> dropped")
    assert got["m"] == ("categorical", "numbers, but test has text ('x') -> categorical")
    assert got["n"][0] == "dropped" and "(and missing)" in got["n"][1]


def test_columns_with_missing_values_keep_their_role(tmp_path: Path):
    n = 40
    names = [f"Person {i}" if i % 5 else None for i in range(n)]
    vip = [True, False, None, True] * (n // 4)
    tr = pd.DataFrame({"id": range(n), "name": names, "vip": vip, "y": [0, 1] * (n // 2)})
    te = pd.DataFrame({"id": range(n, n + 10), "name": [f"P{i}" for i in range(10)], "vip": [True, None] * 5})
    d = write_files(tmp_path / "m", tr, te, te[["id"]].assign(y=0))
    got = {c.name: (c.role, c.why) for c in scaffold("m", d, lookup=NO_KAGGLE).spec.columns}
    assert got["name"] == ("left out", "32 text values, unique per row that has one (32 of 40) -> id-like, left out")
    assert got["vip"][0] == "boolean"


def test_nearly_unique_text_is_an_identifier_but_repeated_text_a_category():
    rng = np.random.default_rng(1)
    tickets = pd.Series([f"PC {i}" for i in rng.integers(0, 90, size=200)])  # ~80 values over 200 rows
    towns = pd.Series([f"town{i}" for i in rng.integers(0, 40, size=200)])
    t = column_role("ticket", tickets, tickets[:20])
    assert t.role == "left out" and "nearly unique, id-like" in t.why
    c = column_role("town", towns, towns[:20])
    assert c.role == "categorical" and c.why.endswith("categorical (high cardinality)")


def test_feature_steps_for_booleans_and_dates():
    df = pd.DataFrame({"f": ["Yes", "no", None, "TRUE"], "d": ["2020-01-31", "2021-12-25 13:00", None, "bad"]})
    out = DateParts(["d"], ["year", "month", "hour"]).fit(df).transform(Booleans(["f"]).fit(df).transform(df))
    assert out["f"].tolist()[:2] == [1.0, 0.0] and np.isnan(out["f"].iloc[2]) and out["f"].iloc[3] == 1.0
    assert out["d_year"].tolist()[:2] == [2020.0, 2021.0] and out["d_hour"].iloc[1] == 13.0
    assert out[["d_year", "d_month"]].iloc[2:].isna().all().all()
    with pytest.raises(ValueError, match="unknown part"):
        DateParts(["d"], ["century"]).fit(df)


# ---- task, submission kind, metric -------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "metric"), [("binary", "accuracy"), ("multiclass", "accuracy"),
                                              ("multilabel", "f2_samples"), ("regression", "rmse")])
def test_each_task_kind_and_its_default_metric(tmp_path: Path, kind: str, metric: str):
    d = write_files(tmp_path / kind, *table(target=kind))
    res = scaffold(f"t-{kind}", d, lookup=NO_KAGGLE)
    assert (res.spec.task, res.spec.metric, res.spec.id_col, res.spec.target_col) == (kind, metric, "id", "y")
    assert any("the task's default" in n or "task's default" in n for n in res.notes)
    assert f'task = "{kind}"  # "y": ' in res.source


def test_submission_kinds_pick_the_metric(tmp_path: Path):
    train, test, sample = table(target="binary")
    res = scaffold("p", write_files(tmp_path / "p", train, test, sample.assign(y=0.5)), lookup=NO_KAGGLE)
    assert (res.spec.task, res.spec.metric) == ("binary", "auc")
    train, test, _ = table(target="multiclass")
    wide = test[["id"]].assign(high=1 / 3, low=1 / 3, mid=1 / 3)
    res = scaffold("w", write_files(tmp_path / "w", train, test, wide), lookup=NO_KAGGLE)
    assert (res.spec.task, res.spec.metric, res.spec.target_col) == ("multiclass", "logloss", "y")
    assert "one per class" in res.source


def test_given_metric_or_task_decides(tmp_path: Path):
    train, test, sample = table(target="binary")
    train["y"] = train["k"] + 1  # 4 integer values: classes unless the metric scores numbers
    d = write_files(tmp_path / "r", train, test, sample)
    assert scaffold("a", d, lookup=NO_KAGGLE).spec.task == "multiclass"
    res = scaffold("b", d, metric="rmse")
    assert (res.spec.task, res.spec.metric, res.spec.metric_why) == ("regression", "rmse", "--metric rmse")
    assert scaffold("c", d, task="regression", metric="mae").spec.task == "regression"
    train["y"] = np.arange(len(train)) % 30  # 30 integer values: numbers, unless a class metric is given
    d = write_files(tmp_path / "many", train, test, sample)
    assert scaffold("d", d, lookup=NO_KAGGLE).spec.task == "regression"
    assert scaffold("e", d, metric="accuracy").spec.task == "multiclass"
    assert scaffold("g", d, metric="accuracy", group="shop").spec.group_col == "shop"


# ---- Kaggle's metric names -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kaggle", "kit"), [
    ("Categorization Accuracy", "accuracy"), ("Area Under Receiver Operating Characteristic Curve", "auc"),
    ("AUC", "auc"), ("Root Mean Squared Error", "rmse"), ("RMSLE", "rmsle"),
    ("Root Mean Squared Logarithmic Error", "rmsle"), ("Log Loss", "logloss"), ("Multiclass Loss", "logloss"),
    ("Mean Absolute Error", "mae"), ("Mean F2-Score", "f2_samples"), ("MeanFScoreBeta", "f2_samples"),
    ("Mean F1-Score", "f1_samples"), ("Macro F1 Score", "f1_macro"), ("F1 Score", "f1"), ("R2 Score", "r2"),
])
def test_kaggle_metric_names_map_to_kits(kaggle: str, kit: str):
    assert kit_metric(kaggle) == kit


def test_every_mapped_metric_exists_and_unknown_ones_fall_back(tmp_path: Path):
    from kit import metrics

    assert set(KAGGLE_METRICS.values()) <= set(metrics.BUILTIN)
    assert kit_metric("Quadratic Weighted Kappa") is None and kit_metric(None) is None
    d = write_files(tmp_path / "k", *table(target="binary"))
    res = scaffold("k", d, lookup=lambda slug: ("Categorization Accuracy", f"Kaggle's metric for {slug}"))
    assert res.spec.metric == "accuracy" and "Kaggle's evaluation metric 'Categorization Accuracy'" in res.source
    res = scaffold("q", d, lookup=lambda slug: ("Quadratic Weighted Kappa", "from Kaggle"))
    assert res.spec.metric == "accuracy"
    assert any("'Quadratic Weighted Kappa' is not one kit scores" in n for n in res.notes)


def test_no_credentials_never_imports_the_client(tmp_path: Path, comps: Path):
    from kit.scaffold.kaggle_metrics import lookup

    sys.modules.pop("kaggle", None)
    name, note = lookup("anything")
    assert name is None and "no Kaggle credentials" in note and "kaggle" not in sys.modules


# ---- refusals and bad input ----------------------------------------------------------------------------------------
def _fails(capsys, args: list[str], to: Path, code: int, *words: str) -> None:
    assert init(*args, to=to) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err


def test_refusals_say_one_line_and_write_nothing(tmp_path: Path, comps: Path, capsys):
    train, test, sample = table()
    cases = {
        "ids": (train, test, sample.assign(id=sample["id"] + 1000), 3, ["sample_submission.csv", "row 2", "id 1121"]),
        "target-in-test": (train, test.assign(y=0), sample, 3, ["test.csv", "column y", "in the test file"]),
        "repeated-id": (train, pd.concat([test, test.iloc[:1]]), sample, 3, ["test.csv", "row 42", "repeated"]),
        "one-class": (train.assign(y=1), test, sample, 3, ["column y", "one value"]),
        "no-id-in-train": (train.drop(columns="id"), test, sample, 3, ["train.csv", "no column 'id'"]),
    }
    for name, (tr, te, sa, code, words) in cases.items():
        d = write_files(tmp_path / "data" / name, tr, te, sa)
        _fails(capsys, ["--comp", name, "--data-dir", str(d)], comps, code, *words)
        assert not (comps / name).exists()
    d = write_files(tmp_path / "data" / "two", train, test, sample)
    train.to_csv(d / "training.csv", index=False)
    _fails(capsys, ["--comp", "two", "--data-dir", str(d)], comps, 3, "cannot tell which is the train file",
           "train.csv, training.csv")
    (d / "training.csv").unlink()
    (d / "test.csv").unlink()
    _fails(capsys, ["--comp", "two", "--data-dir", str(d)], comps, 3, "no test file")
    _fails(capsys, ["--comp", "Bad Name", "--data-dir", str(d)], comps, 2, "lower case")
    _fails(capsys, ["--comp", "titanic", "--data-dir", str(d)], comps, 2, "already exists", "never find")
    d = write_files(tmp_path / "data" / "ok", train, test, sample)
    _fails(capsys, ["--comp", "m", "--data-dir", str(d), "--metric", "kappa"], comps, 2, "unknown metric")
    _fails(capsys, ["--comp", "m", "--data-dir", str(d), "--metric", "f2_samples", "--task", "binary"], comps, 2,
           "tags")
    _fails(capsys, ["--comp", "m", "--data-dir", str(d), "--target", "y", "x"], comps, 2, "one target")
    assert not any(comps.iterdir())


def test_existing_folder_needs_force_and_is_replaced_whole(tmp_path: Path, comps: Path, capsys):
    d = write_files(tmp_path / "data", *table())
    assert init("--comp", "again", "--data-dir", str(d), to=comps) == 0
    first = (comps / "again" / "__init__.py").read_text()
    (comps / "again" / "features.py").write_text("# the user's own file\n")
    capsys.readouterr()
    _fails(capsys, ["--comp", "again", "--data-dir", str(d), "--metric", "auc"], comps, 2, "already exists",
           "--force")
    assert (comps / "again" / "__init__.py").read_text() == first
    assert init("--comp", "again", "--data-dir", str(d), "--metric", "auc", "--force", to=comps) == 0
    assert 'metric = "auc"  # --metric auc' in (comps / "again" / "__init__.py").read_text()
    assert (comps / "again" / "features.py").exists()
    assert [p.name for p in (comps / "again").iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_bom_semicolons_quoted_newlines_and_extra_test_columns(tmp_path: Path, comps: Path, capsys):
    train, test, sample = table(target="multiclass")
    train.loc[3, "color"] = "red\nand green"  # a quoted field over two lines
    test = test.assign(extra=1.0)
    d = write_files(tmp_path / "data", train, test, sample, sep=";", encoding="utf-8-sig")
    assert (d / "train.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert init("--comp", "semi", "--data-dir", str(d), to=comps) == 0
    out = capsys.readouterr().out
    for said in ("byte-order mark", "separated by ';'", "span lines", "extra (ignored)"):
        assert said in out, out
    src = (comps / "semi" / "__init__.py").read_text()
    assert 'csv_options = {"sep": ";"}' in src and 'id_col, target_col = "id", "y"' in src
    data = registry.get("semi").load(d)  # the declared loader reads the same files
    assert data.train.columns[0] == "id" and data.train.loc[3, "color"] == "red\nand green"


def test_csv_zip_and_parquet_files(tmp_path: Path):
    train, test, sample = table(target="regression")
    d = tmp_path / "z"
    d.mkdir()
    train.to_csv(d / "train.csv.zip", index=False)
    test.to_csv(d / "test.csv.zip", index=False)
    sample.to_csv(d / "sample_submission.csv", index=False)
    assert find_files(d)["train"].name == "train.csv.zip"
    assert read_table(d / "train.csv.zip").frame.shape == train.shape
    res = scaffold("z", d, lookup=NO_KAGGLE)
    assert res.spec.task == "regression" and res.spec.files["train"] == "train.csv.zip"
    pytest.importorskip("pyarrow")
    train.to_parquet(d / "train.parquet")
    with pytest.raises(DataError, match="cannot tell which is the train file"):
        find_files(d)


def test_kit_never_writes_a_broken_module(tmp_path: Path):
    train, test, sample = table()
    train = train.rename(columns={"color": 'co"l\\or'})
    test = test.rename(columns={"color": 'co"l\\or'})
    res = scaffold("odd", write_files(tmp_path / "o", train, test, sample), lookup=NO_KAGGLE)
    ns: dict = {}
    exec(compile(res.source, "odd", "exec"), ns)  # noqa: S102 (our own generated source)
    assert 'co"l\\or' in ns["COMPETITION"].categorical_features


def test_multiple_targets_and_unknown_target_refused(tmp_path: Path):
    train, test, sample = table()
    train["y2"] = train["y"]
    d = write_files(tmp_path / "m", train, test, sample.assign(y2=0))
    with pytest.raises(KitError, match="take one target column"):
        scaffold("m", d, lookup=NO_KAGGLE)
    assert scaffold("m2", d, targets=["y2"], lookup=NO_KAGGLE).spec.target_col == "y2"
    d = write_files(tmp_path / "u", train, test, sample.rename(columns={"y": "answer"}))
    with pytest.raises(DataError, match="cannot tell the target"):
        scaffold("u", d, lookup=NO_KAGGLE)


# ---- init, then train with no edit -------------------------------------------------------------------------------
def cv_of(name: str, data_dir: Path, tmp: Path, capsys) -> float:
    capsys.readouterr()
    assert train_main(["--comp", name, "--data-dir", str(data_dir), "--model", "lightgbm", "--folds", "2",
                       "--runs", str(tmp / "runs"), "--out", str(tmp / "subs"), "--quiet"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("CV "))
    return float(line.split()[2])


def test_init_then_train_titanic_format(tmp_path: Path, comps: Path, capsys):
    d = tmp_path / "titanic"
    generate_titanic(d, n_train=200, n_test=80, seed=3)
    assert init("--comp", "ti-init", "--data-dir", str(d), "--metric", "accuracy", to=comps) == 0
    src = (comps / "ti-init" / "__init__.py").read_text()
    assert 'id_col, target_col = "PassengerId", "Survived"' in src and '"gender_submission.csv"' in src
    assert '"Sex",  # 2 text values -> categorical' in src
    assert 0.6 < cv_of("ti-init", d, tmp_path, capsys) <= 1.0


def test_init_with_dates_and_booleans_trains(tmp_path: Path, comps: Path, capsys):
    d = write_files(tmp_path / "data", *table(n=160, target="regression"))
    assert init("--comp", "dated", "--data-dir", str(d), to=comps) == 0
    src = (comps / "dated" / "__init__.py").read_text()
    assert '("dates_when", DateParts(["when"], ["year", "month", "day", "dayofweek"]))' in src
    assert '("booleans", Booleans(["member"]))' in src
    assert cv_of("dated", d, tmp_path, capsys) > 0


@pytest.fixture(scope="module")
def contract():
    sys.path.insert(0, str(BENCH))
    try:
        import contract as module
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.mark.parametrize("key", ["wine", "diabetes", "breast_cancer"])
def test_init_matches_the_hand_written_contract_folders(key: str, contract, tmp_path: Path, comps: Path,
                                                        monkeypatch: pytest.MonkeyPatch, capsys):
    ds = contract.DATASETS[key]
    data_dir, _, _ = contract.write_dataset(ds, tmp_path / "bench")
    monkeypatch.setenv(registry.PATH_ENV, f"{comps}:{tmp_path / 'bench' / 'comps'}")
    name = f"init-{key.replace('_', '-')}"
    assert init("--comp", name, "--data-dir", str(data_dir), "--metric", ds.metric, to=comps) == 0
    inferred, hand = registry.get(name), registry.get(ds.name)
    assert str(inferred.task) == ds.task
    assert inferred.numeric_features == hand.numeric_features
    assert inferred.categorical_features == hand.categorical_features
    assert cv_of(name, data_dir, tmp_path, capsys) == pytest.approx(cv_of(ds.name, data_dir, tmp_path, capsys))


def test_kaggle_metric_through_the_official_client_and_the_sandbox(tmp_path: Path, comps: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, capsys):
    from kit.sandbox.data import make_competition
    from kit.sandbox.server import Sandbox, client_env

    root = tmp_path / "sandbox"
    make_competition(root, "titanic", seed=1, n_train=120, n_test=50)
    slug = registry.get("titanic").slug
    with Sandbox(root, key="init-test-key") as sb:
        sb.write_credentials(tmp_path / "cfg")
        for k, v in {**client_env(sb.url, tmp_path / "cfg"), "KIT_KAGGLE_RETRIES": "1"}.items():
            monkeypatch.setenv(k, v)
        data = tmp_path / "files"
        data.mkdir()
        for f in ("train.csv", "test.csv", "gender_submission.csv"):
            (data / f).write_bytes((root / slug / f).read_bytes())
        assert init("--comp", "from-kaggle", "--slug", slug, "--data-dir", str(data), to=comps) == 0
    out = capsys.readouterr().out
    assert f"Kaggle's evaluation metric for '{slug}' is 'Categorization Accuracy'" in out
    assert ('metric = "accuracy"  # Kaggle\'s evaluation metric \'Categorization Accuracy\''
            in (comps / "from-kaggle" / "__init__.py").read_text())


def test_the_readme_template_is_what_kit_init_writes(tmp_path: Path):
    """The README's 'Adding a competition' file is kit init's output on the table it describes (kept in sync)."""
    import re

    from tests.test_contract import README, binary_yes_no, tabular_data

    rng = np.random.default_rng(0)
    df = tabular_data(rng, 400)
    df["target"] = np.where(binary_yes_no(df, rng) == "yes", 1, 0)
    df["name"] = [f"row number {i} of the table, with some words" for i in range(400)]
    train, test = df.iloc[:300], df.iloc[300:].drop(columns="target")
    d = write_files(tmp_path / "mycomp", train, test, test[["id"]].assign(target=0))
    src = scaffold("mycomp", d, slug="kaggle-slug", metric="accuracy").source
    block = re.search(r"```python\n# competitions/mycomp/__init__\.py[^\n]*\n(.*?)```", README.read_text(), re.S)
    assert block and block.group(1) == src


# ---- images ------------------------------------------------------------------------------------------------------
TINY_VISION = ["--folds", "2", "--set", "epochs=1", "--set", "size=16", "--set", "preset=cpu", "--quiet"]
COLORS = {"husky": (200, 30, 30), "pug": (30, 200, 30), "corgi": (30, 30, 200)}


def _img(path: Path, rgb: tuple[int, int, int], seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def dog_breed(d: Path, n: int = 30, n_test: int = 8) -> Path:
    """Dog Breed layout: labels.csv (id, breed), train/<id>.jpg, test/<id>.jpg, a wide probability sample."""
    breeds = list(COLORS)
    labels = pd.DataFrame({"id": [f"a{i:03d}" for i in range(n)], "breed": [breeds[i % 3] for i in range(n)]})
    for i, (iid, b) in enumerate(zip(labels["id"], labels["breed"], strict=True)):
        _img(d / "train" / f"{iid}.jpg", COLORS[b], i)
    test_ids = [f"t{i:03d}" for i in range(n_test)]
    for i, t in enumerate(test_ids):
        _img(d / "test" / f"{t}.jpg", COLORS[breeds[i % 3]], 100 + i)
    labels.to_csv(d / "labels.csv", index=False)
    pd.DataFrame({"id": test_ids, **{b: 1 / 3 for b in sorted(breeds)}}).to_csv(d / "sample_submission.csv",
                                                                                index=False)
    return d


def test_image_suffixes_agree():
    from kit.scaffold import vision
    from kit.vision.declared import IMAGE_SUFFIXES

    assert vision.IMAGE_SUFFIXES == IMAGE_SUFFIXES


def test_labels_csv_images_with_a_wide_sample_train(tmp_path: Path, comps: Path, capsys):
    d = dog_breed(tmp_path / "dogs")
    (d / "train" / "a004.jpg").unlink()  # an image listed but missing: said, and skipped when asked
    assert init("--comp", "dogs", "--data-dir", str(d), to=comps) == 0
    out = capsys.readouterr().out
    assert "labels.csv: row 6: image 'a004.jpg' is not in train/" in out and "--skip-bad-images" in out
    src = (comps / "dogs" / "__init__.py").read_text()
    assert "class Dogs(ImageCsvCompetition):" in src and 'metric = "logloss"' in src
    assert 'train_images, test_images, image_ext = "train", "test", ".jpg"' in src and '"gpu": {' in src
    assert 'id_col, target_col = "id", "breed"' in src
    assert train_main(["--comp", "dogs", "--data-dir", str(d), "--skip-bad-images", "--runs", str(tmp_path / "r"),
                       "--out", str(tmp_path / "s"), *TINY_VISION]) == 0
    sub = sorted((tmp_path / "s" / "dogs").glob("*.csv"))[-1]
    assert list(pd.read_csv(sub).columns) == ["id", "corgi", "husky", "pug"]


def test_planet_style_tags_and_two_test_folders(tmp_path: Path, comps: Path):
    d = tmp_path / "planet"
    tags = ["clear primary", "haze primary water", "clear", "cloudy", "clear primary water", "haze primary"]
    names = [f"train_{i}" for i in range(24)]
    for i, n in enumerate(names):
        _img(d / "train-jpg" / f"{n}.jpg", (20 * (i % 4), 100, 50), i)
    test = [f"test_{i}" for i in range(4)] + [f"file_{i}" for i in range(3)]
    for i, t in enumerate(test):
        _img(d / ("test-jpg" if t.startswith("test") else "test-jpg-additional") / f"{t}.jpg", (9, 9, 9), i)
    pd.DataFrame({"image_name": names, "tags": [tags[i % 6] for i in range(24)]}).to_csv(d / "train_v2.csv",
                                                                                          index=False)
    pd.DataFrame({"image_name": test, "tags": "clear primary"}).to_csv(d / "sample_submission_v2.csv", index=False)
    res = scaffold("tiles", d, lookup=NO_KAGGLE)
    assert (res.spec.layout, res.spec.task, res.spec.metric) == ("csv", "multilabel", "f2_samples")
    assert res.spec.test_images == ["test-jpg", "test-jpg-additional"]
    assert 'test_images, image_ext = "train-jpg", ["test-jpg", "test-jpg-additional"], ".jpg"' in res.source


def test_one_folder_per_class_trains(tmp_path: Path, comps: Path, capsys):
    d = tmp_path / "pets"
    for c, rgb in COLORS.items():
        for i in range(8):
            _img(d / "train" / c / f"{c}_{i}.png", rgb, i)
    test = [f"img{i}.png" for i in range(6)]
    for i, t in enumerate(test):
        _img(d / "test" / t, list(COLORS.values())[i % 3], 50 + i)
    pd.DataFrame({"file": test, "label": "pug"}).to_csv(d / "sample_submission.csv", index=False)
    assert init("--comp", "pets", "--data-dir", str(d), "--metric", "accuracy", to=comps) == 0
    src = (comps / "pets" / "__init__.py").read_text()
    assert "class Pets(ClassFolderCompetition):" in src and '"train", "test", ""' in src
    assert train_main(["--comp", "pets", "--data-dir", str(d), "--runs", str(tmp_path / "r"),
                       "--out", str(tmp_path / "s"), *TINY_VISION]) == 0
    sub = pd.read_csv(sorted((tmp_path / "s" / "pets").glob("*.csv"))[-1])
    assert sub["file"].tolist() == test and set(sub["label"]) <= set(COLORS)


def test_pixel_columns_train(tmp_path: Path, comps: Path, capsys):
    import importlib

    digits = importlib.import_module("competitions.digit-recognizer.synthetic")
    d = tmp_path / "digits"
    digits.generate(d, n_train=60, n_test=20, seed=0)
    assert init("--comp", "pixels", "--data-dir", str(d), "--metric", "accuracy", to=comps) == 0
    src = (comps / "pixels" / "__init__.py").read_text()
    assert "class Pixels(PixelCsvCompetition):" in src
    assert 'label_col, pixel_prefix, side = "label", "pixel", 28' in src
    assert 'id_col, target_col = "ImageId", "Label"' in src
    assert train_main(["--comp", "pixels", "--data-dir", str(d), "--runs", str(tmp_path / "r"),
                       "--out", str(tmp_path / "s"), *TINY_VISION]) == 0


def test_image_refusals(tmp_path: Path, comps: Path, capsys):
    d = dog_breed(tmp_path / "dogs")
    labels = pd.read_csv(d / "labels.csv")
    labels.loc[3, "breed"] = ""
    labels.to_csv(d / "labels.csv", index=False)
    _fails(capsys, ["--comp", "dogs", "--data-dir", str(d)], comps, 3, "labels.csv", "row 5", "missing label")
    (d / "sample_submission.csv").unlink()
    _fails(capsys, ["--comp", "dogs", "--data-dir", str(d)], comps, 3, "no sample submission")
    assert not any(comps.iterdir())


def test_generated_modules_pass_the_projects_lint(tmp_path: Path):
    """What kit init writes passes `make lint` (ruff with pyproject's rules) as it is, long names included."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    train, test, sample = table()
    long = "a_very_long_column_name_that_a_real_competition_might_well_have_" * 2
    train, test = train.rename(columns={"note": long}), test.rename(columns={"note": long})
    sources = [scaffold("x" * 40, write_files(tmp_path / "t", train, test, sample), lookup=NO_KAGGLE).source,
               scaffold("dogs", dog_breed(tmp_path / "d"), lookup=NO_KAGGLE).source]
    for i, src in enumerate(sources):
        assert max(map(len, src.splitlines())) <= 120
        r = subprocess.run([ruff, "check", "--config", str(BENCH.parent / "pyproject.toml"), "--stdin-filename",
                            f"competitions/gen{i}/__init__.py", "-"], input=src, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_missing_data_folder_says_how_to_fill_it(tmp_path: Path, comps: Path, capsys):
    _fails(capsys, ["--comp", "nodata", "--slug", "some-slug", "--data-dir", str(tmp_path / "none")], comps, 3,
           "no such folder", "kaggle competitions download -c some-slug")

"""The whole `kit train --comp titanic` path on generated data, and its bad-input behaviour."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit import registry
from kit.commands.train import main
from kit.errors import KitError
from kit.run import train_and_submit
from kit.spec import FoldOutput

FAST = ["--folds", "2", "--set", "epochs=2", "--quiet"]


def run_train(capsys, *args):
    rc = main(["--comp", "titanic", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def submissions(root: Path) -> list[Path]:
    return sorted(root.rglob("*.csv")) if root.exists() else []


def test_train_end_to_end_writes_valid_submission(titanic_dir, workdir, capsys):
    rc, out, err = run_train(capsys, "--data-dir", str(titanic_dir), *FAST)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("CV accuracy ") and "±" in lines[0] and "over 2 folds" in lines[0]
    path = Path(lines[-1])  # the last line is the submission path
    assert path.is_file() and path.parent == Path("submissions/titanic")
    sub = pd.read_csv(path)
    sample = pd.read_csv(titanic_dir / "gender_submission.csv")
    assert sub["PassengerId"].tolist() == sample["PassengerId"].tolist()
    assert set(sub["Survived"]) <= {0, 1}
    side = json.loads(path.with_suffix(".json").read_text())
    assert len(side["cv"]["fold_scores"]) == 2 and side["seed"] == 42 and side["params"]["epochs"] == 2
    assert set(side["inputs_sha256"]) == {"train", "test", "sample"}
    assert len(side["inputs_sha256"]["train"]) == 64
    run_dir = Path(side["run_dir"])
    folds = pd.read_csv(run_dir / "folds.csv")
    assert sorted(folds["fold"].unique()) == [0, 1]
    assert (run_dir / "oof.csv").is_file() and (run_dir / "threshold_curve.png").is_file()


def test_same_seed_gives_byte_identical_submission(titanic_dir, workdir, capsys):
    paths = []
    for _ in range(2):
        rc, out, _ = run_train(capsys, "--data-dir", str(titanic_dir), *FAST, "--seed", "5")
        assert rc == 0
        paths.append(Path(out.strip().splitlines()[-1]))
    assert paths[0] != paths[1]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    runs = [json.loads(p.with_suffix(".json").read_text())["run_dir"] for p in paths]
    assert Path(runs[0], "oof.csv").read_bytes() == Path(runs[1], "oof.csv").read_bytes()
    assert Path(runs[0], "folds.csv").read_bytes() == Path(runs[1], "folds.csv").read_bytes()


def _edit(name: str, fn):
    """A damage step: rewrite one CSV of the competition folder through `fn(df) -> df`."""

    def damage(d: Path) -> None:
        fn(pd.read_csv(d / name)).to_csv(d / name, index=False)

    return damage


def _set_cell(col: str, row: int, value):
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df

    return fn


BAD_INPUTS = {
    "missing-file": (lambda d: (d / "test.csv").unlink(), r"test\.csv: file not found; get the competition files"),
    "empty-csv": (lambda d: (d / "train.csv").write_text(""), r"train\.csv: file is empty"),
    "missing-column": (_edit("train.csv", lambda df: df.drop(columns=["Fare"])), r"train\.csv: missing column.*Fare"),
    "non-numeric": (_edit("test.csv", _set_cell("Age", 4, "forty")),
                    r"test\.csv: row 6, column Age: non-numeric value 'forty'"),
    "duplicate-id": (_edit("train.csv", _set_cell("PassengerId", 9, 1)),
                     r"train\.csv: row 11, column PassengerId: duplicate id 1"),
    "sample-ids": (_edit("gender_submission.csv", _set_cell("PassengerId", 0, 5)),
                   r"gender_submission\.csv: 1 id\(s\) not in test\.csv"),
    "bad-target": (_edit("train.csv", _set_cell("Survived", 2, 3)),
                   r"train\.csv: row 4, column Survived: 3 is a third class"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_error_nonzero_exit_nothing_written(titanic_dir, workdir, capsys, case):
    damage, message = BAD_INPUTS[case]
    damage(titanic_dir)
    rc, out, err = run_train(capsys, "--data-dir", str(titanic_dir), *FAST)
    assert rc == 3  # DataError
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert submissions(workdir / "submissions") == []


def test_unknown_competition_and_parameter(workdir, capsys):
    rc = main(["--comp", "nope"])
    assert rc == 2 and "unknown competition 'nope'; known: " in capsys.readouterr().err
    rc, _, err = run_train(capsys, "--set", "speed=3")
    assert rc == 2 and "--set speed: unknown parameter" in err
    rc, _, err = run_train(capsys, "--set", "dropout=1.5")
    assert rc == 2 and "dropout must be in [0, 1)" in err


class NaNTitanic(type(registry.get("titanic"))):
    """Titanic whose fold models emit NaN for one test row, as a diverged model would."""

    def fit_fold(self, data, train_idx, valid_idx, params, seed, callbacks=None, progress=True):
        out = super().fit_fold(data, train_idx, valid_idx, params, seed, callbacks, progress)
        test = out.test.copy()
        test[3] = np.nan
        return FoldOutput(out.valid, test, out.history)


def test_nan_predictions_stop_before_any_file_is_written(titanic_dir, workdir):
    comp = NaNTitanic()
    with pytest.raises(KitError, match=r"NaN in test predictions \(test row 5"):
        train_and_submit(comp, titanic_dir, comp.params({"epochs": 1}), n_folds=2, progress=False)
    assert submissions(workdir / "submissions") == [] and not (workdir / "runs").exists()


def test_console_script_subprocess_exit_code_and_single_line(tmp_path):
    kit = Path(sys.executable).with_name("kit")
    r = subprocess.run([str(kit), "train", "--comp", "titanic", "--data-dir", str(tmp_path / "none")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 3
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ")
    assert "none: folder not found; get the competition files" in r.stderr  # said before torch is imported
    r = subprocess.run([sys.executable, "-m", "kit.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "train" in r.stdout

import json

import numpy as np
import pandas as pd
import pytest

from kit import registry
from kit.errors import SubmissionError
from kit.submission import latest_submission, validate_submission, write_submission


@pytest.fixture
def comp():
    return registry.get("titanic")


@pytest.fixture
def sample():
    return pd.DataFrame({"PassengerId": [892, 893, 894, 895], "Survived": [0, 1, 0, 0]})


def test_valid_submission_passes(comp, sample):
    df = sample.assign(Survived=[1, 1, 0, 1])
    assert validate_submission(comp, df, sample) is df


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.rename(columns={"Survived": "survived"}), "columns"),
        (lambda d: d.assign(Survived=[0, 1, np.nan, 1]), r"row 4, column Survived: missing value"),
        (lambda d: d.assign(PassengerId=[892, 892, 894, 895]), r"row 3, column PassengerId: duplicate id 892"),
        (lambda d: d.iloc[[1, 0, 2, 3]], r"row 2, column PassengerId: id 893 where the sample has 892"),
        (lambda d: d.assign(PassengerId=[892, 893, 894, 999]), r"id set differs.*missing.*895.*not in the sample.*999"),
        (lambda d: d.iloc[:3], "id set differs"),
        (lambda d: d.assign(Survived=[0, 1, 2, 0]), r"row 4, column Survived: value 2 not in allowed set"),
    ],
)
def test_invalid_submissions_name_the_problem(comp, sample, mutate, message):
    with pytest.raises(SubmissionError, match=message) as e:
        validate_submission(comp, mutate(sample.copy()), sample, classes=[0, 1])
    assert "\n" not in str(e.value)


def test_validate_reads_files(comp, sample, tmp_path):
    sample.to_csv(tmp_path / "s.csv", index=False)
    sample.to_csv(tmp_path / "sub.csv", index=False)
    validate_submission(comp, tmp_path / "sub.csv", tmp_path / "s.csv")
    (tmp_path / "sub.txt").write_text("x")
    with pytest.raises(SubmissionError, match="not a CSV"):
        validate_submission(comp, tmp_path / "sub.txt", tmp_path / "s.csv")
    with pytest.raises(SubmissionError, match="file not found"):
        validate_submission(comp, tmp_path / "nope.csv", tmp_path / "s.csv")


def test_write_is_atomic_with_sidecar_and_refuses_invalid(comp, sample, tmp_path):
    path = write_submission(comp, sample, sample, {"seed": 1, "cv": {"mean": 0.8}}, root=tmp_path)
    assert path.parent == tmp_path / "titanic" and path.suffix == ".csv"
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["seed"] == 1 and side["competition"] == "titanic" and "git_commit" in side
    assert pd.read_csv(path).equals(sample)
    assert latest_submission("titanic", tmp_path) == path
    with pytest.raises(SubmissionError):
        write_submission(comp, sample.assign(Survived=np.nan), sample, {}, root=tmp_path)
    assert sorted(p.name for p in (tmp_path / "titanic").iterdir()) == [path.name, path.with_suffix(".json").name]


def test_latest_submission_when_none(tmp_path):
    with pytest.raises(SubmissionError, match="run `kit train --comp titanic` first"):
        latest_submission("titanic", tmp_path)

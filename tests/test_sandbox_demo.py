"""`make demo`'s script: the real commands as subprocesses against the sandbox, ending with a score."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.kaggle.ledger import LEDGER_NAME, Ledger
from kit.sandbox.competitions import score_submission
from kit.sandbox.data import CompetitionMeta
from kit.sandbox.demo import run_demo


def test_demo_downloads_trains_submits_and_reports_the_sandbox_score(tmp_path: Path, monkeypatch, capsys) -> None:
    for k in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    scores = run_demo(tmp_path, names=["titanic"], train_args=["--set", "epochs=1"])  # planet: test_sandbox.py
    out = capsys.readouterr().out
    assert list(scores) == ["titanic"]
    (entry,) = Ledger(tmp_path / "submissions" / LEDGER_NAME).entries("titanic")
    comp_dir = tmp_path / "sandbox" / "titanic"
    want = score_submission(comp_dir, CompetitionMeta.load(comp_dir), Path(tmp_path / entry.file).read_bytes())[0]
    assert scores["titanic"] == entry.public_score == pytest.approx(want, abs=1e-5)
    assert f"sandbox public score for titanic: {scores['titanic']:.5f}" in out
    assert "$ kit train --comp titanic --data-dir data/titanic --folds 2" in out
    assert (tmp_path / "data" / "titanic" / "train.csv").is_file()
    assert "$ kit init --comp titanic-init --slug titanic --data-dir data/titanic" in out
    inited = (tmp_path / "comps" / "titanic-init" / "__init__.py").read_text()
    assert "metric = \"accuracy\"  # Kaggle's evaluation metric 'Categorization Accuracy'" in inited
    assert "$ kit train --comp titanic-init --data-dir data/titanic --folds 2" in out
    key = (tmp_path / "kaggle-config" / "kaggle.json").read_text().split('"key": "')[1].split('"')[0]
    assert key not in out and key not in (tmp_path / "submissions" / LEDGER_NAME).read_text()

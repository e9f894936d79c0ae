"""`kit board`: runs and submissions in one table sorted by CV, scores from the ledger (refreshed through the
Kaggle client when credentials are there, offline otherwise), board.png, and the two submissions to select."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.commands.board import main as board_main
from kit.ensemble import board
from kit.io import atomic_write_csv, atomic_write_json, sha256_file
from kit.kaggle.ledger import LEDGER_NAME, Ledger


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))


def make_run(root: Path, name: str, cv: float, oof: np.ndarray, model: str | None = "mlp") -> Path:
    """A finished titanic run folder with its submission file, as kit train leaves them."""
    d = root / "runs" / "titanic" / name
    ids = np.arange(1, len(oof) + 1)
    atomic_write_csv(d / "folds.csv", pd.DataFrame({"PassengerId": ids, "fold": ids % 2}))
    atomic_write_csv(d / "oof.csv", pd.DataFrame({"PassengerId": ids, "p0": oof}))
    atomic_write_csv(d / "test_probs.csv", pd.DataFrame({"PassengerId": [892, 893], "p0": [0.2, 0.7]}))
    sub = root / "submissions" / "titanic" / f"{name}.csv"
    # each run's file has its own bytes (the ledger knows files by SHA-256), as real predictions do
    atomic_write_csv(sub, pd.DataFrame({"PassengerId": [892, 893, 900 + int(name[6:8])], "Survived": [0, 1, 1]}))
    rec = {"cv": {"metric": "accuracy", "mean": cv, "std": 0.01, "n_folds": 2, "fold_scores": [cv, cv]},
           "oof_score": cv + 0.005, "task": "binary", "metric": "accuracy", "submission": str(sub)}
    if model is not None:
        rec["model"] = model
    atomic_write_json(d / "record.json", rec)
    return d


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Four runs: A best CV, B nearly A's predictions, C unrelated ones, D (no model recorded) 1 - A and worst."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    base = rng.random(60)
    return {
        "A": make_run(tmp_path, "20260101T000000000Z", 0.84, base),
        "B": make_run(tmp_path, "20260102T000000000Z", 0.83, base + rng.normal(0, 0.01, 60)),
        "C": make_run(tmp_path, "20260103T000000000Z", 0.81, rng.random(60), model="lightgbm"),
        "D": make_run(tmp_path, "20260104T000000000Z", 0.70, 1 - base, model=None),
    }


def run_board(capsys, root: Path, *args: str) -> tuple[int, list[str], str]:
    rc = board_main(["--comp", "titanic", "--runs", str(root / "runs"), "--out", str(root / "submissions"), *args])
    out, err = capsys.readouterr()
    return rc, out.strip().splitlines(), err


def test_board_without_ledger_scores(runs, tmp_path, capsys, no_credentials):
    rc, lines, err = run_board(capsys, tmp_path)
    assert rc == 0, err
    assert lines[0] == "ledger: offline (no Kaggle credentials); scores as last recorded"
    table = [ln for ln in lines if ln.startswith("2026")]
    assert [ln.split()[0] for ln in table] == [runs[k].name for k in "ABCD"]  # sorted by CV, best first
    assert table[2].split()[1] == "lightgbm" and table[3].split()[1] == "mlp"  # no model recorded: mlp
    assert "0.8400 ± 0.0100" in table[0] and "0.8450" in table[0]
    select = next(ln for ln in lines if ln.startswith("select: "))
    # best CV is A; B is nearly a copy of A, D is 1 - A (correlation -1): D is the second pick
    assert f"{runs['A'].name}.csv (best CV" in select and f"and {runs['D'].name}.csv" in select
    assert lines[-1] == f"board: {tmp_path / 'runs' / 'titanic' / 'board.png'}"
    assert (tmp_path / "runs" / "titanic" / "board.png").stat().st_size > 1000


def _score(ledger: Ledger, sub: Path, ref: int, public: float | None, private: float | None) -> None:
    e = ledger.begin("titanic", "titanic", sha256_file(sub), sub, f"kit {sub.stem}")
    ledger.submitted(e, ref)
    if public is not None:
        ledger.scored(e, "complete", public, private)


def test_board_with_ledger_scores(runs, tmp_path, capsys, no_credentials):
    ledger = Ledger(tmp_path / "submissions" / LEDGER_NAME)
    subs = {k: tmp_path / "submissions" / "titanic" / f"{d.name}.csv" for k, d in runs.items()}
    _score(ledger, subs["A"], 1, 0.775, 0.77)
    _score(ledger, subs["B"], 2, 0.790, 0.78)
    _score(ledger, subs["C"], 3, 0.800, None)
    rc, lines, err = run_board(capsys, tmp_path, "--offline")
    assert rc == 0, err
    assert lines[0] == "ledger: offline (--offline); scores as last recorded"
    row = {ln.split()[0]: ln for ln in lines if ln.startswith("2026")}
    assert "0.77500" in row[runs["A"].name] and "0.77000" in row[runs["A"].name]
    assert "0.80000" in row[runs["C"].name]
    assert row[runs["D"].name].split()[-2:] == ["-", "-"]  # never submitted
    select = next(ln for ln in lines if ln.startswith("select: "))
    # among the submitted ones (A, B, C), C is the least correlated with A
    assert f"and {runs['C'].name}.csv" in select and "submitted to Kaggle" in select
    assert (tmp_path / "runs" / "titanic" / "board.png").is_file()


def test_board_refreshes_scores_through_the_client(runs, tmp_path, capsys, monkeypatch, no_credentials):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef")
    ledger = Ledger(tmp_path / "submissions" / LEDGER_NAME)
    sub = tmp_path / "submissions" / "titanic" / f"{runs['B'].name}.csv"
    _score(ledger, sub, 7, None, None)  # submitted, not yet scored

    def fake_reconcile(kg, comp, led, remote=None):
        e = next(e for e in led.entries(comp.name) if e.ref == 7)
        led.scored(e, "complete", 0.8123, 0.7999)
        return []

    monkeypatch.setattr("kit.kaggle.submissions.reconcile", fake_reconcile)
    rc, lines, err = run_board(capsys, tmp_path)
    assert rc == 0, err
    assert lines[0].startswith("ledger: refreshed from Kaggle")
    assert "0.81230" in next(ln for ln in lines if ln.startswith(runs["B"].name))
    assert "0123456789abcdef" not in "\n".join(lines) + err


def test_board_refuses_a_ledger_line_that_is_not_json(runs, tmp_path, capsys, no_credentials):
    path = tmp_path / "submissions" / LEDGER_NAME
    path.write_text('{"event": "pending"}\nnot json\n')
    rc, lines, err = run_board(capsys, tmp_path, "--offline")
    assert rc == 3 and "line 2 is not a JSON object" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "titanic" / "board.png").exists()


def test_board_skips_a_corrupt_record_and_renders_with_nothing(tmp_path, capsys, no_credentials, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, lines, _ = run_board(capsys, tmp_path)
    assert rc == 0 and "no runs under" in lines[-1]
    make_run(tmp_path, "20260101T000000000Z", 0.8, np.linspace(0, 1, 10))
    bad = tmp_path / "runs" / "titanic" / "20260102T000000000Z"
    bad.mkdir()
    (bad / "folds.csv").write_text("PassengerId,fold\n1,0\n")
    (bad / "record.json").write_text("{oops")
    rc, lines, _ = run_board(capsys, tmp_path)
    assert rc == 0 and any(ln.startswith("skipped ") and "corrupt record" in ln for ln in lines)
    assert any("no second submission" in ln for ln in lines)


def test_plot_draws_the_reference_only_on_the_same_scale(tmp_path):
    rows = [board.Row("r1", "mlp", 0.84, 0.01, 2, 0.85, Path("a.csv"), public=0.78),
            board.Row("r2", "mlp", 0.82, 0.01, 2, 0.83, Path("b.csv"), public=0.80)]
    assert board.plot(rows, "accuracy", "t", tmp_path / "same.png").is_file()
    rows[0].public, rows[1].public = 12.0, 13.0  # e.g. the leaderboard scores another metric
    assert board.plot(rows, "accuracy", "t", tmp_path / "other.png").is_file()

"""A killed `kit train` resumes from its finished folds and writes the same submission, byte for byte."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kit.checkpoint import FoldCheckpoint
from kit.spec import FoldOutput

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--folds", "3", "--set", "epochs=60", "--set", "n_models=3", "--quiet", "--threads", "1"]


def _train(data: Path, runs: Path, out: Path) -> subprocess.Popen:
    runs.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "kit", "train", "--comp", "titanic", "--data-dir", str(data),
                             "--runs", str(runs), "--out", str(out), *ARGS], cwd=runs.parent,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_killed_run_resumes_from_finished_folds_and_reproduces_the_submission(titanic_dir, tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "subs"
    partial = runs / "titanic" / "partial"
    p = _train(titanic_dir, runs, out)
    deadline = time.monotonic() + 120
    while not list(partial.glob("*/fold-0.npz")):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)  # as a crash or a lost machine would: no clean-up runs
    p.wait()
    finished = sorted(f.name for f in partial.glob("*/fold-*.npz"))
    assert finished and "fold-2.npz" not in finished and not list(out.rglob("*.csv"))
    resumed = _train(titanic_dir, runs, out)
    so, se = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, se
    assert "finished in an interrupted run, reused" in se
    assert not partial.exists()  # complete: nothing left to resume
    whole = _train(titanic_dir, tmp_path / "other" / "runs", tmp_path / "other" / "subs")
    wo, we = whole.communicate(timeout=300)
    assert whole.returncode == 0, we
    assert Path(so.strip().splitlines()[-1]).read_bytes() == Path(wo.strip().splitlines()[-1]).read_bytes()


def test_checkpoint_round_trip_and_config_hash(tmp_path):
    a = FoldCheckpoint.for_config(tmp_path, "c", {"params": {"lr": 0.1}, "seed": 1})
    b = FoldCheckpoint.for_config(tmp_path, "c", {"seed": 1, "params": {"lr": 0.1}})
    c = FoldCheckpoint.for_config(tmp_path, "c", {"params": {"lr": 0.2}, "seed": 1})
    assert a.directory == b.directory != c.directory  # same config, same folder; another config, another
    out = FoldOutput(valid=np.arange(6.0).reshape(3, 2), test=np.ones((4, 2)), history=[{"train_loss": 0.5}])
    a.save(1, out)
    back = a.load(1)
    assert np.array_equal(back.valid, out.valid) and np.array_equal(back.test, out.test)
    assert back.history == out.history and a.load(0) is None
    (a.directory / "fold-1.npz").write_bytes(b"torn")
    assert a.load(1) is None  # a damaged fold is trained again, never half-read
    a.clear()
    assert not (tmp_path / "c" / "partial").exists()

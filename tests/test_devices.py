"""`kit train --devices 2`: two CPU processes (gloo) against one, on generated Titanic-format data."""

from __future__ import annotations

import json
import re
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.commands.train import main

# a probe competition: Titanic, with a callback logging (as a warning: ranks other than 0 keep only those) how
# many training rows this rank's first epoch saw and the sum of their rows' hashes, a fingerprint of its shard
PROBE = '''
import hashlib
import logging

from fastai.callback.core import Callback

from competitions.titanic import Titanic
from kit import devices


class SeenRows(Callback):
    def before_fit(self):
        self.rows, self.total = 0, 0

    def after_batch(self):
        if self.training and self.epoch == 0:
            x = self.xb[0].detach().cpu().numpy()
            self.rows += len(x)
            self.total += sum(int(hashlib.sha1(r.tobytes()).hexdigest()[:12], 16) for r in x)

    def after_epoch(self):
        if self.epoch == 0:
            logging.getLogger("probe").warning("probe rank=%d rows=%d hash=%d", devices.rank(), self.rows,
                                               self.total)


class TitanicProbe(Titanic):
    name = "titanic_probe"

    def fit_fold(self, data, train_idx, valid_idx, params, seed, callbacks=None, progress=True):
        return super().fit_fold(data, train_idx, valid_idx, params, seed, [*(callbacks or []), SeenRows()],
                                progress)


COMPETITION = TitanicProbe()
'''

# dropout off and 30 epochs (5 steps each): the nets get near their optimum, where the batch composition matters
# little (measured: OOF |p1 - p2| mean 0.005, max 0.021), while a rank training alone on its half of the rows (no
# gradient averaging) moves them ten times as far (mean 0.049, max 0.23)
ARGS = ["--comp", "titanic_probe", "--folds", "2", "--set", "epochs=30", "--set", "dropout=0", "--set", "bs=16",
        "--threads", "1", "--quiet"]


def gloo_loopback() -> str | None:
    """Why gloo cannot run here (a loopback port or a gloo device refused), or None."""
    try:
        import torch.distributed as dist

        store = dist.TCPStore("127.0.0.1", 0, 1, True, timeout=timedelta(seconds=10))
        dist.ProcessGroupGloo(store, 0, 1)
    except Exception as e:  # any failure: no gloo here
        return f"gloo cannot bind a loopback port here: {e}"
    return None


NO_GLOO = gloo_loopback()


def probes(text: str) -> list[tuple[int, int, int]]:
    """(rank, rows, hash) of every probe line, in order."""
    return [tuple(map(int, m)) for m in re.findall(r"probe rank=(\d+) rows=(\d+) hash=(\d+)", text)]


def outputs(runs: Path, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, list[Path]]:
    """The one run folder's OOF and test probabilities and record, and the submissions written."""
    run_dirs = [d for d in (runs / "titanic_probe").iterdir() if d.name != "cache"]
    assert len(run_dirs) == 1, run_dirs
    d = run_dirs[0]
    return (pd.read_csv(d / "oof.csv"), pd.read_csv(d / "test_probs.csv"), json.loads((d / "record.json").read_text()),
            sorted((out / "titanic_probe").glob("*.csv")))


@pytest.mark.skipif(NO_GLOO is not None, reason=str(NO_GLOO))
def test_two_cpu_processes_match_one(titanic_dir, tmp_path, monkeypatch, capfd, caplog):
    comps = tmp_path / "comps" / "titanic_probe"
    comps.mkdir(parents=True)
    (comps / "__init__.py").write_text(textwrap.dedent(PROBE))
    monkeypatch.setenv("KIT_COMPETITIONS_PATH", str(comps.parent))
    monkeypatch.chdir(tmp_path)
    data = ["--data-dir", str(titanic_dir)]

    t = time.perf_counter()
    assert main([*ARGS, *data, "--runs", "r1", "--out", "s1"]) == 0
    one_s = time.perf_counter() - t
    one_log = caplog.text  # this process's log lines
    capfd.readouterr()
    t = time.perf_counter()
    assert main([*ARGS, *data, "--runs", "r2", "--out", "s2", "--devices", "2"]) == 0
    two_s = time.perf_counter() - t
    two = capfd.readouterr()

    oof1, test1, rec1, subs1 = outputs(tmp_path / "r1", tmp_path / "s1")
    oof2, test2, rec2, subs2 = outputs(tmp_path / "r2", tmp_path / "s2")
    # exactly one run folder (checked in `outputs`) and one submission with its sidecar; nothing else written
    assert len(subs1) == len(subs2) == 1 and subs2[0].with_suffix(".json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comps", "r1", "r2", "s1", "s2", "titanic"]
    assert sorted(p.name for p in (tmp_path / "r2" / "titanic_probe").iterdir()) == [rec2["run_dir"].split("/")[-1]]
    # rank 0 printed the run once (the last line is the submission) and nothing else reached stdout
    assert two.out.count("CV accuracy") == 1 and two.out.strip().splitlines()[-1] == str(subs2[0].relative_to(tmp_path))
    assert "error" not in two.err.lower()

    # each rank trained on its own half of every fold's training rows: the two shards' rows add up to the rows
    # one process saw in the same epoch, and differ from each other
    p1, p2 = probes(one_log), probes(two.err)
    assert [r for r, _, _ in p1] == [0, 0] and sorted(r for r, _, _ in p2) == [0, 0, 1, 1]
    for fold in range(2):
        (_, rows, total), = [p1[fold]]
        shards = [p for p in p2 if p[0] == 0][fold], [p for p in p2 if p[0] == 1][fold]
        assert [s[1] for s in shards] == [rows // 2, rows // 2]
        assert shards[0][2] + shards[1][2] == total and shards[0][2] != shards[1][2]

    # the same rows in the same order, and predictions near a single process's: every step averages the two
    # ranks' gradients over the same number of rows as one process's batch, only which rows share a step differs
    assert oof1.columns.tolist() == oof2.columns.tolist() and (oof1.iloc[:, 0] == oof2.iloc[:, 0]).all()
    assert (test1.iloc[:, 0] == test2.iloc[:, 0]).all()
    d_oof = np.abs(oof1.iloc[:, 1:].to_numpy() - oof2.iloc[:, 1:].to_numpy())
    d_test = np.abs(test1.iloc[:, 1:].to_numpy() - test2.iloc[:, 1:].to_numpy())
    print(f"1 process {one_s:.1f} s, 2 processes {two_s:.1f} s; OOF |dp| mean {d_oof.mean():.4f} max "
          f"{d_oof.max():.4f}, test |dp| mean {d_test.mean():.4f} max {d_test.max():.4f}; CV {rec1['cv']['mean']:.4f}"
          f" vs {rec2['cv']['mean']:.4f}")
    assert d_oof.mean() < 0.02 and d_oof.max() < 0.1 and d_test.mean() < 0.02 and d_test.max() < 0.1
    assert abs(rec1["oof_score"] - rec2["oof_score"]) <= 0.05  # 8 of 160 rows


@pytest.mark.parametrize("args, cuda, message", [
    (["--devices", "0"], 0, "--devices must be at least 1 (got 0)"),
    (["--devices", "2", "--model", "lightgbm"], 0, "--devices 2: lightgbm is a tree model, trained in one process"),
    (["--devices", "2"], 1, "--devices 2: only 1 CUDA device here"),
])
def test_refused_in_one_line_nothing_written(titanic_dir, workdir, capsys, monkeypatch, args, cuda, message):
    import torch

    if cuda:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    rc = main(["--comp", "titanic", "--data-dir", str(titanic_dir), *args])
    out, err = capsys.readouterr()
    assert rc != 0 and out == "" and err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1
    assert list(workdir.iterdir()) == []

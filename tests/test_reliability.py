"""Faults and bad input a careful user (or bad luck) produces: concurrent submits, a torn ledger line, secrets in
storage URLs, truncated and short-row CSVs, honest resumes, orphaned workers, flaky polling (issue 12)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.kaggle.errors import EXIT_DUPLICATE
from kit.kaggle.ledger import Ledger
from kit.sandbox import Sandbox
from tests.test_kaggle_e2e import DIRECT, cli, fault, get_data, sample_copy, serve

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def sandbox(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    from kit.sandbox.data import make_competition

    root = tmp_path_factory.mktemp("rel-sandbox")
    make_competition(root, "titanic", seed=3, n_train=160, n_test=60)
    sb = serve(root, tmp_path, monkeypatch)
    yield sb
    sb.stop()


# ---- part 1: the ledger is a locked, durable log ----------------------------------------------------------------


def test_concurrent_submits_upload_once_and_a_torn_line_is_set_aside(sandbox: Sandbox, capsys) -> None:
    get_data(sandbox)
    f = sample_copy("same.csv")
    ledger = Path("submissions/ledger.jsonl")
    ledger.parent.mkdir()
    ledger.write_text('{"event": "pending", "id": "crashed", "competition": "titanic", "sha2')  # a crash mid-write
    # both processes would pass the duplicate check while the limits call is slow, were there no lock
    fault(sandbox, match="GetSubmissionLimits", delay=1.5, times=2)
    cmd = [sys.executable, "-m", "kit", "submit", "--comp", "titanic", "--file", str(f), "-m", "twice"]
    procs = [subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, EXIT_DUPLICATE], outs
    assert len(sandbox.submissions) == 1
    err = "".join(e for _, e in outs)
    assert err.count("cut off mid-write") == 1, err  # reported once, by whichever process came first
    assert "is being submitted to" in err and "right now by process" in err
    lines = ledger.read_text().splitlines()
    assert all(json.loads(line) for line in lines) and ledger.read_bytes().endswith(b"\n")
    assert Path("submissions/ledger.jsonl.torn").read_text().startswith('{"event": "pending", "id": "crashed"')
    (entry,) = Ledger(ledger).entries("titanic")
    assert entry.state == "submitted" and entry.ref == sandbox.submissions[0].ref
    # and the file now counts as submitted: a third try is refused before anything is sent
    assert cli("submit", "--comp", "titanic", "--file", str(f)) == EXIT_DUPLICATE
    assert len(sandbox.submissions) == 1


def test_wait_polls_through_server_errors(sandbox: Sandbox, capsys, monkeypatch) -> None:
    get_data(sandbox)
    f = sample_copy("w.csv", flip=3)
    monkeypatch.setenv("KIT_KAGGLE_RETRIES", "1")
    # every poll fails for a while (more than the client's retries), then Kaggle answers again
    fault(sandbox, match="ListSubmissions", status=503, times=4)
    assert cli("submit", "--comp", "titanic", "--file", str(f), "-m", "w", "--wait", "--timeout", "30") == 0
    out = capsys.readouterr()
    assert "public score:" in out.out and "still waiting" in out.err


# ---- parts 2 and 4: secrets masked everywhere; resumes propose new trials and refuse mixed settings ----------------

PASSWORD = "pw-HUNTER2-s3cret"


@pytest.fixture(scope="module")
def titanic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from competitions.titanic.synthetic import generate

    d = tmp_path_factory.mktemp("rel-titanic")
    generate(d, n_train=150, n_test=40, seed=0)
    return d


def test_tune_masks_query_passwords_resumes_fresh_and_refuses_mixed_settings(titanic_data: Path, tmp_path: Path,
                                                                           capsys, caplog) -> None:
    import optuna

    from kit.commands.tune import main as tune

    caplog.set_level(logging.INFO)
    url = f"sqlite:///{tmp_path / 'o.db'}?password={PASSWORD}&mode=rw#token={PASSWORD}x"
    base = ["--comp", "titanic", "--data-dir", str(titanic_data), "--runs", str(tmp_path / "runs"), "--out",
            str(tmp_path / "subs"), "--folds", "2", "--threads", "1", "--storage", url, "--pruner", "none"]
    assert tune([*base, "--set", "epochs=2", "--n-trials", "2"]) == 0  # with refit: every output file is written
    assert tune([*base, "--set", "epochs=2", "--n-trials", "2", "--no-refit"]) == 0  # resumed
    out = capsys.readouterr()
    logs = out.out + out.err + caplog.text
    assert PASSWORD not in logs and "password=***" in logs
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
    study = optuna.load_study(study_name="titanic", storage=f"sqlite:///{tmp_path / 'o.db'}")
    attrs = json.dumps([study.user_attrs, *[t.user_attrs for t in study.trials]])
    assert PASSWORD not in attrs
    # the resumed run proposed new parameters, not copies of the first run's
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 4
    assert study.user_attrs["settings"]["folds"] == 2 and study.user_attrs["settings"]["set"] == {"epochs": 2}
    best = json.loads((tmp_path / "runs/titanic/titanic/best_params.json").read_text())
    assert best["params"] == study.trials[best["trial"]].user_attrs["params"]
    n = len(study.trials)
    for change, said in [(["--set", "epochs=3"], "--set epochs=2; this run has --set epochs=3"),
                         (["--set", "epochs=2", "--seed", "7"], "--seed 42; this run has --seed 7"),
                         (["--set", "epochs=2", "--folds", "3"], "--folds 2; this run has --folds 3")]:
        argv = [*base, "--n-trials", "1", "--no-refit", *change]
        if "--folds" in change:
            argv = [a for i, a in enumerate(argv) if not (a == "--folds" and i < len(base)) and
                    not (i > 0 and argv[i - 1] == "--folds" and i < len(base))]
        assert tune(argv) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and "choose a new --study" in err[0], err
        assert PASSWORD not in err[0]
    assert len(optuna.load_study(study_name="titanic", storage=f"sqlite:///{tmp_path / 'o.db'}").trials) == n


def _children(pid: int) -> list[int]:
    """`pid`'s child processes other than multiprocessing's resource tracker; none once it has gone."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            cmdline = Path(f"/proc/{k}/cmdline").read_bytes()
        except OSError:  # a short-lived child that exited between the two reads (ESRCH, ENOENT)
            continue
        if b"resource_tracker" not in cmdline:
            out.append(int(k))
    return out


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _started_workers(proc: subprocess.Popen, n: int = 2) -> list[int]:
    """`proc`'s n worker processes once they are past start-up (importing torch: ~200 MB each)."""
    deadline = time.time() + 90
    while time.time() < deadline:
        workers = _children(proc.pid) if proc.poll() is None else []
        if len(workers) == n and all(_rss_mb(w) > 150 for w in workers):
            return workers
        assert proc.poll() is None
        time.sleep(0.3)
    pytest.fail("the workers never started")


def _gone(workers: list[int]) -> list[int]:
    """Those of `workers` still alive after 10 s (killed, for the next test's sake)."""
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, 9)
    return left


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_tune_workers_die_with_their_parent(titanic_data: Path, tmp_path: Path) -> None:
    import signal

    journal = tmp_path / "j.log"
    cmd = [sys.executable, "-m", "kit", "tune", "--comp", "titanic", "--data-dir", str(titanic_data), "--runs",
           str(tmp_path / "runs"), "--folds", "2", "--set", "epochs=400", "--threads", "1", "--n-jobs", "2",
           "--n-trials", "2", "--no-refit", "--storage", f"journal:{journal}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers = _started_workers(proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not _gone(workers), "tune workers outlived their parent"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_fold_workers_stop_with_their_run(titanic_data: Path, tmp_path: Path, sig: str) -> None:
    # `kit train --jobs 2`: Ctrl-C stops the fold workers at once (exit 130, nothing written); a SIGKILL of the
    # run takes its workers with it
    import signal

    cmd = [sys.executable, "-m", "kit", "train", "--comp", "titanic", "--data-dir", str(titanic_data), "--runs",
           str(tmp_path / "runs"), "--out", str(tmp_path / "subs"), "--set", "epochs=400", "--jobs", "2", "--quiet"]
    # a suite started in the background by a shell without job control passes SIGINT on ignored, and Python then
    # keeps it ignored: the run starts with SIGINT at its default, as from a terminal (tests/hooked.py does the same)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        workers = _started_workers(proc)
        time.sleep(2)  # into their folds
        proc.send_signal(getattr(signal, sig))
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == (130 if sig == "SIGINT" else -signal.SIGKILL)
    assert not _gone(workers), "fold workers outlived their run"
    assert not any((tmp_path / "subs").rglob("*.csv"))


# ---- part 5: a killed download's staging folder goes on the next run, not after ten idle minutes --------------


def test_killed_download_staging_is_removed_on_the_next_run(sandbox: Sandbox, capsys) -> None:
    code = ("import sys; from kit import registry; from kit.kaggle.download import download; "
            "download(registry.get('titanic'), __import__('pathlib').Path('data/titanic'), quiet=True)")
    fault(sandbox, match="download", delay=60)  # the zip never arrives: the process is killed while it waits
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not list(Path("data").glob(".titanic.download-*")) and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    (left,) = Path("data").glob(".titanic.download-*")
    assert f"-{proc.pid}-" in left.name  # whose it was: the next run can tell that process is gone
    DIRECT.delete(f"{sandbox.url}/_sandbox/faults", timeout=5)
    assert cli("download", "--comp", "titanic", "--quiet") == 0  # fresh: no ten-minute idle wait
    assert sorted(p.name for p in Path("data").iterdir()) == ["titanic"]


# ---- part 3: CSV integrity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate, words", [
    (lambda t: t[: t.rindex(",", 0, len(t) - 40)], "ends after"),  # cut mid-row: the file is cut off
    (lambda t: t.replace("\n", "\n1,2\n", 1), "row 2: 2 fields where the header has 12: column(s)"),
    (lambda t: _nth_line(t, 5, lambda ln: ln + ",x"), "row 5: 13 fields where the header has 12: extra value(s) 'x'"),
])
def test_truncated_short_or_long_rows_stop_training(titanic_data: Path, tmp_path: Path, capsys, mutate, words):
    import shutil

    from kit.commands.train import main as train

    d = tmp_path / "t"
    shutil.copytree(titanic_data, d)
    (d / "train.csv").write_text(mutate((d / "train.csv").read_text()))
    assert train(["--comp", "titanic", "--data-dir", str(d), "--folds", "2", "--set", "epochs=1",
                  "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "subs")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{d / 'train.csv'}: row" in err[0] and words in err[0], err
    if words == "ends after":
        assert "the file is cut off" in err[0]
    assert not (tmp_path / "subs").exists()


def _nth_line(text: str, n: int, f) -> str:
    lines = text.split("\n")
    lines[n - 1] = f(lines[n - 1])
    return "\n".join(lines)


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
def test_text_cells_are_stripped_however_pandas_stores_text(tmp_path: Path, storage: str) -> None:
    import pandas as pd

    from kit.io import read_csv

    if storage == "pyarrow":
        pytest.importorskip("pyarrow")
    (tmp_path / "t.csv").write_text(" id ,city, flag \n1, Lyon ,True\n2,\tNice\xa0,\n3,,False\n4, a b ,True\n")
    with pd.option_context("mode.string_storage", storage):
        df = read_csv(tmp_path / "t.csv")
    assert list(df.columns) == ["id", "city", "flag"]
    assert df["city"].tolist()[:2] == ["Lyon", "Nice"] and pd.isna(df["city"][2]) and df["city"][3] == "a b"
    assert df["flag"].tolist()[0] is True and pd.isna(df["flag"][1])  # booleans with a gap: an object column, kept


def test_padded_values_are_stripped_in_training_and_refused_before_upload(sandbox: Sandbox, capsys) -> None:
    from kit.io import read_csv

    get_data(sandbox)
    raw = Path("data/titanic/gender_submission.csv").read_text().splitlines()
    raw[1] = raw[1].replace(",", " , ")
    Path("pad.csv").write_text("\n".join(raw) + "\n")
    assert read_csv(Path("pad.csv")).iloc[0].tolist() == [int(v) for v in raw[1].split(" , ")]
    assert cli("submit", "--comp", "titanic", "--file", "pad.csv") == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 2, column PassengerId: value" in err[0] and "whitespace" in err[0], err
    assert not sandbox.submissions

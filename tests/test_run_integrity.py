"""Issue 21: `kit blend`, `kit predict`, `kit package` and `kit board` never trace back on an output they cannot
write, never use a fold model or prediction file that is not the run's own, and, killed at any point, never leave a
submission or record that points at nothing. Real commands; kills and interrupts are real signals sent by the
process to itself at a chosen write (os.replace / os.rename), so the point is exact."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from kit import cli, registry, runs
from kit.ensemble.runs import read_run
from kit.run import train_and_submit
from tests.hooked import run_hooked
from tests.test_kernel_runner import needs_unshare
from tests.test_package import wheel_cache  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two tiny Titanic MLP runs on the same folds (seed 3) and a LightGBM run on the same folds."""
    from competitions.titanic.synthetic import generate

    root = tmp_path_factory.mktemp("integrity")
    data = root / "data"
    generate(data, n_train=160, n_test=60, seed=7)
    comp = registry.get("titanic")
    dirs = []
    for c, params in ((comp, {"epochs": 1, "width": 16}), (comp, {"epochs": 1, "width": 48}),
                      (comp.with_model("lightgbm"), {"n_estimators": 20})):
        r = train_and_submit(c, data, c.params(params), seed=3, n_folds=2, out=root / "submissions",
                             runs=root / "runs", progress=False)
        dirs.append(r.run_dir)
    return {"root": root, "data": data, "runs": dirs}


@pytest.fixture
def work(trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A private copy of the trained runs and their submissions, the test's working folder."""
    shutil.copytree(trained["root"] / "runs", tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    names = [d.name for d in trained["runs"]]
    # paths relative to the working folder, as the commands print them for a run named by its name
    return {"root": tmp_path, "data": trained["data"], "names": names,
            "runs": [Path("runs") / "titanic" / n for n in names]}


def kit(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    """(exit code, stdout lines, stderr lines) of `kit ARGV` in this process."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err.strip().splitlines()


def blend_args(w: dict, *extra: str) -> list[str]:
    return ["blend", "--comp", "titanic", "--data-dir", str(w["data"]), w["names"][0], w["names"][1], *extra]


def predict_args(w: dict, *extra: str) -> list[str]:
    return ["predict", "--comp", "titanic", "--data-dir", str(w["data"]), "--run", w["names"][0], *extra]


def files_under(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) if path.exists() else []


# ---- part 1: outputs that cannot be written ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["a file", "under /proc"])
@pytest.mark.parametrize("command", ["blend", "predict", "package"])
def test_an_output_that_cannot_be_written_is_one_line(work, capsys, command, where):
    out = "/proc/kit-out" if where == "under /proc" else "taken"
    Path("taken").write_text("x\n")
    argv = {"blend": blend_args(work, "--out", out), "predict": predict_args(work, "--out", out),
            "package": ["package", "--comp", "titanic", "--run", work["names"][0], "--out", out]}[command]
    before = files_under(Path("runs"))
    code, lines, err = kit(capsys, *argv)
    assert code == 5 and len(err) == 1 and err[0].startswith(f"error: cannot write {out}/titanic/"), err
    assert ("Not a directory" in err[0] or "File exists" in err[0]) if out == "taken" else "/proc" in err[0]
    assert not lines and files_under(Path("runs")) == before  # the blend's run folder went with it
    assert Path("taken").read_text() == "x\n"


def test_board_png_that_cannot_be_written_is_one_line(work, capsys):
    (Path("runs") / "titanic" / "board.png").mkdir()  # a folder where the picture goes
    code, lines, err = kit(capsys, "board", "--comp", "titanic", "--offline", "--data-dir", str(work["data"]))
    assert code == 5 and len(err) == 1 and "error: cannot write runs/titanic/board.png: Is a directory" in err[0]
    assert not list((Path("runs") / "titanic").glob(".board.png.*"))  # no temp file left


@pytest.fixture
def full_disk(tmp_path: Path):
    """A real, full filesystem: a 256 kB tmpfs filled up (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while f.write(b"\0" * 4096):
                    pass
            except OSError:  # ENOSPC: full
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("command", ["blend --out", "blend --runs", "predict --out", "package --out"])
def test_a_full_disk_is_one_line_and_leaves_nothing(work, capsys, full_disk, command):
    name, opt = command.split()
    argv = {"blend": blend_args(work, opt, str(full_disk)), "predict": predict_args(work, opt, str(full_disk)),
            "package": ["package", "--comp", "titanic", "--run", work["names"][0], opt, str(full_disk)]}[name]
    if name == "blend":  # the inputs by path: --runs is only where the blend's own run folder goes
        argv[5:7] = [str(work["runs"][0]), str(work["runs"][1])]
    before = files_under(Path("runs"))
    code, lines, err = kit(capsys, *argv)
    assert code == 5 and len(err) == 1 and "No space left on device" in err[0], err
    assert err[0].startswith(f"error: cannot write {full_disk}/titanic/")
    assert files_under(full_disk) in (["filler"], ["filler", "titanic"])  # at most the (empty) folder it made
    assert not files_under(full_disk / "titanic")
    assert not Path("submissions").exists() and files_under(Path("runs")) == before


def test_a_read_only_disk_is_one_line(work, capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(ro)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        code, lines, err = kit(capsys, *blend_args(work, "--out", str(ro)))
        assert code == 5 and len(err) == 1 and err[0].startswith(f"error: cannot write {ro}/titanic/"), err
        assert "Read-only file system" in err[0] and not lines
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_train_whose_submission_cannot_be_written_keeps_its_folds_for_the_rerun(work, capsys, caplog, full_disk):
    caplog.set_level(logging.INFO)
    argv = ["train", "--comp", "titanic", "--data-dir", str(work["data"]), "--folds", "2", "--seed", "9", "--set",
            "epochs=1", "--quiet", "--threads", "1"]
    code, _, err = kit(capsys, *argv, "--out", str(full_disk))
    assert code == 5 and err[-1].startswith(f"error: cannot write {full_disk}/titanic/"), err
    assert "No space left on device" in err[-1]
    assert len(runs.run_folders(Path("runs"), "titanic")) == 3  # no run folder without its submission
    assert list(Path("runs/titanic/partial").glob("*/fold-1.npz"))  # the trained folds are not lost
    code, lines, err = kit(capsys, *argv)
    assert code == 0 and Path(lines[-1]).is_file()
    assert "fold 2/2: finished in an interrupted run, reused" in caplog.text


# ---- part 2: the run's own files, checked --------------------------------------------------------------------


def test_a_swapped_or_foreign_fold_model_is_refused_by_predict_and_package(work, capsys):
    mlp, _, lgbm = work["runs"]
    fold1 = mlp / "models" / "fold-1.pt"
    original = fold1.read_bytes()
    for source, what in ((mlp / "models" / "fold-0.pt", "same run's fold 0"),
                         (lgbm / "models" / "fold-1.pt", "another run's fold 1")):
        shutil.copyfile(source, fold1)
        for argv in (predict_args(work), ["package", "--comp", "titanic", "--run", mlp.name]):
            code, lines, err = kit(capsys, *argv)
            assert code == 3 and len(err) == 1, (what, err)
            assert f"{fold1}: SHA-256" in err[0] and "differs from the record's" in err[0], err
            assert not lines
    fold1.write_bytes(original[: len(original) // 2])  # a truncated copy
    for argv in (predict_args(work), ["package", "--comp", "titanic", "--run", mlp.name]):
        code, _, err = kit(capsys, *argv)
        assert code == 3 and len(err) == 1 and f"{fold1}: SHA-256" in err[0], err
    assert not Path("submissions").exists() and not Path("packages").exists()
    fold1.write_bytes(original)
    code, lines, _ = kit(capsys, *predict_args(work))
    assert code == 0 and Path(lines[-1]).is_file()


def _drop_hashes(run_dir: Path) -> None:
    rec = json.loads((run_dir / "record.json").read_text())
    rec.pop(runs.HASHES)
    (run_dir / "record.json").write_text(json.dumps(rec))


def test_a_record_without_hashes_still_predicts_with_one_warning(work, capsys):
    run = work["runs"][0]
    _drop_hashes(run)
    code, lines, err = kit(capsys, *predict_args(work))
    assert code == 0 and len(err) == 1, err
    assert err[0] == f"warning: {run / 'record.json'} has no file hashes (a run from before kit kept them): its " \
                     "files are used unverified"
    own = json.loads((run / "record.json").read_text())["submission"]  # the trained run's own submission
    assert Path(lines[-1]).read_bytes() == Path(own).read_bytes()
    # without hashes, a fold model that does not load is still bad data (exit 3), not a usage error
    (run / "models" / "fold-0.pt").write_bytes(b"not a model")
    code, _, err = kit(capsys, *predict_args(work))
    assert code == 3 and err[-1].startswith(f"error: {run / 'models' / 'fold-0.pt'}: cannot load the fold model")
    code, _, err = kit(capsys, "package", "--comp", "titanic", "--run", run.name)
    assert code == 3 and "cannot load the fold model" in err[-1] and not Path("packages").exists()


@pytest.mark.parametrize("decoding, message", [
    ({"kind": "threshold", "threshold": "x"}, "not a decoding of this competition"),
    ({"kind": "threshold", "threshold": 7}, "threshold 7.0 is not in [0, 1]"),
    ({"kind": "argmax"}, "not a decoding of this competition"),
    ([1, 2], "not a JSON object"),
])
def test_a_bad_decoding_is_one_line(work, capsys, decoding, message):
    run = work["runs"][0]
    _drop_hashes(run)  # an old record: nothing to compare the file with, so its content is checked
    (run / "decoding.json").write_text(json.dumps(decoding))
    code, lines, err = kit(capsys, *predict_args(work))
    assert code == 3 and err[-1].startswith(f"error: {run / 'decoding.json'}: ") and message in err[-1], err
    assert not lines and not Path("submissions").exists()


def test_a_changed_decoding_is_refused_by_its_hash(work, capsys):
    run = work["runs"][0]
    (run / "decoding.json").write_text(json.dumps({"kind": "threshold", "threshold": 0.01}))
    code, _, err = kit(capsys, *predict_args(work))
    assert code == 3 and len(err) == 1 and f"{run / 'decoding.json'}: SHA-256" in err[0]


def test_every_saved_file_is_hashed(work):
    run = work["runs"][0]
    rec = runs.read_record(run)
    assert sorted(rec[runs.HASHES]) == ["decoding.json", "folds.csv", "models/fold-0.pt", "models/fold-1.pt",
                                        "oof.csv", "test_probs.csv"]
    assert rec[runs.HASHES] == runs.file_hashes(run)


# ---- part 4: other training data ---------------------------------------------------------------------------


def test_blend_refuses_runs_on_other_data_unless_allowed(work, capsys):
    b = work["runs"][1]
    rec = json.loads((b / "record.json").read_text())
    rec["inputs_sha256"]["train"] = "0" * 64  # as if trained on another train.csv
    (b / "record.json").write_text(json.dumps(rec))
    code, lines, err = kit(capsys, *blend_args(work))
    assert code == 3 and len(err) == 1 and f"{b}: trained on other data (train: SHA-256 000000000000" in err[0], err
    assert "--allow-other-data" in err[0] and not Path("submissions").exists()
    code, lines, err = kit(capsys, *blend_args(work, "--allow-other-data"))
    assert code == 0, err
    assert any(ln.startswith(f"{b}: trained on other data") and "blended anyway" in ln for ln in lines)


# ---- part 3: the order of writes; killed or interrupted at any write -----------------------------------------

def check_nothing_points_at_nothing(root: Path) -> None:
    """Every submission's .json has its .csv and a complete run folder; every run folder in view is complete."""
    for side in sorted((root / "submissions").glob("*/*.json")):
        assert side.with_suffix(".csv").is_file(), f"{side} without its csv"
        run_dir = Path(json.loads(side.read_text())["run_dir"])
        read_run(run_dir if run_dir.is_absolute() else root / run_dir)  # complete, every file as hashed
    for d in runs.run_folders(root / "runs", "titanic"):
        rec = read_run(d).record
        if "submission" in rec:
            assert (root / rec["submission"]).is_file() or Path(rec["submission"]).is_file()


def test_a_blend_killed_at_any_write_leaves_everything_or_nothing(work, tmp_path):
    root = work["root"]
    argv = ["blend", "--comp", "titanic", "--data-dir", str(work["data"]), *work["names"][:2]]
    log = tmp_path / "calls.json"
    proc = run_hooked(argv, 0, "SIGKILL", log)  # n=0: never; count the writes
    assert proc.returncode == 0, proc.stderr
    calls = json.loads(log.read_text())
    done = runs.run_folders(root / "runs", "titanic")[-1]
    stage = next(i for i, (f, dst) in enumerate(calls, 1) if f == "rename" and dst == str(done.relative_to(root)))
    csv = next(i for i, (_, dst) in enumerate(calls, 1) if dst.endswith(".csv") and "submissions" in dst)
    assert calls[csv][1].endswith(".json") and calls[csv + 1][1].endswith("record.json")  # csv, json, record
    shutil.rmtree(root / "submissions")
    runs.remove(done)
    for n in (stage - 1, stage + 1, csv + 1, csv + 2):  # Ctrl-C: everything this blend wrote goes
        left = visible(root / "submissions"), visible(root / "runs")
        proc = run_hooked(argv, n, "SIGINT", log)
        assert proc.returncode == 130 and proc.stderr.strip().splitlines()[-1] == "error: interrupted", proc.stderr
        assert (visible(root / "submissions"), visible(root / "runs")) == left
    assert not [p for p in (root / "runs" / "titanic").iterdir() if p.name.startswith(".")]
    for n in (stage + 1, csv + 1, csv + 2, 1, stage):  # the last two leave a hidden, half-written folder
        proc = run_hooked(argv, n, "SIGKILL", log)
        assert proc.returncode == -9, (n, proc.stderr)
        check_nothing_points_at_nothing(root)
    # the next blend sweeps the half-written folders the killed ones left, and completes
    assert any(p.name.startswith(".") for p in (root / "runs" / "titanic").iterdir())
    proc = run_hooked(argv, 0, "SIGKILL", log)
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in (root / "runs" / "titanic").iterdir() if p.name.startswith(".")]
    check_nothing_points_at_nothing(root)
    # the three trained runs, the three blends killed after their run folder was in place, the last blend
    assert len(runs.run_folders(root / "runs", "titanic")) == 3 + 3 + 1


def visible(path: Path) -> list[str]:
    """Files under `path`, hidden ones (temp files, temp folders) left out."""
    return [f for f in files_under(path) if (path / f).is_file() and not any(p.startswith(".") for p in f.split("/"))]


def test_predict_interrupted_while_writing_leaves_nothing(work, tmp_path):
    argv = predict_args(work)
    log = tmp_path / "calls.json"
    for n in (1, 2):  # before the .csv, before the .json
        proc = run_hooked(argv, n, "SIGINT", log)
        assert proc.returncode == 130 and proc.stderr.strip().splitlines()[-1] == "error: interrupted"
        assert not files_under(work["root"] / "submissions" / "titanic")


def test_package_interrupted_while_writing_leaves_nothing(work, tmp_path, wheel_cache, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KIT_WHEEL_CACHE", str(wheel_cache))
    argv = ["package", "--comp", "titanic", "--run", work["names"][0], "--owner", "bob"]
    log = tmp_path / "calls.json"
    proc = run_hooked(argv, 0, "SIGINT", log)
    assert proc.returncode == 0, proc.stderr
    final = f"packages/titanic/{work['names'][0]}"
    n = next(i for i, (_, dst) in enumerate(json.loads(log.read_text()), 1) if dst == final)
    shutil.rmtree("packages")
    proc = run_hooked(argv, n, "SIGINT", log)  # Ctrl-C just before the package is renamed into place
    assert proc.returncode == 130 and proc.stderr.strip().splitlines()[-1] == "error: interrupted", proc.stderr
    assert not files_under(Path("packages") / "titanic")  # no package, no temp folder


# ---- part 5: what the issue had not verified ---------------------------------------------------------------


def test_train_killed_by_sigkill_resumes_its_folds_and_reproduces_the_submission(work, tmp_path):
    argv = ["train", "--comp", "titanic", "--data-dir", str(work["data"]), "--folds", "3", "--seed", "5", "--set",
            "epochs=2", "--quiet", "--threads", "1"]
    log = tmp_path / "calls.json"
    whole = run_hooked([*argv, "--runs", "whole/runs", "--out", "whole/subs"], 0, "SIGKILL", log)
    assert whole.returncode == 0, whole.stderr
    calls = [dst for _, dst in json.loads(log.read_text())]
    after_fold = next(i for i, dst in enumerate(calls, 1) if dst.endswith("/fold-0.npz")) + 1
    mid_fold = next(i for i, dst in enumerate(calls, 1) if dst.endswith("/fold-2.pt"))  # fold 2's arrays not in
    for n, reused in ((after_fold, ["fold 1/3"]), (mid_fold, ["fold 1/3", "fold 2/3"])):
        out = [*argv, "--runs", f"k{n}/runs", "--out", f"k{n}/subs"]
        killed = run_hooked(out, n, "SIGKILL", log)  # kit's own process, killed at that write: no clean-up runs
        assert killed.returncode == -9
        assert not list(Path(f"k{n}").rglob("*.csv")) and not runs.run_folders(Path(f"k{n}/runs"), "titanic")
        resumed = run_hooked(out, 0, "SIGKILL", log)
        assert resumed.returncode == 0, resumed.stderr
        assert "finished in an interrupted run, reused" in resumed.stderr
        said = [f"fold {k}/3" for k in (1, 2, 3) if f"fold {k}/3: finished in an interrupted run" in resumed.stderr]
        assert said == reused, resumed.stderr
        assert Path(resumed.stdout.strip().splitlines()[-1]).read_bytes() == \
            Path(whole.stdout.strip().splitlines()[-1]).read_bytes()
        assert not Path(f"k{n}/runs/titanic/partial").exists()


@needs_unshare
def test_kernel_run_on_a_package_with_a_corrupt_or_missing_file(work, tmp_path, wheel_cache,  # noqa: F811
                                                               monkeypatch, capsys):
    from kit import kernel_runner as kr
    from kit import package

    monkeypatch.setenv("KIT_WHEEL_CACHE", str(wheel_cache))
    pkg = package.build_package(registry.get("titanic"), work["runs"][0], Path("packages"), owner="bob")
    fold1, fold0 = pkg.dataset_dir / "models" / "fold-1.pt", pkg.dataset_dir / "models" / "fold-0.pt"
    fold1.write_bytes(fold1.read_bytes()[: fold1.stat().st_size // 2])
    res = kr.run_kernel(pkg.kernel_dir, work["data"], pkg.dataset_dir, timeout_s=120, memory_mb=16384,
                        work_dir=tmp_path / "kr1")
    assert res.status == "error" and "fold-1.pt: SHA-256" in res.error and "differs from the record's" in res.error
    fold0.unlink()
    code, lines, err = kit(capsys, "kernel", "run", "--package", str(pkg.path), "--data-dir", str(work["data"]),
                           "--timeout", "120", "--memory-mb", "16384", "--work-dir", str(tmp_path / "kr2"))
    assert code == 1 and lines[0].startswith("status error") and len(err) == 1, (lines, err)
    assert "fold-0.pt: missing" in "\n".join(lines + err)

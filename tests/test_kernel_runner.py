"""`kit kernel run`: a packaged kernel run offline (unshare --net) with Kaggle's layout, a runtime cap and a memory
cap rebuilds the run's submission; network access, overtime and a missing submission.csv are reported."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from kit import kernel_runner as kr
from kit import package, registry
from kit.commands.kernel import main as kernel_main
from kit.errors import KitError
from kit.run import train_and_submit

try:
    kr.network_isolation_command()
    ISOLATION = ""
except KitError as _e:
    ISOLATION = str(_e)
needs_unshare = pytest.mark.skipif(bool(ISOLATION), reason=ISOLATION or "-")


def _kernel(tmp_path: Path, script: str) -> tuple[Path, Path]:
    """A hand-made kernel folder (metadata + script) on titanic and an empty dataset folder."""
    kn, ds = tmp_path / "pkg" / "kernel", tmp_path / "pkg" / "dataset"
    kn.mkdir(parents=True)
    ds.mkdir()
    meta = {"id": "bob/t-inference", "code_file": "main.py", "competition_sources": ["titanic"],
            "dataset_sources": ["bob/kit-titanic-x"]}
    (kn / "kernel-metadata.json").write_text(json.dumps(meta))
    (kn / "main.py").write_text(script)
    return kn, ds


@needs_unshare
def test_packaged_titanic_kernel_rebuilds_the_submission(titanic_dir, workdir, monkeypatch, capsys):
    cache = package.wheel_cache()
    if not list(cache.glob("iterative_stratification-*.whl")):
        pytest.skip(f"the notebook's extra wheel is not cached in {cache}")
    monkeypatch.setenv("KIT_WHEEL_CACHE", str(cache))
    comp = registry.get("titanic")
    r = train_and_submit(comp, titanic_dir, comp.params({"epochs": 2}), seed=3, n_folds=2, progress=False)
    pkg = package.build_package(comp, r.run_dir, Path("packages"), owner="bob")
    assert kernel_main(["run", "--package", str(pkg.path), "--data-dir", str(titanic_dir), "--timeout", "120",
                        "--memory-mb", "16384", "--work-dir", "kr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("status complete\n") and "runtime " in out
    sub = Path(out.strip().splitlines()[-1].split(" ", 1)[1])
    assert sub == (Path("kr") / "kaggle" / "working" / "submission.csv").resolve()
    assert sub.read_bytes() == r.submission.read_bytes()
    assert "Network is unreachable" not in Path("kr/kernel.log").read_text()


@needs_unshare
def test_network_is_unreachable_even_to_the_host(titanic_dir, tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    socket.create_connection(("127.0.0.1", port), timeout=3).close()  # reachable from here
    script = ("import socket\n"
              "try:\n    socket.create_connection(('pypi.org', 443), timeout=3)\n    print('pypi reached')\n"
              "except OSError as e:\n    print('pypi:', e)\n"
              f"socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
              "open('submission.csv', 'w').write('PassengerId,Survived\\n')\n")
    kn, ds = _kernel(tmp_path, script)
    res = kr.run_kernel(kn, titanic_dir, ds, timeout_s=30, memory_mb=2048, work_dir=tmp_path / "w")
    server.close()
    assert res.status == "error" and "Network is unreachable" in res.error, res
    log = res.log_path.read_text()
    assert "pypi reached" not in log and "pypi:" in log
    assert len(accepted) == 1  # only the test's own connection got through


@needs_unshare
def test_runtime_cap_kills_the_process_group(titanic_dir, tmp_path):
    script = ("import subprocess, time\np = subprocess.Popen(['sleep', '60'])\n"
              "print('started', p.pid, flush=True)\ntime.sleep(60)\n")
    kn, ds = _kernel(tmp_path, script)
    start = time.monotonic()
    res = kr.run_kernel(kn, titanic_dir, ds, timeout_s=2, memory_mb=2048, work_dir=tmp_path / "w")
    assert res.status == "timeout" and time.monotonic() - start < 2 + 5
    assert res.submission_path is None
    child = int(res.log_path.read_text().split("started ", 1)[1].split()[0])
    time.sleep(0.2)
    stat = Path(f"/proc/{child}/stat")  # the kernel's child was killed with it (gone, or a zombie not yet reaped)
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


@needs_unshare
def test_no_submission_and_invalid_submission(titanic_dir, tmp_path, workdir, capsys):
    kn, ds = _kernel(tmp_path, "print('done')\n")
    res = kr.run_kernel(kn, titanic_dir, ds, timeout_s=30, memory_mb=2048, work_dir=tmp_path / "w")
    assert res.status == "no submission" and "submission.csv" in res.error
    assert kernel_main(["run", "--package", str(kn.parent), "--data-dir", str(titanic_dir)]) == 1
    out = capsys.readouterr()
    assert out.out.startswith("status no submission") and out.err.count("\n") == 1
    (kn / "main.py").write_text("open('submission.csv', 'w').write('PassengerId,Survived\\n1,0\\n')\n")
    res = kr.run_kernel(kn, titanic_dir, ds, timeout_s=30, memory_mb=2048, work_dir=tmp_path / "w")
    assert res.status == "invalid submission" and res.submission_path is not None and res.error


@needs_unshare
def test_memory_cap_and_failing_script(titanic_dir, tmp_path):
    kn, ds = _kernel(tmp_path, "x = bytearray(600 * 1024 * 1024)\n")
    res = kr.run_kernel(kn, titanic_dir, ds, timeout_s=30, memory_mb=300, work_dir=tmp_path / "w")
    assert res.status == "error" and "MemoryError" in res.error, res


def test_refuses_to_run_without_network_isolation(titanic_dir, tmp_path, monkeypatch):
    kn, ds = _kernel(tmp_path, "open('ran', 'w').write('1')\n")
    monkeypatch.setattr(kr.shutil, "which", lambda name: None)
    with pytest.raises(KitError, match="unshare") as e:
        kr.run_kernel(kn, titanic_dir, ds, timeout_s=30, memory_mb=2048, work_dir=tmp_path / "w")
    assert "\n" not in str(e.value) and not list(tmp_path.rglob("ran"))


@needs_unshare
def test_the_kernel_sees_no_kaggle_credentials(titanic_dir, tmp_path, monkeypatch):
    home = tmp_path / "userhome"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_KEY", "SECRET-never-in-a-kernel")
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    script = ("import os, pathlib\n"
              "print(sorted(k for k in os.environ if k.startswith('KAGGLE') or k.lower().endswith('_proxy')))\n"
              "print('kaggle.json', (pathlib.Path.home() / '.kaggle' / 'kaggle.json').exists())\n")
    kn, ds = _kernel(tmp_path, script)
    res = kr.run_kernel(kn, titanic_dir, ds, timeout_s=30, memory_mb=2048, work_dir=tmp_path / "w")
    log = res.log_path.read_text()
    assert res.status == "no submission" and "[]\nkaggle.json False" in log, log

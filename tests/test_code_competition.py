"""Code competitions end to end against the sandbox: `kit kernel push` creates the package's dataset (and skips an
unchanged one), pushes the kernel, which the sandbox runs with no network; `kit submit --kernel` submits a version
(rerun, then scored) through the ledger; a socket-opening kernel, overtime, a wrong owner, a non-code competition,
internet enabled, a still-running kernel: one line each, exit != 0, nothing recorded, no key printed."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from kit import package, registry
from kit.kaggle.errors import EXIT_DUPLICATE, EXIT_FORBIDDEN, EXIT_STILL_PENDING
from kit.kaggle.ledger import Ledger
from kit.run import train_and_submit
from kit.sandbox import Sandbox
from kit.sandbox.competitions import score_submission
from kit.sandbox.data import PRIVATE_FILES, make_code_competition, make_competition
from tests.test_kaggle_e2e import assert_no_secret, calls, cli, fault, serve
from tests.test_kernel_runner import needs_unshare
from tests.test_package import wheel_cache  # noqa: F401 (a fixture)

pytestmark = needs_unshare


@pytest.fixture(scope="module")
def code_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox folder whose titanic is a code competition (60 s / 4 GB kernel caps)."""
    root = tmp_path_factory.mktemp("code-sandbox")
    make_competition(root, "titanic", seed=3, n_train=160, n_test=60)
    make_code_competition(root / "titanic", runtime_s=60, memory_mb=4096)
    return root


@pytest.fixture
def sandbox(code_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheel_cache: Path):  # noqa: F811
    """A fresh sandbox over a copy of `code_root` (kernels and datasets start empty); cwd an empty work folder."""
    root = tmp_path / "root"
    shutil.copytree(code_root, root)
    monkeypatch.setenv("KIT_WHEEL_CACHE", str(wheel_cache))
    sb = serve(root, tmp_path, monkeypatch)
    yield sb
    sb.stop()


def _data(sb: Sandbox) -> Path:
    """The competition's public files (what `kit download` gives)."""
    data = Path("data/titanic")
    data.mkdir(parents=True)
    for p in (sb.root / "titanic").iterdir():
        if p.name not in PRIVATE_FILES:
            shutil.copy2(p, data / p.name)
    return data


def _packaged(sb: Sandbox, owner: str = "tester", seed: int = 3):
    comp = registry.get("titanic")
    r = train_and_submit(comp, _data(sb), comp.params({"epochs": 1}), seed=seed, n_folds=2, progress=False)
    return r, package.build_package(comp, r.run_dir, Path("packages"), owner=owner)


def _kernel_id(pkg) -> str:
    return json.loads((pkg.kernel_dir / "kernel-metadata.json").read_text())["id"]


def test_push_runs_offline_then_submit_by_version_is_scored_and_recorded(sandbox: Sandbox, capsys) -> None:
    r, pkg = _packaged(sandbox)
    kernel = _kernel_id(pkg)
    assert cli("kernel", "push", "--package", str(pkg.path), "--wait") == 0
    out = assert_no_secret(capsys, Path("."))
    assert f"dataset {pkg.dataset_id} version 1: uploaded" in out and f"kernel {kernel}/1: complete" in out
    # the output Kaggle keeps is the run's own submission, byte for byte; the log is fetched beside it
    got = pkg.path / "output" / "v1"
    assert (got / "submission.csv").read_bytes() == r.submission.read_bytes()
    assert "rows predicted by the 2 fold model(s)" in (got / f"{kernel.split('/')[1]}.log").read_text()
    # the dataset as Kaggle holds it: the models folder extracted from the client's zip
    ds = sandbox.datasets.folder(pkg.dataset_id)
    assert sorted(p.name for p in (ds / "models").iterdir()) == ["fold-0.pt", "fold-1.pt"]

    # the same package again: the dataset is unchanged on Kaggle, nothing uploaded; the kernel is version 2
    blobs = calls(sandbox, "StartBlobUpload")
    assert cli("kernel", "push", "--package", str(pkg.path)) == 0
    out = capsys.readouterr().out
    assert "version 1: unchanged on Kaggle, not uploaded again" in out and f"kernel {kernel}/2: pushed" in out
    assert calls(sandbox, "StartBlobUpload") == blobs
    assert cli("kernel", "status", kernel, "--wait") == 0
    assert f"kernel {kernel}/2: complete" in capsys.readouterr().out

    assert cli("submit", "--comp", "titanic", "--kernel", kernel, "--version", "1", "--wait", "-m", "v1") == 0
    out = assert_no_secret(capsys, Path("."))
    sub = sandbox.submissions[0]
    assert sub.kernel == f"{kernel}/1" and sub.file_name == "submission.csv"
    # scored as Kaggle scores the file the rerun wrote: here the run's own submission
    public, private, _ = score_submission(sandbox.root / "titanic",
                                          sandbox.meta("titanic"), r.submission.read_bytes())
    assert (sub.public_score, sub.private_score) == (public, private)
    assert f"public score: {public:.5f}" in out
    (e,) = Ledger(Path("submissions/ledger.jsonl")).entries("titanic")
    assert (e.kernel, e.ref, e.state, e.sha256) == (f"{kernel}/1", sub.ref, "submitted", "")
    assert e.public_score == pytest.approx(public, abs=1e-5)  # Kaggle shows 5 decimals

    # the same version again: refused before anything is sent; --force sends it
    assert cli("submit", "--comp", "titanic", "--kernel", f"{kernel}/1") == EXIT_DUPLICATE
    err = capsys.readouterr().err
    assert f"kernel {kernel}/1 was already submitted" in err and len(err.strip().splitlines()) == 1
    assert len(sandbox.submissions) == 1
    # without --version: the newest (2), a different version, so it goes
    assert cli("submit", "--comp", "titanic", "--kernel", kernel) == 0
    assert sandbox.submissions[-1].kernel == f"{kernel}/2"

    assert cli("submissions", "--comp", "titanic") == 0
    listing = capsys.readouterr().out
    assert f"{sub.ref}*" in listing and f"kernel {kernel}/1" in listing and f"kernel {kernel}/2" in listing

    # a CSV to a code competition: Kaggle refuses it, one line
    assert cli("submit", "--comp", "titanic", "--file", str(r.submission)) != 0
    assert "accepts submissions from notebooks only" in capsys.readouterr().err


def _hand_kernel(tmp_path: Path, script: str, slug: str = "probe-kernel", owner: str = "tester",
                 internet: bool = False) -> Path:
    kn = tmp_path / slug
    kn.mkdir()
    meta = {"id": f"{owner}/{slug}", "title": slug, "code_file": "main.py", "language": "python",
            "kernel_type": "script", "is_private": True, "enable_internet": internet,
            "competition_sources": ["titanic"], "dataset_sources": []}
    (kn / "kernel-metadata.json").write_text(json.dumps(meta))
    (kn / "main.py").write_text(script)
    return kn


def _push_kernel(kn: Path):
    from kit.kaggle import kernels
    from kit.kaggle.client import Kaggle

    kg = Kaggle("titanic")
    pushed = kernels.push(kg, kn)
    return kg, pushed.ref


def test_socket_overtime_and_unsubmittable_versions(sandbox: Sandbox, tmp_path: Path, capsys) -> None:
    from kit.kaggle import kernels

    host, port = sandbox.httpd.server_address[:2]
    opener = _hand_kernel(tmp_path, f"import socket\nsocket.create_connection(({host!r}, {port}), timeout=5)\n",
                          "socket-kernel")
    kg, ref = _push_kernel(opener)
    st = kernels.wait(kg, ref, 60, progress=False)
    assert st.status == "error" and "Notebook Threw Exception" in st.failure
    assert "Network is unreachable" in st.failure  # the reason, from the kernel's log
    assert cli("submit", "--comp", "titanic", "--kernel", str(ref)) != 0
    err = capsys.readouterr().err
    assert f"kernel {ref} is error" in err and "only a version that ran to completion" in err

    meta = sandbox.meta("titanic")
    make_code_competition(sandbox.root / "titanic", runtime_s=1.5)
    sleeper = _hand_kernel(tmp_path, "import time\ntime.sleep(30)\n", "sleepy-kernel")
    kg, ref = _push_kernel(sleeper)
    t = time.monotonic()
    st = kernels.wait(kg, ref, 60, progress=False)
    assert st.status == "error" and st.failure.startswith("Notebook Timeout") and time.monotonic() - t < 20
    make_code_competition(sandbox.root / "titanic", runtime_s=meta.kernel_runtime_s)

    # still running past --timeout: exit StillPending, one line
    slow = _hand_kernel(tmp_path, "import time\ntime.sleep(8)\n", "slow-kernel")
    assert cli("kernel", "push", "--package", str(tmp_path), "--wait") != 0  # not a package: one line
    assert "not a package" in capsys.readouterr().err
    kg, ref = _push_kernel(slow)
    assert cli("kernel", "status", str(ref), "--wait", "--timeout", "0.5") == EXIT_STILL_PENDING
    assert "still" in capsys.readouterr().err
    assert cli("kernel", "output", str(ref)) != 0
    assert "its output exists once the run ends" in capsys.readouterr().err

    online = _hand_kernel(tmp_path, "print('hi')\n", "online-kernel", internet=True)
    kg, ref = _push_kernel(online)
    kernels.wait(kg, ref, 60, progress=False)
    assert cli("submit", "--comp", "titanic", "--kernel", str(ref)) != 0
    assert "has internet enabled" in assert_no_secret(capsys)
    assert sandbox.submissions == [] and not Path("submissions/ledger.jsonl").exists()


def test_a_kernel_without_submission_csv_fails_its_code_submission(sandbox: Sandbox, tmp_path: Path, capsys) -> None:
    from kit.kaggle import kernels

    kn = _hand_kernel(tmp_path, "print('no csv here')\n", "empty-kernel")
    kg, ref = _push_kernel(kn)
    assert kernels.wait(kg, ref, 60, progress=False).status == "complete"  # ran fine; judged when submitted
    assert cli("submit", "--comp", "titanic", "--kernel", str(ref), "--wait") != 0
    assert "Submission CSV Not Found" in capsys.readouterr().err
    (e,) = Ledger(Path("submissions/ledger.jsonl")).entries("titanic")
    assert e.status == "error" and "Submission CSV Not Found" in e.error


def test_wrong_owner_and_not_a_code_competition(sandbox: Sandbox, tmp_path: Path, capsys) -> None:
    _, pkg = _packaged(sandbox, owner="someone-else")
    assert cli("kernel", "push", "--package", str(pkg.path)) == EXIT_FORBIDDEN
    err = assert_no_secret(capsys)
    assert "dataset someone-else/" in err and "belongs to another user" in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error")]) == 1
    assert not (sandbox.root / ".datasets" / "someone-else").exists()

    # the same folders on a competition that takes files: the notebook is refused before any call is spent
    plain = tmp_path / "plain"
    make_competition(plain, "titanic", seed=3, n_train=160, n_test=60)
    meta = sandbox.meta("titanic")
    (sandbox.root / "titanic" / ".competition.json").write_text(
        (plain / "titanic" / ".competition.json").read_text())
    assert not sandbox.meta("titanic").code and meta.code
    assert cli("submit", "--comp", "titanic", "--kernel", "tester/some-kernel") != 0
    err = capsys.readouterr().err
    assert "titanic is not a code competition" in err and "kit submit --comp titanic --file FILE" in err
    assert calls(sandbox, "GetKernel") == 0 and sandbox.submissions == []  # refused after one ListCompetitions


def test_package_dataset_changed_after_packaging_is_refused(sandbox: Sandbox, capsys) -> None:
    _, pkg = _packaged(sandbox)
    with open(pkg.dataset_dir / "record.json", "a") as f:
        f.write(" ")
    assert cli("kernel", "push", "--package", str(pkg.path)) != 0
    assert "changed since it was packaged" in assert_no_secret(capsys, Path("."))  # output and every file
    assert calls(sandbox, "CreateDataset") == 0


@pytest.mark.parametrize("text,version,want", [("me/my-kernel", None, "me/my-kernel"), ("me/my-kernel/3", None,
                                               "me/my-kernel/3"), ("me/my-kernel/v3", 5, "me/my-kernel/5")])
def test_kernel_refs(text: str, version: int | None, want: str) -> None:
    from kit.kaggle.kernels import KernelRef

    assert str(KernelRef.parse(text, version)) == want


def test_kernel_ref_and_content_tag_errors() -> None:
    from kit.errors import KitError
    from kit.kaggle.datasets import content_hash, content_tag, tagged_hash
    from kit.kaggle.kernels import KernelRef

    for bad in ("my-kernel", "me/My Kernel", "me/k/x/1"):
        with pytest.raises(KitError, match="expected USER/SLUG"):
            KernelRef.parse(bad)
    sums = "ab  x.whl\n"
    assert tagged_hash(f"words\n\n{content_tag(sums)}") == content_hash(sums)
    assert tagged_hash("no tag") is None


@pytest.mark.parametrize("how", [{"status": 500}, {"drop": True}])
def test_a_dataset_created_whose_answer_was_lost_is_not_an_error(sandbox: Sandbox, capsys, how: dict) -> None:
    _, pkg = _packaged(sandbox)
    fault(sandbox, match="CreateDataset", after=True, times=1, **how)  # created, then the answer is lost
    assert cli("kernel", "push", "--package", str(pkg.path)) == 0
    assert f"dataset {pkg.dataset_id} version 1: uploaded" in capsys.readouterr().out
    # kit's retry first asks whether it landed (it did); a retry by the client itself would find the slug taken
    # by this very content: either way one dataset, one version
    assert calls(sandbox, "CreateDataset") in (1, 2), calls(sandbox, "CreateDataset")
    assert [v["number"] for v in sandbox.datasets.info(*pkg.dataset_id.split("/"))["versions"]] == [1]


def test_a_push_whose_answer_was_lost_is_not_repeated(sandbox: Sandbox, tmp_path: Path, capsys) -> None:
    from kit.kaggle.errors import EXIT_SERVER_ERROR

    kn = _hand_kernel(tmp_path, "print('hi')\n", "lost-push")
    _, pkg = _packaged(sandbox)
    shutil.rmtree(pkg.kernel_dir)
    shutil.copytree(kn, pkg.kernel_dir)
    fault(sandbox, match="SaveKernel", status=503, after=True, times=1)
    assert cli("kernel", "push", "--package", str(pkg.path)) == EXIT_SERVER_ERROR
    err = capsys.readouterr().err
    assert "may have reached Kaggle: check `kit kernel status tester/lost-push`" in err
    assert calls(sandbox, "SaveKernel") == 1 and sandbox.kernels.info("tester", "lost-push")["versions"] == [1]

"""`kit package`: a run packaged as a Kaggle dataset + offline kernel; the kernel's script, with kit installed from
the package's own wheels into a temp prefix, rebuilds the run's submission byte for byte; bad input is one line
and leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kit import package, registry
from kit.commands.package import main as package_main
from kit.errors import KitError
from kit.run import train_and_submit

SECRET = "SECRET-KEY-never-shown-123"
# imported by image libraries only when present, inside try/except ImportError (joblib's loky: psutil; urllib3:
# brotli, zstd), so not needed in the notebook
OPTIONAL_IMPORTS = {"psutil", "brotli", "brotlicffi", "backports-zstd", "zstandard"}

# runs the kernel's script as Kaggle would (as __main__), then lists the distributions it imported
WRAPPER = """
import importlib.metadata as md, json, runpy, sys
code = 0
try:
    runpy.run_path(sys.argv[1], run_name="__main__")
except SystemExit as e:
    code = e.code
tops = {m.split(".")[0] for m in list(sys.modules)}
dists = md.packages_distributions()
json.dump(sorted({d for t in tops for d in dists.get(t, [])}), open(sys.argv[2], "w"))
sys.exit(code)
"""


@pytest.fixture(scope="session")
def wheel_cache() -> Path:
    """The user's wheel cache, holding the extra wheels (fetched from PyPI once; skipped when that cannot be)."""
    cache = package.wheel_cache()
    scratch = cache / ".test-scratch"
    try:
        for name in package.NOTEBOOK_EXTRA_WHEELS:
            package.fetch_wheel(package.requirement(name), scratch, cache)
    except KitError as e:
        pytest.skip(f"the notebook's extra wheels are not cached and PyPI is unreachable: {e}")
    finally:
        for p in scratch.glob("*.whl"):
            p.unlink()
        if scratch.is_dir():
            scratch.rmdir()
    return cache


@pytest.fixture
def kaggle_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheel_cache: Path) -> str:
    """Credentials of user `alice` in a private kaggle.json (and nothing else the client would read)."""
    monkeypatch.setenv("KIT_WHEEL_CACHE", str(wheel_cache))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = tmp_path / "kaggle-config"
    cfg.mkdir()
    (cfg / "kaggle.json").write_text(json.dumps({"username": "alice", "key": SECRET}))
    (cfg / "kaggle.json").chmod(0o600)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(cfg))
    return "alice"


def _train(titanic_dir: Path, seed: int = 3, family: str = "mlp"):
    comp = registry.get("titanic").with_model(family)
    small = {"epochs": 1} if family == "mlp" else {"epochs": 1, "width": 8, "depth": 1, "k": 2, "d_emb": 4}
    return train_and_submit(comp, titanic_dir, comp.params(small), seed=seed, n_folds=2, progress=False)


def _allowed_distributions() -> set[str]:
    """Kaggle's image (NOTEBOOK_IMAGE and everything they require, as installed here), the extras and kit."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
    seen: set[str] = set()
    todo = [norm(n) for n in package.NOTEBOOK_IMAGE]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(norm(r.name))
    return seen | {norm(n) for n in package.NOTEBOOK_EXTRA_WHEELS} | {"kit"} | OPTIONAL_IMPORTS


@pytest.mark.parametrize("family", ["mlp", "tabm"])  # tabm: its module and embeddings come from shipped wheels
def test_package_metadata_and_offline_notebook_rebuilds_the_submission(titanic_dir, workdir, kaggle_user, capsys,
                                                                       tmp_path, family):
    r = _train(titanic_dir, family=family)
    assert package_main(["--comp", "titanic"]) == 0  # the newest run with saved models
    out = capsys.readouterr()
    pkg = Path(out.out.strip().splitlines()[-1])
    assert pkg == Path("packages") / "titanic" / r.run_dir.name and SECRET not in out.out + out.err
    ds, kn = pkg / "dataset", pkg / "kernel"
    run = r.run_dir.name.lower()
    meta = json.loads((ds / "dataset-metadata.json").read_text())
    assert meta["id"] == f"alice/kit-titanic-{run}" and meta["licenses"] == [{"name": "CC0-1.0"}]
    km = json.loads((kn / "kernel-metadata.json").read_text())
    assert km["id"] == f"alice/titanic-{run}-inference" and km["title"] == km["id"].split("/")[1]
    assert (km["code_file"], km["language"], km["kernel_type"]) == ("inference.py", "python", "script")
    assert km["is_private"] is True and km["enable_internet"] is False and km["enable_gpu"] is False
    assert km["competition_sources"] == ["titanic"] and km["dataset_sources"] == [meta["id"]]
    # the run's inference files, as they are
    for rel in ["decoding.json", "record.json", "models/fold-0.pt", "models/fold-1.pt"]:
        assert (ds / rel).read_bytes() == (r.run_dir / rel).read_bytes()
    wheels = sorted(p.name.split("-")[0] for p in ds.glob("*.whl"))
    assert wheels == ["iterative_stratification", "kit", "rtdl_num_embeddings", "tabm"]
    names = zipfile.ZipFile(ds / "kit-0.1.0-py3-none-any.whl").namelist()
    assert {"kit/inference.py", "kit/notebook.py", "competitions/titanic/__init__.py"} <= set(names)
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    sums = [line.split("  ") for line in (ds / "SHA256SUMS").read_text().splitlines()]
    files = sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*") if p.is_file())
    assert [f for _, f in sums] == [f for f in files if f not in ("SHA256SUMS", "dataset-metadata.json")]
    assert all(hashlib.sha256((ds / f).read_bytes()).hexdigest() == h for h, f in sums)
    for p in pkg.rglob("*"):
        assert not p.is_file() or SECRET.encode() not in p.read_bytes()  # the key is never stored
    assert not list(pkg.parent.glob(".*"))  # no temp folder left beside it
    # the notebook, offline: kit only from the package's wheel, into a temp prefix; torch & co. from the image
    prefix, working, imported = tmp_path / "prefix", tmp_path / "working", tmp_path / "imported.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_", "PYTHON"))}
    env.update(KIT_INPUT=str(titanic_dir), KIT_MODELS=str(ds.resolve()), KIT_WORKING=str(working),
               KIT_TARGET=str(prefix), PIP_NO_INDEX="1")
    script = (kn / "inference.py").resolve()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(script), str(imported)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("kit "))
    assert Path(line.split(" from ", 1)[1]) == prefix / "kit"  # not the repository's kit
    assert (prefix / "kit-0.1.0.dist-info").is_dir()
    assert (working / "submission.csv").read_bytes() == r.submission.read_bytes()
    # inference imported nothing beyond Kaggle's image, the shipped extras and kit
    extra = {re.sub(r"[-_.]+", "-", d).lower() for d in json.loads(imported.read_text())} - _allowed_distributions()
    assert not extra, f"inference imports {sorted(extra)}: not in Kaggle's image nor NOTEBOOK_EXTRA_WHEELS"
    # the description carries the content's hash (kit kernel push skips an unchanged upload by it)
    from kit.kaggle.datasets import check_content, content_hash

    assert check_content(ds) == content_hash((ds / "SHA256SUMS").read_text())
    # where Kaggle kept the client's models.zip as a file (not extracted), the notebook extracts it itself
    kept = tmp_path / "kept"
    shutil.copytree(ds, kept)
    shutil.make_archive(str(kept / "models"), "zip", kept / "models")  # as the client's dir_mode="zip" does
    shutil.rmtree(kept / "models")
    env.update(KIT_MODELS=str(kept), KIT_WORKING=str(tmp_path / "working2"), KIT_TARGET=str(tmp_path / "prefix2"))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "working2" / "submission.csv").read_bytes() == r.submission.read_bytes()


def test_owner_and_gpu_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kaggle/access_token of the machine's
    comp = registry.get("titanic")
    assert package.owner_name(None, {"HOME": str(tmp_path), "KAGGLE_CONFIG_DIR": str(tmp_path)})[0] == "USERNAME"
    who, source = package.owner_name(None, {"KAGGLE_API_TOKEN": SECRET})  # a bare token names no user
    assert who == "USERNAME" and SECRET not in source
    assert package.owner_name("bob", {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": SECRET}) == ("bob", "--owner")
    assert package.owner_name(None, {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": SECRET})[0] == "alice"
    with pytest.raises(KitError, match="not a Kaggle username"):
        package.owner_name("a/b")
    gpu = package.kernel_metadata(comp, "20260101T000000000Z", "bob", {"params": {"preset": "gpu"}})
    cpu = package.kernel_metadata(comp, "20260101T000000000Z", "bob", {"params": {"preset": "cpu"}})
    assert gpu["enable_gpu"] is True and cpu["enable_gpu"] is False and gpu["enable_internet"] is False


def test_bad_input_is_one_line_and_leaves_nothing(titanic_dir, workdir, kaggle_user, capsys, monkeypatch):
    r = _train(titanic_dir, seed=5)
    out = Path("packages") / "titanic"

    def fails(args: list[str], match: str) -> None:
        code = package_main(["--comp", "titanic", *args])
        err = capsys.readouterr().err
        assert code != 0 and err.count("\n") == 1 and err.startswith("error: ") and match in err, err
        assert SECRET not in err
        assert not out.exists() or not any(out.iterdir()), list(out.iterdir())  # nothing half-written

    fails(["--run", "20990101T000000000Z"], "not found")
    declared = package.NOTEBOOK_EXTRA_WHEELS
    monkeypatch.setattr(package, "NOTEBOOK_EXTRA_WHEELS", (*declared, "kit-no-such-package-zz"))
    fails(["--run", r.run_dir.name], "kit-no-such-package-zz")  # a dependency with no wheel
    monkeypatch.setattr(package, "NOTEBOOK_EXTRA_WHEELS", declared)
    rec = json.loads((r.run_dir / "record.json").read_text())
    (r.run_dir / "record.json").write_text(json.dumps({**rec, "models": None}))
    fails(["--run", r.run_dir.name], "saved no fold models")
    fails([], "saved no fold models")  # the newest run folder with models/ is this one
    shutil.rmtree(r.run_dir / "models")
    fails([], "no run with saved models")
    assert not Path("packages").exists() or not any(Path("packages").rglob("*"))

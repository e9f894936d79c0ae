"""Packages a finished run for an offline Kaggle notebook (code competitions): `packages/<comp>/<run>/` holds a
Kaggle dataset folder (the run's fold models, decoding and record, the pretrained weights it loaded, a wheel
of kit + the competition modules, wheels of the few libraries Kaggle's image lacks, SHA256SUMS) and a kernel
folder (`kernel-metadata.json` and `inference.py`, which installs kit from the dataset with pip --no-index and
calls `kit.notebook.main`). Wheels are fetched here, while online; the notebook never reaches for the network
and never trains.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import runs
from kit.errors import DataError, KitError
from kit.inference import read_decoder, saved_models
from kit.io import writing
from kit.kaggle.datasets import METADATA_FILE, SUMS_FILE, content_tag, sha256sums
from kit.notebook import RUN_FILES
from kit.spec import Competition

# Libraries inference imports that Kaggle's notebook image lacks. Inference (kit.inference -> kit.predictors,
# kit.tasks, kit.vision, the competition module) imports torch, fastai (with its own dependencies: torchvision,
# pillow, matplotlib, fastprogress, fastcore...), numpy, pandas, scikit-learn, scipy, lightgbm, catboost and
# xgboost, all in the image, plus `iterstrat` (kit.tasks' MultilabelStratifiedKFold), `rtdl_num_embeddings` (the
# tabular nets' embeddings, unpickled with their fold models) and `tabm`, which are not. optuna, kaggle, py7zr and
# requests are imported only by tune/download/submit, never by inference, so they are not shipped.
# Installed with --no-deps: a library listed here whose own requirements the image lacks must list them too.
NOTEBOOK_EXTRA_WHEELS: tuple[str, ...] = ("iterative-stratification", "rtdl_num_embeddings", "tabm")
# What Kaggle's Python image provides (the distributions inference may rely on without shipping them).
NOTEBOOK_IMAGE: tuple[str, ...] = ("torch", "torchvision", "fastai", "numpy", "pandas", "scikit-learn", "scipy",
                                   "lightgbm", "catboost", "xgboost", "pillow", "matplotlib",
                                   "typing_extensions", "pyarrow", "timm")
NOTEBOOK_PYTHON = "3.11"
NOTEBOOK_PLATFORM = "manylinux2014_x86_64"
PLACEHOLDER_OWNER = "USERNAME"
LICENSE = "CC0-1.0"
KAGGLE_INPUT = "/kaggle/input"
KAGGLE_WORKING = "/kaggle/working"
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: wheel timestamps fixed, so an unchanged project hashes the same
PIP_TIMEOUT_S = 300


@dataclass
class Package:
    """A written package: its folder, Kaggle ids and sizes."""

    path: Path
    owner: str
    owner_source: str
    dataset_id: str
    kernel_id: str
    wheels: list[str] = field(default_factory=list)
    dataset_bytes: int = 0

    @property
    def dataset_dir(self) -> Path:
        """The Kaggle dataset folder."""
        return self.path / "dataset"

    @property
    def kernel_dir(self) -> Path:
        """The Kaggle kernel folder."""
        return self.path / "kernel"


def run_files(comp: Competition, run_dir: Path, record: Mapping[str, Any]) -> list[str]:
    """The run's files inference needs (relative paths), checked: present, the same bytes as the run wrote (the
    record's SHA-256s), the decoding readable; for a record without hashes, each fold model loadable. A KitError
    when it saved no models, a DataError naming the first bad file."""
    models = saved_models(comp, run_dir, dict(record))
    files = [*RUN_FILES, *models]
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not (run_dir / rel).is_file():
            raise DataError(f"{run_dir / rel}: missing; the run folder is incomplete")
    runs.verify(run_dir, dict(record), [runs.DECODING, *models])
    read_decoder(comp, run_dir)
    if record.get(runs.HASHES) is None:  # nothing to compare with: at least do not ship a file that cannot load
        from kit import predictors

        for rel in models:
            predictors.load(run_dir / rel)
    return files


def weights_file(record: Mapping[str, Any]) -> tuple[Path, str] | None:
    """(the pretrained weights file the run loaded, its path in the dataset: weights/<arch><suffix>, a name
    kit.vision.weights finds under $KIT_WEIGHTS), checked against the record's SHA-256; None when the run loaded
    none. A DataError when the file is gone or changed since the run."""
    w = record.get("weights")
    if not w:
        return None
    from kit.vision.weights import resolve_arch, sha256

    src = Path(w["file"])
    if not src.is_file():
        raise DataError(f"{src}: the pretrained weights file the run loaded is missing; restore it or retrain")
    if sha256(src) != w.get("sha256"):
        raise DataError(f"{src}: the pretrained weights file changed since the run (SHA-256 differs)")
    model = resolve_arch((record.get("params") or {}).get("arch", "")).model
    return src, f"weights/{model}{src.suffix}"


def owner_name(owner: str | None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(Kaggle username, where it came from): `owner` when given, else the credentials' user, else a placeholder."""
    if owner:
        return _check_slug_part(owner, "--owner"), "--owner"
    from kit.kaggle.credentials import find_credentials
    from kit.kaggle.errors import NoCredentials

    try:
        creds = find_credentials(env)
    except NoCredentials:
        return PLACEHOLDER_OWNER, "placeholder (no Kaggle credentials; set --owner)"
    if not creds.username:  # a bare API token does not say whose it is
        return PLACEHOLDER_OWNER, f"placeholder ({creds.source} names no user; set --owner)"
    return _check_slug_part(creds.username, "the Kaggle username"), "Kaggle credentials"


def _check_slug_part(value: str, what: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value):
        raise KitError(f"{what} {value!r} is not a Kaggle username (letters, digits, '-' and '_')")
    return value


def slugs(comp: Competition, run_name: str) -> tuple[str, str]:
    """(dataset slug, kernel slug) of a run: kit-<comp>-<run> and <comp>-<run>-inference, lower case."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"{comp.name}-{run_name}".lower()).strip("-")
    dataset, kernel = f"kit-{base}", f"{base}-inference"
    for slug, what in ((dataset, "dataset"), (kernel, "kernel")):
        if not 6 <= len(slug) <= 50:
            raise KitError(f"Kaggle {what} slug {slug!r} must be 6-50 characters; rename the run folder")
    return dataset, kernel


def dataset_metadata(comp: Competition, run_name: str, owner: str, record: Mapping[str, Any],
                     sums: str) -> dict[str, Any]:
    """Kaggle's dataset-metadata.json for the package's dataset; its description ends with the content's hash
    (`sums`: the SHA256SUMS text), which `kit kernel push` compares to skip an unchanged upload."""
    slug, _ = slugs(comp, run_name)
    cv = record.get("cv") or {}
    score = f"; CV {cv['mean']:.4f} ± {cv['std']:.4f}" if {"mean", "std"} <= set(cv) else ""
    return {
        "title": slug[:50],
        "id": f"{owner}/{slug}",
        "licenses": [{"name": LICENSE}],
        "subtitle": f"kit run {run_name} of {comp.name}: fold models, decoding, wheels"[:80],
        "description": f"Inference files of kit run {run_name} for {comp.slug} (model {record.get('model')}"
                       f"{score}): the fold models, decoding and record, a wheel of kit with its competition "
                       "modules and wheels of libraries Kaggle's image lacks. Made by `kit package`.\n\n"
                       + content_tag(sums),
    }


def kernel_metadata(comp: Competition, run_name: str, owner: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Kaggle's kernel-metadata.json: an offline, private script kernel on the competition and the dataset."""
    dataset, kernel = slugs(comp, run_name)
    return {
        "id": f"{owner}/{kernel}",
        "title": kernel,  # Kaggle derives the kernel's slug from its title: keep them equal
        "code_file": "inference.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": (record.get("params") or {}).get("preset") == "gpu",
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": [f"{owner}/{dataset}"],
        "competition_sources": [comp.slug],
        "kernel_sources": [],
        "model_sources": [],
    }


def project_root() -> Path:
    """The source tree kit runs from (pyproject.toml of project `kit`); a KitError for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and re.search(r'(?m)^name\s*=\s*"kit"', pyproject.read_text())):
        raise KitError(f"{root}: not kit's source tree (no pyproject.toml of kit); package from a checkout")
    return root


def _pip(args: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise KitError(f"{what}: pip took longer than {PIP_TIMEOUT_S} s") from None


def _pip_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or [f"exit {proc.returncode}"])[-1]


def build_project_wheel(dest: Path) -> Path:
    """A wheel of this project (kit + competitions), built offline from a copy of the source tree."""
    root = project_root()
    with tempfile.TemporaryDirectory(prefix="kit-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, src / name)
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
        for pkg in ("kit", "competitions"):  # a copy: no build/ or egg-info in the checkout, no stale build/lib
            shutil.copytree(root / pkg, src / pkg, ignore=skip)
        out = Path(tmp) / "wheel"
        proc = _pip(["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(src)],
                    "building kit's wheel", {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        wheels = sorted(out.glob("kit-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise KitError(f"cannot build kit's wheel offline (setuptools installed?): {_pip_error(proc)}")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], dest / wheels[0].name))


def wheel_cache() -> Path:
    """Where downloaded dependency wheels are kept between packages ($KIT_WHEEL_CACHE, else ~/.cache/kit/wheels)."""
    if os.environ.get("KIT_WHEEL_CACHE"):
        return Path(os.environ["KIT_WHEEL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kit" / "wheels"


def requirement(name: str) -> str:
    """`name==<the version installed here>` (what training used), or `name` when it is not installed."""
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def fetch_wheel(req: str, dest: Path, cache: Path | None = None) -> Path:
    """The wheel of requirement `req` for Kaggle's notebook (CPython 3.11, manylinux x86_64) in `dest`: from the
    cache, else downloaded from the index (online, now: never at notebook run time)."""
    cache = wheel_cache() if cache is None else cache
    name, _, version = req.partition("==")
    found = sorted(cache.glob(f"{_norm(name)}-{version}-*.whl")) if version else []
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
            proc = _pip(["download", "--no-deps", "--only-binary=:all:", "--python-version", NOTEBOOK_PYTHON,
                         "--platform", NOTEBOOK_PLATFORM, "--retries", "2", "--timeout", "30", "-q", "-d", tmp, req],
                        f"downloading {req}")
            got = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or len(got) != 1:
                raise KitError(f"dependency {name}: no wheel of {req} for CPython {NOTEBOOK_PYTHON} on "
                               f"{NOTEBOOK_PLATFORM} could be downloaded (pip: {_pip_error(proc)})")
            found = [Path(shutil.move(got[0], cache / got[0].name))]
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(found[-1], dest / found[-1].name))


INFERENCE_TEMPLATE = '''\
"""Offline Kaggle notebook for kit run {run} of {comp}: installs kit and the extra libraries from the attached
dataset (pip --no-index --no-deps: no network), then runs kit.notebook.main, which predicts the test set with
the run's fold models and writes submission.csv (its docstring lists the KIT_* overrides for a local rehearsal;
KIT_WHEELS: where the wheels are, default KIT_MODELS; KIT_TARGET: pip --target this folder). Made by `kit package`.
"""

import importlib
import os
import subprocess
import sys
import time

START = time.time()
REQUIREMENTS = {requirements!r}
MODELS = os.environ.get("KIT_MODELS") or {models!r}
WHEELS = os.environ.get("KIT_WHEELS") or MODELS
TARGET = os.environ.get("KIT_TARGET")

cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", WHEELS,
       "--disable-pip-version-check", "--quiet"] + (["--target", TARGET, "--upgrade"] if TARGET else [])
proc = subprocess.run(cmd + REQUIREMENTS, capture_output=True, text=True)
if proc.returncode != 0:
    last = ([ln for ln in proc.stderr.splitlines() if ln.strip()] or ["exit " + str(proc.returncode)])[-1]
    sys.exit(f"error: cannot install {{' '.join(REQUIREMENTS)}} from {{WHEELS}}: {{last}}")
if TARGET:
    sys.path.insert(0, TARGET)
importlib.invalidate_caches()

from kit.notebook import main  # noqa: E402  (installed just above)

sys.exit(main({comp!r}, {run!r}, {input!r}, MODELS, {working!r}, start=START))
'''


def inference_script(comp: Competition, run_name: str, dataset_slug: str, requirements: Sequence[str]) -> str:
    """The kernel's inference.py for this run and dataset."""
    return INFERENCE_TEMPLATE.format(
        comp=comp.name, run=run_name, requirements=list(requirements),
        input=f"{KAGGLE_INPUT}/{comp.slug}",
        models=f"{KAGGLE_INPUT}/{dataset_slug}", working=KAGGLE_WORKING,
    )


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def build_package(
    comp: Competition,
    run_dir: Path,
    out_root: Path = Path("packages"),
    owner: str | None = None,
    extra_wheels: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Package:
    """Write `<out_root>/<comp>/<run>/` (dataset/ + kernel/) atomically: built in a temp folder beside it, then
    renamed into place; on any failure nothing is left behind."""
    run_dir = Path(run_dir)
    record = runs.read_record(run_dir)
    files = run_files(comp, run_dir, record)
    weights = weights_file(record)
    run_name = run_dir.resolve().name
    dataset_slug, _ = slugs(comp, run_name)
    owner, source = owner_name(owner, env)
    extras = NOTEBOOK_EXTRA_WHEELS if extra_wheels is None else tuple(extra_wheels)
    final = Path(out_root) / comp.name / run_name
    made_parent = not final.parent.exists()
    with writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_name}.", suffix=".tmp", dir=final.parent))
    try:
        with writing(final):
            ds, kn = tmp / "dataset", tmp / "kernel"
            ds.mkdir()
            kn.mkdir()
            for rel in files:
                (ds / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run_dir / rel, ds / rel)
            if record.get(runs.HASHES) is not None:  # what ships is what the run wrote
                runs.verify(ds, dict(record), [f for f in files if f != runs.RECORD])
            if weights is not None:  # the backbone's pretrained weights, found offline by the notebook
                (ds / weights[1]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(weights[0], ds / weights[1])
            wheels = [build_project_wheel(ds)]
            reqs = [requirement("kit")]
            for name in extras:
                req = requirement(name)
                wheels.append(fetch_wheel(req, ds))
                reqs.append(req)
            sums = sha256sums(ds)
            (ds / SUMS_FILE).write_text(sums)
            _write_json(ds / METADATA_FILE, dataset_metadata(comp, run_name, owner, record, sums))
            _write_json(kn / "kernel-metadata.json", kernel_metadata(comp, run_name, owner, record))
            (kn / "inference.py").write_text(inference_script(comp, run_name, dataset_slug, reqs))
            size = sum(p.stat().st_size for p in ds.rglob("*") if p.is_file())
            if final.exists():  # a re-package: swap the old one out, the new one in, then drop the old
                old = Path(tempfile.mkdtemp(prefix=f".{run_name}.", suffix=".old", dir=final.parent))
                os.replace(final, old / run_name)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent:
            with contextlib.suppress(OSError):
                final.parent.rmdir()  # only when empty
        raise
    meta = json.loads((final / "kernel" / "kernel-metadata.json").read_text())
    return Package(final, owner, source, f"{owner}/{dataset_slug}", meta["id"], [w.name for w in wheels], size)


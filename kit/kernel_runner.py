"""Runs a packaged Kaggle kernel locally as Kaggle would, offline: its code_file in a new network namespace
(`unshare --net`: only a downed loopback, no route anywhere, not even to the host's own services), with a
Kaggle-like folder layout in a work folder (input/<competition slug> -> the data, input/<dataset slug> -> the
dataset, working/ fresh; passed through the KIT_* variables the generated script reads), a runtime cap that kills
the whole process group, a memory cap (RLIMIT_AS) and stdout+stderr in a log; then checks `submission.csv`.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError
from kit.kaggle.kernels import read_metadata
from kit.spec import Competition

COMPLETE, ERROR, TIMEOUT, NO_SUBMISSION, INVALID, CANCELLED = (
    "complete", "error", "timeout", "no submission", "invalid submission", "cancelled")
DEFAULT_TIMEOUT_S = 9 * 3600  # Kaggle's notebook limit
DEFAULT_MEMORY_MB = 30 * 1024  # Kaggle's CPU notebook RAM
LOG_FILE = "kernel.log"
SUBMISSION = "submission.csv"


@dataclass
class KernelResult:
    """How a kernel run ended: status, runtime, its log, its submission (when written) and the reason it failed."""

    status: str
    seconds: float
    log_path: Path
    submission_path: Path | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the kernel completed with a valid submission."""
        return self.status == COMPLETE


def competition_for(slug: str) -> Competition:
    """The registered competition whose Kaggle slug is `slug`."""
    from kit import registry

    for name in registry.names():
        comp = registry.get(name)
        if comp.slug == slug:
            return comp
    raise KitError(f"no competition in competitions/ has Kaggle slug {slug!r} (the kernel's competition_sources)")


def network_isolation_command() -> list[str]:
    """The command prefix that runs a program with no network (`unshare --net`), checked to work here."""
    exe = shutil.which("unshare")
    if exe is None:
        raise KitError("cannot isolate the kernel from the network: `unshare` (util-linux) is not installed")
    probe = subprocess.run([exe, "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        raise KitError(f"cannot isolate the kernel from the network (`unshare --net` needs root): {why}")
    return [exe, "--net"]


def _limit_memory(memory_mb: int) -> None:
    limit = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else "no output"


def layout(work_dir: Path, data_dir: Path, datasets: dict[str, Path], comp_slug: str) -> dict[str, Path]:
    """Kaggle's folders under `work_dir/kaggle`: input/<slug> linked to the competition's files and to each dataset
    (by its slug), working/ fresh."""
    root = Path(work_dir) / "kaggle"
    inp, working = root / "input", root / "working"
    if working.exists():
        shutil.rmtree(working)
    inp.mkdir(parents=True, exist_ok=True)
    working.mkdir(parents=True)
    links = {comp_slug: Path(data_dir).resolve(), **{s: Path(d).resolve() for s, d in datasets.items()}}
    for slug, target in links.items():
        link = inp / slug
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    paths = {"input": inp / comp_slug, "working": working, "target": root / "lib"}
    if datasets:
        paths["models"] = inp / next(iter(datasets))
    return paths


def run_kernel(kernel_dir: Path, competition_data_dir: Path, dataset_dir: Path | None,
               timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
               work_dir: Path | None = None, stop: threading.Event | None = None) -> KernelResult:
    """Run the kernel's code_file offline with Kaggle's layout and caps, then check its submission.csv.

    `dataset_dir` is mounted as the kernel's first dataset source (None: a kernel without one); setting `stop`
    kills the run (status cancelled), for a server shutting down.
    """
    kernel_dir, data_dir = Path(kernel_dir), Path(competition_data_dir)
    meta = read_metadata(kernel_dir)
    comps = meta.get("competition_sources") or []
    if not comps:
        raise KitError(f"{kernel_dir / 'kernel-metadata.json'}: no competition_sources; not a competition kernel")
    comp = competition_for(comps[0])
    if not data_dir.is_dir():
        raise KitError(f"{data_dir}: no such folder (the competition's files)")
    datasets: dict[str, Path] = {}
    if dataset_dir is not None:
        if not Path(dataset_dir).is_dir():
            raise KitError(f"{dataset_dir}: no such folder (the kernel's dataset)")
        datasets[((meta.get("dataset_sources") or ["dataset"])[0]).split("/")[-1]] = Path(dataset_dir)
    if timeout_s <= 0 or memory_mb <= 0:
        raise KitError(f"timeout ({timeout_s} s) and memory cap ({memory_mb} MB) must be positive")
    prefix = network_isolation_command()
    work_dir = (Path(work_dir) if work_dir is not None else kernel_dir.parent / "kernel-run").resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    paths = layout(work_dir, data_dir, datasets, comp.slug)
    if paths["target"].exists():
        shutil.rmtree(paths["target"])
    # a notebook on Kaggle has none of the user's credentials: no KAGGLE_* variables, a HOME of its own (no
    # ~/.kaggle), no proxy settings
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KIT_", "PYTHON", "PIP_", "KAGGLE_")) and not k.lower().endswith("_proxy")}
    home = work_dir / "kaggle" / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(KIT_INPUT=str(paths["input"]), KIT_WORKING=str(paths["working"]), HOME=str(home),
               KIT_TARGET=str(paths["target"]), PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1", PYTHONUNBUFFERED="1")
    if "models" in paths:
        env["KIT_MODELS"] = str(paths["models"])
    script = (kernel_dir / meta["code_file"]).resolve()
    log_path = work_dir / LOG_FILE
    start = time.monotonic()
    code: int | None = None
    cancelled = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*prefix, sys.executable, str(script)], cwd=paths["working"], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=lambda: _limit_memory(memory_mb))
        try:
            deadline = start + timeout_s
            while code is None and time.monotonic() < deadline and not cancelled:
                try:
                    code = proc.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    cancelled = stop is not None and stop.is_set()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: pip and any child left behind
            except ProcessLookupError:
                pass
            proc.wait()
    seconds = time.monotonic() - start
    if cancelled:
        return KernelResult(CANCELLED, seconds, log_path, None, "cancelled (the server stopped)")
    if code is None:
        return KernelResult(TIMEOUT, seconds, log_path, None, f"killed after the {timeout_s:g} s runtime cap")
    if code != 0:
        return KernelResult(ERROR, seconds, log_path, None, f"exit {code}: {_last_line(log_path)}")
    sub = paths["working"] / SUBMISSION
    if not sub.is_file():
        return KernelResult(NO_SUBMISSION, seconds, log_path, None, f"the kernel wrote no {SUBMISSION}")
    from kit.submission import validate_submission

    try:
        try:
            classes = comp.read_classes(data_dir)
        except KitError:
            classes = None
        validate_submission(comp, sub, data_dir / comp.sample_file, classes)
    except KitError as e:
        return KernelResult(INVALID, seconds, log_path, sub, str(e))
    return KernelResult(COMPLETE, seconds, log_path, sub, None)

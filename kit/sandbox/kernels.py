"""The sandbox's Kaggle kernels (notebooks): pushed versions kept under `<root>/.kernels/`, each run locally with
no network by `kit.kernel_runner` (its own network namespace, Kaggle's /kaggle/input + /kaggle/working layout,
runtime and memory caps), one run at a time on a worker thread, as Kaggle queues sessions.

    kernels.KernelsApiService/SaveKernel               ApiSaveKernelRequest -> ApiSaveKernelResponse(version_number)
    kernels.KernelsApiService/GetKernel                -> ApiGetKernelResponse (metadata incl. current_version_number)
    kernels.KernelsApiService/GetKernelSessionStatus   -> QUEUED | RUNNING | COMPLETE | ERROR (+ failure_message)
    kernels.KernelsApiService/ListKernelSessionOutput  -> files (GET /_blobs/kernels/<owner>/<slug>/v<N>/<name>), log

A version's competition data is a hard-linked copy of the competition's public files (the solution is not in
the kernel's input); its dataset is the version of each dataset source current when it was pushed. Reruns for
code submissions (`rerun`) use the same folders and the competition's own caps.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kagglesdk.kernels.types.kernels_api_service import (
    ApiGetKernelRequest,
    ApiGetKernelResponse,
    ApiGetKernelSessionStatusRequest,
    ApiGetKernelSessionStatusResponse,
    ApiKernelMetadata,
    ApiKernelSessionOutputFile,
    ApiListKernelSessionOutputRequest,
    ApiListKernelSessionOutputResponse,
    ApiSaveKernelRequest,
    ApiSaveKernelResponse,
)
from kagglesdk.kernels.types.kernels_enums import KernelWorkerStatus

from kit import kernel_runner as kr
from kit.errors import KitError
from kit.io import atomic_write_json
from kit.sandbox.data import CompetitionMeta
from kit.sandbox.datasets import Datasets, owner_dir
from kit.sandbox.errors import HttpError

log = logging.getLogger(__name__)

KERNELS_SERVICE = "kernels.KernelsApiService"
INFO_FILE = "kernel.json"
SESSION_FILE = "session.json"
RUN_DIR = "run"
# what Kaggle says when a notebook run fails (its own wording), followed here by the reason from the log
FAILURES = {kr.TIMEOUT: "Notebook Timeout", kr.ERROR: "Notebook Threw Exception", kr.CANCELLED: "Notebook Cancelled"}


@dataclass
class Served:
    """What the kernels need from the sandbox: a competition's folder, metadata and public files."""

    comp_dir: Callable[[str], Path]
    meta: Callable[[str], CompetitionMeta]
    public_files: Callable[[str], list[Path]]


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _script(text: str, kernel_type: str) -> str:
    """The code to run: a script as is; a notebook's code cells joined (magics are not supported)."""
    if kernel_type != "notebook":
        return text
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        raise HttpError(400, "Notebook text is not valid .ipynb JSON") from None
    parts = []
    for c in cells:
        if c.get("cell_type") == "code":
            src = c.get("source", "")
            parts.append("".join(src) if isinstance(src, list) else str(src))
    return "\n\n".join(parts) + "\n"


class Kernels:
    """Kernels of the user `username` on disk under `root`, run by one worker thread."""

    def __init__(self, root: Path, username: str, datasets: Datasets, served: Served):
        self.root = Path(root)
        self.username = username
        self.datasets = datasets
        self.served = served
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.jobs: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None

    # -- lifecycle of the worker
    def start(self) -> None:
        """Start the worker thread that runs queued sessions in order."""
        self._worker = threading.Thread(target=self._work, name="kaggle-sandbox-kernels", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Kill a running session and stop the worker."""
        self.stop_event.set()
        self.jobs.put(None)
        if self._worker is not None:
            self._worker.join(timeout=10)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None or self.stop_event.is_set():
                return
            job()

    # -- storage
    def _dir(self, owner: str, slug: str) -> Path:
        return owner_dir(self.root, owner, slug, "kernel")

    def info(self, owner: str, slug: str) -> dict:
        """The kernel's stored metadata and versions, else HTTP 404."""
        path = self._dir(owner, slug) / INFO_FILE
        if not path.is_file():
            raise HttpError(404, f"Kernel {owner}/{slug} not found")
        return json.loads(path.read_text())

    def version_dir(self, owner: str, slug: str, label: str | None = None) -> Path:
        """`<owner>/<slug>/v<N>` for version label `vN` / `N` (newest when None), else HTTP 404."""
        info = self.info(owner, slug)
        n = info["versions"][-1] if not label else label.lstrip("v")
        path = self._dir(owner, slug) / f"v{n}"
        if not str(n).isdigit() or not path.is_dir():
            raise HttpError(404, f"Kernel {owner}/{slug} has no version {label}")
        return path

    @staticmethod
    def version_meta(vdir: Path) -> dict:
        """A version's kernel-metadata.json as pushed (sources, internet, pinned dataset versions)."""
        return json.loads((vdir / "kernel-metadata.json").read_text())

    def session(self, vdir: Path, run: str = RUN_DIR) -> dict:
        """A run's session record (status, failure, seconds)."""
        path = vdir / run / SESSION_FILE
        return json.loads(path.read_text()) if path.is_file() else {"status": "QUEUED", "failure": ""}

    def _set_session(self, vdir: Path, run: str, **fields) -> None:
        atomic_write_json(vdir / run / SESSION_FILE, {**self.session(vdir, run), **fields})

    # -- running
    def _execute(self, vdir: Path, run: str, on_done: Callable[[kr.KernelResult | None, str], None] | None) -> None:
        """Run version `vdir` into `vdir/run`: competition files linked in, its dataset mounted, caps applied."""
        meta = self.version_meta(vdir)
        work = vdir / run
        self._set_session(vdir, run, status="RUNNING")
        result: kr.KernelResult | None = None
        try:
            comps = meta.get("competition_sources") or []
            if not comps:
                raise KitError("the sandbox runs competition notebooks only (no competition_sources)")
            cm = self.served.meta(comps[0])
            data = work / "competition"
            if data.exists():
                shutil.rmtree(data)
            src = self.served.comp_dir(comps[0])
            for p in self.served.public_files(comps[0]):
                _link_or_copy(p, data / p.relative_to(src))
            pinned = meta.get("pinned_datasets") or {}
            dataset = None
            if pinned:
                ref, number = next(iter(pinned.items()))
                dataset = self.datasets.folder(ref, number)
            runtime = meta.get("session_timeout_seconds") or cm.kernel_runtime_s
            result = kr.run_kernel(vdir, data, dataset, min(float(runtime), cm.kernel_runtime_s),
                                   cm.kernel_memory_mb, work, stop=self.stop_event)
        except Exception as e:  # the worker's boundary: any failure ends this run as ERROR, never the worker
            if not isinstance(e, (KitError, HttpError)):
                log.exception("sandbox: running %s failed", vdir)
            (work / kr.LOG_FILE).write_text(f"sandbox: {e}\n")
            self._set_session(vdir, run, status="ERROR", failure=f"Notebook Threw Exception: {e}")
            if on_done is not None:
                on_done(None, f"Notebook Threw Exception: {e}")
            return
        # a notebook that ran to the end is COMPLETE, as on Kaggle, even when it wrote no (valid) submission.csv:
        # that is judged when a version is submitted
        failure = f"{FAILURES[result.status]}: {result.error}" if result.status in FAILURES else ""
        status = "ERROR" if result.status in FAILURES else "COMPLETE"
        self._set_session(vdir, run, status=status, failure=failure, seconds=round(result.seconds, 2),
                          outcome=result.status, reason=result.error or "")
        if on_done is not None:
            on_done(result, failure)

    def rerun(self, owner: str, slug: str, version: int, run: str,
              on_done: Callable[[kr.KernelResult | None, str], None]) -> None:
        """Queue another run of a version into `v<N>/<run>` (a code submission's scoring run)."""
        vdir = self.version_dir(owner, slug, str(version))
        self._set_session(vdir, run, status="QUEUED", failure="")
        self.jobs.put(lambda: self._execute(vdir, run, on_done))

    # -- API methods
    def api_SaveKernel(self, body: dict, base: str) -> ApiSaveKernelResponse:  # noqa: N802
        req = ApiSaveKernelRequest.from_dict(body)
        owner, _, slug = (req.slug or "").partition("/")
        if owner != self.username:
            raise HttpError(403, f"Permission denied: you ({self.username}) cannot push kernels of {owner} "
                                 f"({req.slug})")
        d = self._dir(owner, slug)
        resp = ApiSaveKernelResponse()
        bad_comps = []
        for c in req.competition_data_sources or []:
            try:
                self.served.meta(c)
            except HttpError:
                bad_comps.append(c)
        pinned: dict[str, int] = {}
        bad_ds = []
        for ref in req.dataset_data_sources or []:
            try:
                o, _, s = ref.partition("/")
                pinned[ref] = self.datasets.info(o, s)["versions"][-1]["number"]
            except HttpError:
                bad_ds.append(ref)
        if bad_comps or bad_ds:
            resp.invalid_competition_sources, resp.invalid_dataset_sources = bad_comps, bad_ds
            resp.error = "Invalid data sources: " + ", ".join(bad_comps + bad_ds)
            return resp
        if req.language not in ("python", None, ""):
            resp.error = f"The sandbox runs python kernels only, not {req.language}"
            return resp
        with self.lock:
            info = self.info(owner, slug) if (d / INFO_FILE).is_file() else {"title": req.new_title or slug,
                                                                             "versions": []}
            number = (info["versions"][-1] + 1) if info["versions"] else 1
            vdir = d / f"v{number}"
            vdir.mkdir(parents=True)
            code_file = "notebook.py" if req.kernel_type == "notebook" else "script.py"
            (vdir / code_file).write_text(_script(req.text or "", req.kernel_type or "script"))
            meta = {"id": req.slug, "title": req.new_title or info["title"], "code_file": code_file,
                    "language": "python", "kernel_type": req.kernel_type or "script",
                    "is_private": req.is_private, "enable_gpu": req.enable_gpu, "enable_internet": req.enable_internet,
                    "competition_sources": list(req.competition_data_sources or []),
                    "dataset_sources": list(req.dataset_data_sources or []), "pinned_datasets": pinned,
                    "session_timeout_seconds": req.session_timeout_seconds or None,
                    "pushed": datetime.now(UTC).replace(tzinfo=None).isoformat()}
            (vdir / "kernel-metadata.json").write_text(json.dumps(meta, indent=1))
            info["versions"].append(number)
            info["title"] = meta["title"]
            atomic_write_json(d / INFO_FILE, info)
        self._set_session(vdir, RUN_DIR, status="QUEUED", failure="")
        self.jobs.put(lambda: self._execute(vdir, RUN_DIR, None))
        resp.ref, resp.url = f"/code/{req.slug}", f"{base}/code/{req.slug}"
        resp.version_number = number
        return resp

    def api_GetKernel(self, body: dict, base: str) -> ApiGetKernelResponse:  # noqa: N802
        req = ApiGetKernelRequest.from_dict(body)
        vdir = self.version_dir(req.user_name, req.kernel_slug, req.version_label or None)
        meta = self.version_meta(vdir)
        md = ApiKernelMetadata()
        md.ref, md.slug, md.author = f"{req.user_name}/{req.kernel_slug}", req.kernel_slug, req.user_name
        md.title, md.language, md.kernel_type = meta["title"], meta["language"], meta["kernel_type"]
        md.is_private, md.enable_gpu = bool(meta["is_private"]), bool(meta["enable_gpu"])
        md.enable_internet = bool(meta["enable_internet"])
        md.dataset_data_sources = meta["dataset_sources"]
        md.competition_data_sources = meta["competition_sources"]
        md.current_version_number = self.info(req.user_name, req.kernel_slug)["versions"][-1]
        resp = ApiGetKernelResponse()
        resp.metadata = md
        return resp

    def api_GetKernelSessionStatus(self, body: dict, base: str) -> ApiGetKernelSessionStatusResponse:  # noqa: N802
        req = ApiGetKernelSessionStatusRequest.from_dict(body)
        s = self.session(self.version_dir(req.user_name, req.kernel_slug, req.version_label or None))
        resp = ApiGetKernelSessionStatusResponse()
        resp.status = KernelWorkerStatus[s["status"]]
        resp.failure_message = s.get("failure") or ""
        return resp

    def api_ListKernelSessionOutput(self, body: dict, base: str) -> ApiListKernelSessionOutputResponse:  # noqa: N802
        req = ApiListKernelSessionOutputRequest.from_dict(body)
        vdir = self.version_dir(req.user_name, req.kernel_slug, req.version_label or None)
        resp = ApiListKernelSessionOutputResponse()
        if self.session(vdir)["status"] not in ("COMPLETE", "ERROR"):
            return resp  # Kaggle lists the output once the session has ended
        working = vdir / RUN_DIR / "kaggle" / "working"
        files = []
        for p in sorted(q for q in working.rglob("*") if q.is_file()) if working.is_dir() else []:
            f = ApiKernelSessionOutputFile()
            f.file_name = p.relative_to(working).as_posix()
            f.url = f"{base}/_blobs/kernels/{req.user_name}/{req.kernel_slug}/{vdir.name}/{f.file_name}"
            files.append(f)
        resp.files = files
        log = vdir / RUN_DIR / kr.LOG_FILE
        resp.log = log.read_text(errors="replace") if log.is_file() else ""
        return resp

    def output_file(self, rel: str) -> Path:
        """The file behind GET /_blobs/kernels/<owner>/<slug>/v<N>/<name>, else HTTP 404."""
        parts = rel.split("/", 3)
        if len(parts) != 4 or ".." in parts[3].split("/"):
            raise HttpError(404, f"Not found: {rel}")
        owner, slug, label, name = parts
        working = self.version_dir(owner, slug, label) / RUN_DIR / "kaggle" / "working"
        path = working / name
        if not path.is_file():
            raise HttpError(404, f"Output file {name} not found")
        return path

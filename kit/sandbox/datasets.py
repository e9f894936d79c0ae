"""The sandbox's Kaggle datasets: created and versioned from uploaded blobs, kept under `<root>/.datasets/`.

    datasets.DatasetApiService/GetDatasetStatus      -> ApiGetDatasetStatusResponse (READY once written)
    datasets.DatasetApiService/GetDataset            -> ApiDataset (description, current_version_number, versions)
    datasets.DatasetApiService/CreateDataset         ApiCreateDatasetRequest(files: blob tokens) -> ...Response
    datasets.DatasetApiService/CreateDatasetVersion  ApiCreateDatasetVersionRequest -> ApiCreateDatasetResponse

Each version is a folder `<owner>/<slug>/v<N>/`; an uploaded `.zip` (the client's `--dir-mode zip` for a
subfolder) is extracted into a folder of the archive's name, as Kaggle does with archives in a dataset. Only the
authenticated user may create or version datasets under their name (HTTP 403 otherwise, as on Kaggle).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from kagglesdk.datasets.types.dataset_api_service import (
    ApiCreateDatasetRequest,
    ApiCreateDatasetResponse,
    ApiCreateDatasetVersionRequest,
    ApiDataset,
    ApiDatasetFile,
    ApiDatasetVersion,
    ApiGetDatasetRequest,
    ApiGetDatasetStatusRequest,
    ApiGetDatasetStatusResponse,
)
from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus

from kit.io import atomic_write_json
from kit.sandbox.errors import HttpError

DATASET_SERVICE = "datasets.DatasetApiService"
INFO_FILE = "dataset.json"


def _safe_name(name: str) -> str:
    """A plain relative file name (no folders climbing out, no absolute path), else HTTP 400."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or name.startswith("."):
        raise HttpError(400, f"Invalid file name {name!r}")
    return name


def _extract(data_path: Path, into: Path) -> None:
    """Extract a zip into `into`, refusing members that would land outside it."""
    with zipfile.ZipFile(data_path) as zf:
        for member in zf.namelist():
            p = PurePosixPath(member)
            if p.is_absolute() or ".." in p.parts:
                raise HttpError(400, f"Archive {data_path.name} has an unsafe member {member!r}")
        zf.extractall(into)


def owner_dir(root: Path, owner: str, slug: str, what: str) -> Path:
    """`root/<owner>/<slug>` of a dataset or kernel reference, HTTP 400 for a part that could leave `root`."""
    for part in (owner, slug):
        if not part or "/" in part or part.startswith("."):
            raise HttpError(400, f"Invalid {what} reference {owner}/{slug}")
    return Path(root) / owner / slug


class Datasets:
    """Datasets on disk under `root`, served to the owner `username`; blobs come from `take_blob(token)`."""

    def __init__(self, root: Path, username: str, take_blob: Callable[[str], tuple[str, bytes]]):
        self.root = Path(root)
        self.username = username
        self.take_blob = take_blob

    # -- storage
    def _dir(self, owner: str, slug: str) -> Path:
        return owner_dir(self.root, owner, slug, "dataset")

    def info(self, owner: str, slug: str) -> dict:
        """The dataset's stored metadata, else HTTP 404."""
        path = self._dir(owner, slug) / INFO_FILE
        if not path.is_file():
            raise HttpError(404, f"Dataset {owner}/{slug} not found")
        return json.loads(path.read_text())

    def folder(self, ref: str, version: int | None = None) -> Path:
        """The files of dataset `owner/slug` (its newest version unless `version`), else HTTP 404."""
        owner, _, slug = ref.partition("/")
        info = self.info(owner, slug)
        n = version or info["versions"][-1]["number"]
        path = self._dir(owner, slug) / f"v{n}"
        if not path.is_dir():
            raise HttpError(404, f"Dataset {ref} has no version {n}")
        return path

    def _owned(self, owner: str, slug: str) -> Path:
        if owner != self.username:
            raise HttpError(403, f"Permission denied: you ({self.username}) cannot create or change datasets of "
                                 f"{owner} ({owner}/{slug})")
        return self._dir(owner, slug)

    def _write_version(self, d: Path, number: int, tokens: list[str]) -> int:
        """Write version `number` from the uploaded blobs (built beside, renamed into place); its byte count."""
        d.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{number}.", dir=d))
        total = 0
        try:
            for token in tokens:
                name, data = self.take_blob(token)
                name = _safe_name(name)
                total += len(data)
                path = tmp / name
                path.write_bytes(data)
                if name.lower().endswith(".zip"):
                    _extract(path, tmp / name[:-4])
                    path.unlink()
            os.replace(tmp, d / f"v{number}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return total

    @staticmethod
    def _version(number: int, notes: str, total: int) -> dict:
        return {"number": number, "notes": notes, "created": datetime.now(UTC).replace(tzinfo=None).isoformat(),
                "bytes": total}

    # -- API methods
    def api_GetDatasetStatus(self, body: dict, base: str) -> ApiGetDatasetStatusResponse:  # noqa: N802
        req = ApiGetDatasetStatusRequest.from_dict(body)
        self.info(req.owner_slug, req.dataset_slug)
        resp = ApiGetDatasetStatusResponse()
        resp.status = DatabundleVersionStatus.READY
        return resp

    def api_GetDataset(self, body: dict, base: str) -> ApiDataset:  # noqa: N802
        req = ApiGetDatasetRequest.from_dict(body)
        info = self.info(req.owner_slug, req.dataset_slug)
        ref = f"{req.owner_slug}/{req.dataset_slug}"
        ds = ApiDataset()
        ds.ref, ds.title, ds.subtitle = ref, info["title"], info.get("subtitle") or ""
        ds.description, ds.license_name = info.get("description") or "", info.get("license") or ""
        ds.owner_ref = ds.owner_name = ds.creator_name = req.owner_slug
        ds.is_private = bool(info.get("is_private", True))
        ds.url = f"{base}/datasets/{ref}"
        ds.current_version_number = info["versions"][-1]["number"]
        versions = []
        for v in reversed(info["versions"]):
            av = ApiDatasetVersion()
            av.version_number, av.version_notes, av.status = v["number"], v["notes"], "ready"
            av.creation_date = datetime.fromisoformat(v["created"])
            versions.append(av)
        ds.versions = versions
        folder = self.folder(ref)
        files = []
        for p in sorted(q for q in folder.rglob("*") if q.is_file()):
            f = ApiDatasetFile()
            f.name = f.ref = p.relative_to(folder).as_posix()
            f.dataset_ref, f.total_bytes = ref, p.stat().st_size
            files.append(f)
        ds.files = files
        ds.total_bytes = sum(f.total_bytes for f in files)
        return ds

    def api_CreateDataset(self, body: dict, base: str) -> ApiCreateDatasetResponse:  # noqa: N802
        req = ApiCreateDatasetRequest.from_dict(body)
        d = self._owned(req.owner_slug, req.slug)
        resp = ApiCreateDatasetResponse()
        if (d / INFO_FILE).is_file():
            resp.status, resp.error = "error", f'The requested slug "{req.slug}" is already in use by a dataset.'
            return resp
        total = self._write_version(d, 1, [f.token for f in req.files or []])
        atomic_write_json(d / INFO_FILE, {"title": req.title, "subtitle": req.subtitle, "description": req.description,
                            "license": req.license_name, "is_private": req.is_private,
                            "versions": [self._version(1, "Initial release", total)]})
        ref = f"{req.owner_slug}/{req.slug}"
        resp.ref, resp.url, resp.status = ref, f"{base}/datasets/{ref}", "ok"
        return resp

    def api_CreateDatasetVersion(self, body: dict, base: str) -> ApiCreateDatasetResponse:  # noqa: N802
        req = ApiCreateDatasetVersionRequest.from_dict(body)
        d = self._owned(req.owner_slug, req.dataset_slug)
        info = self.info(req.owner_slug, req.dataset_slug)
        number = info["versions"][-1]["number"] + 1
        total = self._write_version(d, number, [f.token for f in req.body.files or []])
        if req.body.description:
            info["description"] = req.body.description
        if req.body.subtitle:
            info["subtitle"] = req.body.subtitle
        info["versions"].append(self._version(number, req.body.version_notes or "", total))
        atomic_write_json(d / INFO_FILE, info)
        resp = ApiCreateDatasetResponse()
        ref = f"{req.owner_slug}/{req.dataset_slug}"
        resp.ref, resp.url, resp.status = ref, f"{base}/datasets/{ref}", "ok"
        return resp

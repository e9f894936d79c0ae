"""Kaggle datasets for code competitions: a dataset folder (with its `dataset-metadata.json`) created or versioned
through the official client, and not uploaded again when Kaggle already holds the same content.

How "same content" is known: the folder's `SHA256SUMS` lists every file's SHA-256 (`sha256sums`); the hash of that
list is written into the dataset's description (`kit-content-sha256: <hash>`, by `kit package`). Before uploading,
the remote dataset's description is read (GetDataset): the same tag means the same files, so nothing is sent. The
description rather than a local record of what was pushed, so that another machine (or a re-packaged identical run)
skips too. Subfolders (the fold models) go up as zip archives (the client's dir_mode="zip"), which Kaggle extracts.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.io import read_json_object
from kit.kaggle.client import Kaggle, polls
from kit.kaggle.errors import KaggleError, NotFound, StillPending

SUMS_FILE = "SHA256SUMS"
METADATA_FILE = "dataset-metadata.json"
CONTENT_TAG = "kit-content-sha256:"


def sha256sums(folder: Path) -> str:
    """`sha256sum`-format lines of every file under `folder` (sorted; SHA256SUMS and dataset-metadata.json left
    out: the first is this list, the second is metadata, not an uploaded file)."""
    lines = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in (SUMS_FILE, METADATA_FILE):
            continue
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {rel}\n")
    return "".join(lines)


def content_hash(sums: str) -> str:
    """The hash of a SHA256SUMS text: one value for the whole content."""
    return hashlib.sha256(sums.encode()).hexdigest()


def content_tag(sums: str) -> str:
    """The line `kit package` puts into the dataset's description."""
    return f"{CONTENT_TAG} {content_hash(sums)}"


def tagged_hash(description: str | None) -> str | None:
    """The content hash a dataset description carries, if any."""
    m = re.search(re.escape(CONTENT_TAG) + r"\s*([0-9a-f]{64})", description or "")
    return m.group(1) if m else None


@dataclass
class Published:
    """A dataset on Kaggle holding the folder's content: its ref, version and whether this call uploaded it."""

    ref: str
    version: int | None
    uploaded: bool
    content: str


def read_metadata(folder: Path) -> dict[str, Any]:
    """The folder's dataset-metadata.json, checked to name `owner/slug`."""
    path = Path(folder) / METADATA_FILE
    meta = read_json_object(path, "`kit package` writes the dataset folder")
    ref = meta.get("id")
    if not isinstance(ref, str) or not re.fullmatch(r"[A-Za-z0-9][\w-]*/[a-z0-9][a-z0-9-]{4,49}", ref):
        raise KitError(f"{path}: \"id\" must be OWNER/dataset-slug, got {ref!r}")
    return meta


def check_content(folder: Path) -> str:
    """The folder's content hash, checked: SHA256SUMS matches the files and the description carries its hash."""
    folder = Path(folder)
    sums_path = folder / SUMS_FILE
    if not sums_path.is_file():
        raise KitError(f"{sums_path}: not found; re-run `kit package`")
    sums = sha256sums(folder)
    if sums != sums_path.read_text():
        raise KitError(f"{folder}: its files changed since it was packaged (SHA256SUMS differs); re-run `kit package`")
    content = content_hash(sums)
    if tagged_hash(read_metadata(folder).get("description")) != content:
        raise KitError(f"{folder / METADATA_FILE}: the description lacks this content's `{CONTENT_TAG}` line; "
                       "re-run `kit package`")
    return content


def remote_dataset(kg: Kaggle, ref: str) -> Any | None:
    """Kaggle's view of dataset `ref` (an ApiDataset), or None when it does not exist (yet)."""
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

    owner, _, slug = ref.partition("/")

    def get() -> Any:
        req = ApiGetDatasetRequest()
        req.owner_slug, req.dataset_slug = owner, slug
        with kg.sdk() as kaggle:
            return kaggle.datasets.dataset_api_client.get_dataset(req)

    try:
        return kg.call(f"reading dataset {ref}", get, refused=_refused(ref))
    except NotFound:
        return None


def _refused(ref: str) -> dict[int, str]:
    owner = ref.partition("/")[0]
    return {403: f"Kaggle refused access to dataset {ref}: the slug belongs to another user, or your credentials are "
                 f"not {owner}'s; package with `--owner YOUR_USERNAME` or rename the run",
            404: f"dataset {ref} not found on Kaggle"}


def wait_ready(kg: Kaggle, ref: str, timeout: float) -> None:
    """Poll until Kaggle has processed the dataset (status ready); StillPending after `timeout` seconds."""
    status = None
    for _ in polls(timeout):
        status = kg.call(f"checking dataset {ref}", kg.api.dataset_status, ref, refused=_refused(ref))
        if status == "ready":
            return
        if status in ("failed", "deleted"):
            raise KaggleError(f"Kaggle could not process dataset {ref} (status {status}); check it on kaggle.com")
    raise StillPending(f"dataset {ref} still processing after {timeout:g}s (status {status}); try again later")


def publish(kg: Kaggle, folder: Path, notes: str, timeout: float = 600.0, quiet: bool = True) -> Published:
    """Create the dataset, or a new version of it, from `folder`, unless Kaggle already holds this content."""
    folder = Path(folder)
    content = check_content(folder)
    ref = read_metadata(folder)["id"]
    remote = remote_dataset(kg, ref)
    if remote is not None and tagged_hash(remote.description) == content:
        return Published(ref, remote.current_version_number, False, content)

    def landed() -> Published | None:  # before a retry: did the failed attempt create it after all?
        now = remote_dataset(kg, ref)
        if now is not None and tagged_hash(now.description) == content:
            return Published(ref, now.current_version_number, True, content)
        return None

    def upload() -> Published:
        if remote is None:
            resp = kg.api.dataset_create_new(str(folder), public=False, quiet=quiet, dir_mode="zip")
        else:
            resp = kg.api.dataset_create_version(str(folder), notes, quiet=quiet, dir_mode="zip")
        if getattr(resp, "error", None):
            # the client retries a create whose answer was lost; its second try then finds the slug "in use" by
            # the dataset the first one made: that is success when it holds this content
            found = landed()
            if found is not None:
                return found
            raise KaggleError(f"Kaggle refused dataset {ref}: {resp.error}")
        return Published(ref, None, True, content)

    action = "creating" if remote is None else "versioning"
    print(f"uploading dataset {ref} ({action}) ...", file=sys.stderr, flush=True)
    kg.call(f"{action} dataset {ref}", upload, before_retry=landed, refused=_refused(ref))
    wait_ready(kg, ref, timeout)
    now = remote_dataset(kg, ref)
    return Published(ref, now.current_version_number if now is not None else None, True, content)

"""Kaggle kernels (notebooks) through the official client: push a kernel folder, read a version's status and
metadata, wait for it with backoff, fetch its output files and log.

A kernel is named `owner/slug` or `owner/slug/N` (version N). Status and metadata are read through kagglesdk
directly: KaggleApi turns a 403 there into a ValueError about benchmark slugs, which would hide the real reason.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.io import read_json_object
from kit.kaggle.client import Kaggle, polls
from kit.kaggle.errors import KaggleError, StillPending

FINISHED = ("complete", "error", "cancel_acknowledged")


class KernelFailed(KaggleError):
    """The kernel ran and failed (error, timeout, cancelled)."""

    exit_code = 1


@dataclass(frozen=True)
class KernelRef:
    """`owner/slug[/version]` of a Kaggle kernel."""

    owner: str
    slug: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str, version: int | None = None) -> KernelRef:
        """From `owner/slug` or `owner/slug/N` (an explicit `version` wins)."""
        m = re.fullmatch(r"([A-Za-z0-9][\w-]*)/([a-z0-9][a-z0-9-]*)(?:/v?(\d+))?", text or "")
        if m is None:
            raise KitError(f"kernel {text!r}: expected USER/SLUG or USER/SLUG/VERSION (e.g. me/titanic-inference/3)")
        return cls(m.group(1), m.group(2), version if version is not None else
                   (int(m.group(3)) if m.group(3) else None))

    @property
    def name(self) -> str:
        """`owner/slug` (no version)."""
        return f"{self.owner}/{self.slug}"

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}/{self.version}"

    def at(self, version: int) -> KernelRef:
        """The same kernel at `version`."""
        return KernelRef(self.owner, self.slug, version)

    def request(self, cls: type) -> Any:
        """A kagglesdk kernel request (user_name, kernel_slug, version_label `vN` when versioned) of type `cls`."""
        req = cls()
        req.user_name, req.kernel_slug = self.owner, self.slug
        if self.version is not None:
            req.version_label = f"v{self.version}"  # the API wants `vN`; a bare number is a 404
        return req


@dataclass
class Pushed:
    """A kernel version Kaggle accepted: its ref (with version) and URL."""

    ref: KernelRef
    url: str


@dataclass
class Status:
    """A kernel version's run: Kaggle's status (queued, running, complete, error...) and failure message."""

    ref: KernelRef
    status: str
    failure: str

    @property
    def finished(self) -> bool:
        """Whether the run has ended."""
        return self.status in FINISHED


def read_metadata(kernel_dir: Path) -> dict[str, Any]:
    """The kernel's kernel-metadata.json, checked to name a code_file that exists."""
    path = Path(kernel_dir) / "kernel-metadata.json"
    meta = read_json_object(path, "give a package folder made by `kit package`")
    code = meta.get("code_file")
    if not code or not (Path(kernel_dir) / code).is_file():
        raise KitError(f"{path}: code_file {code!r} is not a file in {kernel_dir}")
    return meta


def _refused(ref: KernelRef) -> dict[int, str]:
    return {403: f"Kaggle refused access to kernel {ref.name}: it belongs to another user, or your credentials are "
                 f"not {ref.owner}'s",
            404: f"kernel {ref} not found on Kaggle (check USER/SLUG and the version)"}


def push(kg: Kaggle, kernel_dir: Path, timeout_s: int | None = None) -> Pushed:
    """Push `kernel_dir` (kernel-metadata.json + code) as a new version; Kaggle then runs it."""
    meta = read_metadata(kernel_dir)
    ref = KernelRef.parse(str(meta.get("id", "")))

    def save() -> Any:
        resp = kg.api.kernels_push(str(kernel_dir), timeout=str(int(timeout_s)) if timeout_s else None)
        if resp.error:
            bad = [*(resp.invalid_dataset_sources or []), *(resp.invalid_competition_sources or [])]
            why = (f" (unknown sources: {', '.join(bad)}; `kit kernel push --package` creates the dataset first)"
                   if bad else "")
            raise KaggleError(f"Kaggle refused kernel {ref.name}: {resp.error}{why}")
        return resp

    # not retried: a push that reached Kaggle before the connection failed made a version; pushing again would
    # make (and run) a second one
    try:
        resp = kg.call(f"pushing kernel {ref.name}", save, retry=False, refused=_refused(ref))
    except KaggleError as e:
        if not e.retriable:
            raise
        raise type(e)(f"{e}; the push may have reached Kaggle: check `kit kernel status {ref.name}` before "
                      "pushing again") from None
    url = resp.url or f"https://www.kaggle.com/code/{ref.name}"
    return Pushed(ref.at(int(resp.version_number)), url)


def info(kg: Kaggle, ref: KernelRef) -> Any:
    """Kaggle's metadata of the kernel (at `ref.version`, else its newest): ApiKernelMetadata."""
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

    def get() -> Any:
        with kg.sdk() as kaggle:
            return kaggle.kernels.kernels_api_client.get_kernel(ref.request(ApiGetKernelRequest)).metadata

    return kg.call(f"reading kernel {ref}", get, refused=_refused(ref))


def versioned(kg: Kaggle, ref: KernelRef) -> KernelRef:
    """`ref` itself when it names a version, else the kernel at its newest version (asked of Kaggle)."""
    return ref if ref.version is not None else ref.at(int(info(kg, ref).current_version_number))


def status(kg: Kaggle, ref: KernelRef) -> Status:
    """The run status of a kernel version (its newest without a version)."""
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelSessionStatusRequest

    def get() -> Any:
        with kg.sdk() as kaggle:
            return kaggle.kernels.kernels_api_client.get_kernel_session_status(
                ref.request(ApiGetKernelSessionStatusRequest))

    resp = kg.call(f"checking kernel {ref}", get, refused=_refused(ref))
    name = getattr(resp.status, "name", str(resp.status)).lower()
    return Status(ref, name, resp.failure_message or "")


def wait(kg: Kaggle, ref: KernelRef, timeout: float, progress: bool = True) -> Status:
    """Poll (with backoff) until the version's run ends; StillPending after `timeout` seconds."""
    start, last, st = time.monotonic(), None, None
    for _ in polls(timeout):
        st = status(kg, ref)
        if st.finished:
            return st
        if progress and st.status != last:
            print(f"kernel {ref}: {st.status} ({time.monotonic() - start:.0f}s)", file=sys.stderr, flush=True)
            last = st.status
    raise StillPending(f"kernel {ref} still {st.status if st else 'unchecked'} after {timeout:g}s; check later with "
                       f"`kit kernel status {ref}`")


def output(kg: Kaggle, ref: KernelRef, dest: Path) -> list[Path]:
    """Download the version's output files and its log (`<slug>.log`) into `dest`; their paths."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files, _ = kg.call(f"fetching the output of kernel {ref}", kg.api.kernels_output, str(ref), str(dest),
                       force=True, quiet=True, refused=_refused(ref))
    return [Path(f) for f in files]

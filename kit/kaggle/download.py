"""A competition's files from Kaggle, unpacked into its data folder (the library behind `kit download`).

Nothing is downloaded when Kaggle's file list matches the last download and the unpacked files are still
there (`data/<name>/.kit-download.json` lists them with their sizes). The zip goes to a staging folder beside
the data folder and is unpacked there, then every archive inside it (zip, tar, tar.gz, 7z with py7zr; a
`.tar.7z` is piped from py7zr into tar extraction without writing the .tar), each archive deleted once
unpacked (CRCs checked while unpacking) to limit the disk used. Only complete files are moved in (one atomic
rename each), so an interrupted or failed download never leaves half-written files in data/<name>/.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import socket
import struct
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from kit import devices
from kit.errors import DataError, KitError
from kit.io import atomic_write_json
from kit.kaggle.ledger import now_iso

if TYPE_CHECKING:
    from kit.spec import Competition

MANIFEST = ".kit-download.json"


def _read_manifest(data_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((data_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def up_to_date(data_dir: Path, slug: str, remote: list[dict[str, Any]]) -> bool:
    """Whether `data_dir` holds the files of the last download and Kaggle's list has not changed since."""
    man = _read_manifest(data_dir)
    if man.get("slug") != slug or man.get("remote") != remote or not man.get("files"):
        return False
    return all((data_dir / rel).is_file() and (data_dir / rel).stat().st_size == size
               for rel, size in man["files"].items())


def _why(e: BaseException) -> str:
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _check_member(name: str, label: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or PureWindowsPath(name).drive:
        raise DataError(f"{label}: unsafe path {name!r} in the archive; refusing to unpack it")


def _unpack_zip(archive: Path, dest: Path, label: str) -> None:
    """Unpack a zip; zipfile checks each member's CRC while writing it, so a corrupt zip fails here."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for n in zf.namelist():
                _check_member(n, label)
            zf.extractall(dest)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DataError(f"{label}: not a valid zip file or corrupt ({_why(e)}); download again") from None


def _extract_tar(tf: tarfile.TarFile, dest: Path, label: str) -> None:
    """Extract members one at a time (so it works on a stream); unsafe names and links are refused."""
    try:
        for m in tf:
            _check_member(m.name, label)
            try:
                tf.extract(m, dest, filter="data")  # also refuses links leaving dest and device files
            except tarfile.FilterError as e:
                raise DataError(f"{label}: unsafe member {m.name!r} ({_why(e)}); refusing to unpack it") from None
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise DataError(f"{label}: not a valid tar archive or corrupt ({_why(e)}); download again") from None


def _unpack_tar(archive: Path, dest: Path, label: str) -> None:
    try:
        tf = tarfile.open(archive, mode="r|*")
    except tarfile.TarError as e:
        raise DataError(f"{label}: not a valid tar archive ({_why(e)}); download again") from None
    with tf:
        _extract_tar(tf, dest, label)


class _TarPipe:
    """A py7zr writer for a `.tar` member: the bytes go through a pipe into tar extraction in a thread,
    so the .tar itself never lands on disk. A reader error stops the writer (broken pipe) and is re-raised."""

    def __init__(self, path: Path, label: str):
        self.label = f"{label}: {path.name}"
        r, w = os.pipe()
        self.w = os.fdopen(w, "wb")
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, args=(r, path.parent), daemon=True)
        self.thread.start()

    def _read(self, r: int, dest: Path) -> None:
        with os.fdopen(r, "rb") as f:
            try:
                with tarfile.open(fileobj=f, mode="r|") as tf:
                    _extract_tar(tf, dest, self.label)
                while f.read(1 << 16):  # the tar's end padding: let the writer finish
                    pass
            except BaseException as e:  # noqa: B036 (reported from the writer's side)
                self.error = e

    def write(self, s: bytes | bytearray) -> int:
        try:
            self.w.write(s)
        except BrokenPipeError:  # the reader stopped early: its error is the one to report
            self.thread.join()
            raise self.error or DataError(f"{self.label}: tar extraction stopped early") from None
        return len(s)

    def close(self) -> None:
        if not self.w.closed:
            try:
                self.w.close()
            except BrokenPipeError:
                pass
        self.thread.join()

    def flush(self) -> None:
        pass

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def seekable(self) -> bool:
        return False

    def size(self) -> int:
        return 0


class _FileOut(_TarPipe):
    """A py7zr writer for any other member: its file."""

    def __init__(self, path: Path, label: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.w = open(path, "wb")  # closed through close()
        self.error = None

    def write(self, s: bytes | bytearray) -> int:
        return self.w.write(s)

    def close(self) -> None:
        self.w.close()


def _unpack_7z(archive: Path, dest: Path, label: str) -> None:
    """Unpack a 7z with py7zr, checking CRCs as it goes; `.tar` members are streamed into tar extraction."""
    import py7zr
    from py7zr.exceptions import ArchiveError
    from py7zr.io import Py7zIO, WriterFactory

    writers: list[_TarPipe] = []

    class Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            path = Path(filename)
            w = (_TarPipe if path.name.lower().endswith(".tar") else _FileOut)(path, label)
            writers.append(w)
            return w  # type: ignore[return-value]  # duck-typed Py7zIO

    try:
        with py7zr.SevenZipFile(archive, mode="r") as sz:
            for f in sz.files:
                _check_member(f.filename, label)
                if f.is_symlink or f.is_junction:
                    raise DataError(f"{label}: link {f.filename!r} in the archive; refusing to unpack it")
            try:
                sz.extractall(path=dest.resolve(), factory=Factory())
            finally:
                for w in writers:  # py7zr leaves a failed member's writer open: stop its reader thread
                    w.close()
        for w in writers:
            if w.error is not None:
                raise w.error
    except KitError:
        raise
    except py7zr.PasswordRequired:
        raise DataError(f"{label}: the 7z archive is password-protected; kit cannot unpack it") from None
    except (ArchiveError, lzma.LZMAError, EOFError, zlib.error, struct.error, ValueError, KeyError, IndexError,
            TypeError) as e:  # what py7zr raises on damaged headers or data
        raise DataError(f"{label}: not a valid 7z archive or corrupt ({_why(e)}); download again") from None


_UNPACKERS = {".zip": _unpack_zip, ".tar": _unpack_tar, ".tar.gz": _unpack_tar, ".tgz": _unpack_tar,
              ".7z": _unpack_7z}


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in _UNPACKERS if name.endswith(s)), None)


def unpack(archive: Path, out: Path, quiet: bool = False, max_depth: int = 4) -> None:
    """Unpack a zip/tar/7z into `out`, then every archive inside it, deleting each once it is unpacked
    (Kaggle nests some: Planet's `train-jpg.tar.7z`, `train_v2.csv.zip`). One-line DataError if one is bad."""

    def one(path: Path, kind: str, dest: Path, label: str) -> None:
        if not quiet:
            print(f"unpacking {label} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr, flush=True)
        _UNPACKERS[kind](path, dest, label)

    kind = _kind(archive) or (".zip" if zipfile.is_zipfile(archive) else None)
    if kind is None:
        raise DataError(f"{archive.name}: not an archive kit can unpack (zip, tar, tar.gz, 7z)")
    out.mkdir(parents=True, exist_ok=True)
    one(archive, kind, out, archive.name)
    for _ in range(max_depth):
        inner = [(p, k) for p in sorted(out.rglob("*")) if p.is_file() and (k := _kind(p))]
        if not inner:
            return
        for p, k in inner:
            one(p, k, p.parent, p.relative_to(out).as_posix())
            p.unlink()  # unpacked with its checksums verified: free its space before the next one
    left = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and _kind(p)]
    if left:
        print(f"warning: archives nested more than {max_depth} deep left packed: {', '.join(left)}", file=sys.stderr)


def _host_tag() -> str:
    """This host's name as it may appear in a staging folder's name."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def _remove_stale_staging(data_dir: Path, max_idle_s: float = 600.0) -> None:
    """Delete staging folders that a killed download left behind: its process is gone (the pid is in the name),
    or, for a name without one, idle for `max_idle_s`."""
    host = _host_tag()
    for d in data_dir.parent.glob(f".{data_dir.name}.download-*"):
        m = re.match(rf"\.{re.escape(data_dir.name)}\.download-([^-]+)-(\d+)-", d.name)
        if m and m.group(1) == host:
            stale = not devices.process_alive(int(m.group(2)))
        else:
            newest = max((p.stat().st_mtime for p in d.rglob("*") if p.is_file()), default=d.stat().st_mtime)
            stale = time.time() - newest > max_idle_s
        if stale:
            shutil.rmtree(d, ignore_errors=True)


@dataclass
class Downloaded:
    """What `download` did: the files it wrote, or nothing when `data_dir` already held Kaggle's current files."""

    slug: str
    data_dir: Path
    remote: list[dict[str, Any]]  # Kaggle's file list
    up_to_date: bool = False  # nothing downloaded
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # the competition's train/test/sample files not in it


def download(comp: Competition, data_dir: Path, force: bool = False, quiet: bool = False) -> Downloaded:
    """Download and unpack `comp`'s files into `data_dir` unless already there (or `force`)."""
    from kit.kaggle.client import Kaggle

    data_dir = Path(data_dir)
    kg = Kaggle(comp.slug)
    remote = kg.list_files(comp.slug)
    if not force and up_to_date(data_dir, comp.slug, remote):
        return Downloaded(comp.slug, data_dir, remote, up_to_date=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(data_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.download-{_host_tag()}-{os.getpid()}-",
                                    dir=data_dir.parent))
    try:
        archive = kg.download_all(comp.slug, staging / "zip", quiet=quiet)
        unpacked = staging / "files"
        if _kind(archive) or zipfile.is_zipfile(archive):
            unpack(archive, unpacked, quiet=quiet)
            archive.unlink()
        else:  # a competition with a single plain file
            unpacked.mkdir()
            os.replace(archive, unpacked / archive.name)
        files = sorted(p for p in unpacked.rglob("*") if p.is_file())
        written, sizes = [], {}
        for src in files:
            rel = src.relative_to(unpacked)
            dest = data_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            sizes[rel.as_posix()] = src.stat().st_size
            os.replace(src, dest)  # same file system: atomic per file
            written.append(dest)
        atomic_write_json(data_dir / MANIFEST, {"slug": comp.slug, "remote": remote, "files": sizes,
                                                 "downloaded_utc": now_iso()})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    missing = [f for f in (comp.train_file, comp.test_file, comp.sample_file) if not (data_dir / f).exists()]
    return Downloaded(comp.slug, data_dir, remote, files=written, bytes=sum(sizes.values()), missing=missing)

"""`kit download --comp NAME`: competition files from Kaggle, unzipped into data/<name>/ (≡ python -m kit.download).

Nothing is downloaded when Kaggle's file list matches the last download and the files are still there
(`data/<name>/.kit-download.json`). The zip goes to a staging folder beside the data folder, is checked
and unpacked there, and only complete files are moved in (one atomic rename each), so an interrupted or
failed download never leaves half-written files in data/<name>/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from kit.errors import DataError
from kit.io import atomic_write_json
from kit.ledger import now_iso

MANIFEST = ".kit-download.json"


def _read_manifest(data_dir: Path) -> dict[str, Any]:
    import json

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


def _safe_members(names: Sequence[str], archive: Path) -> None:
    for n in names:
        p = PurePosixPath(n)
        if p.is_absolute() or ".." in p.parts:
            raise DataError(f"{archive}: unsafe path {n!r} in the archive; refusing to unpack it")


def unpack(archive: Path, out: Path) -> None:
    """Unpack a zip (checked first) into `out`, then any zip/tar inside it (Kaggle nests some, e.g. Planet's)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"{archive}: corrupt member {bad}; download again")
            _safe_members(zf.namelist(), archive)
            zf.extractall(out)
    except zipfile.BadZipFile:
        raise DataError(f"{archive}: not a valid zip file; download again") from None
    for inner in sorted(out.rglob("*")):
        if not inner.is_file():
            continue
        name = inner.name.lower()
        if name.endswith(".zip"):
            with zipfile.ZipFile(inner) as zf:
                _safe_members(zf.namelist(), inner)
                zf.extractall(inner.parent)
            inner.unlink()
        elif name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(inner) as tf:
                tf.extractall(inner.parent, filter="data")
            inner.unlink()
        elif name.endswith(".7z"):
            print(f"note: {inner.name} is a 7-Zip archive; unpack it with `7z x {inner.name}`", file=sys.stderr)


def _remove_stale_staging(data_dir: Path, max_idle_s: float = 600.0) -> None:
    """Delete staging folders that a killed download left behind (idle for `max_idle_s`)."""
    for d in data_dir.parent.glob(f".{data_dir.name}.download-*"):
        newest = max((p.stat().st_mtime for p in d.rglob("*") if p.is_file()), default=d.stat().st_mtime)
        if time.time() - newest > max_idle_s:
            shutil.rmtree(d, ignore_errors=True)


def download(comp, data_dir: Path, force: bool = False, quiet: bool = False) -> list[Path]:
    """Download and unpack `comp`'s files into `data_dir` unless already there; returns the files it wrote."""
    from kit.kaggle_api import Kaggle

    data_dir = Path(data_dir)
    kg = Kaggle(comp.slug)
    remote = kg.list_files(comp.slug)
    if not force and up_to_date(data_dir, comp.slug, remote):
        print(f"{data_dir} is up to date with Kaggle's {comp.slug} ({len(remote)} file(s)); nothing downloaded")
        return []
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(data_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.download-", dir=data_dir.parent))
    try:
        archive = kg.download_all(comp.slug, staging / "zip", quiet=quiet)
        unpacked = staging / "files"
        if zipfile.is_zipfile(archive):
            unpack(archive, unpacked)
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
    total = sum(sizes.values())
    print(f"downloaded {comp.slug}: {len(written)} file(s), {total / 1e6:.1f} MB into {data_dir}")
    missing = [f for f in (comp.train_file, comp.test_file, comp.sample_file) if not (data_dir / f).exists()]
    if missing:
        print(f"warning: expected file(s) not in the download: {', '.join(missing)}", file=sys.stderr)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`kit download --comp NAME [--data-dir DIR] [--force]`."""
    from kit.cli import run

    return run(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    from kit import registry

    p = argparse.ArgumentParser(prog="kit download", description="Download a competition's files from Kaggle.")
    p.add_argument("--comp", required=True, help="competition name (a folder under competitions/)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the files go (default data/<comp>)")
    p.add_argument("--force", action="store_true", help="download even if the files are up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    comp = registry.get(a.comp)
    download(comp, a.data_dir or Path("data") / comp.name, force=a.force, quiet=a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())

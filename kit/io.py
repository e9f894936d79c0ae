"""File helpers: atomic writes, hashing, and CSV reading with one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from kit.errors import DataError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would (or keep the old file's)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> Path:
    """Write text atomically (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: object) -> Path:
    """Write JSON atomically, keys sorted so equal objects give equal bytes."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_csv(path: Path, df: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV (no index, LF line ends) atomically."""
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line with a single write + fsync, so a crash never leaves half a line behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_csv(
    path: Path,
    required: Iterable[str] = (),
    numeric: Iterable[str] = (),
    hint: str = "",
    **kwargs,
) -> pd.DataFrame:
    """Read a CSV, raising a one-line DataError naming the file, column or row that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found{'; ' + hint if hint else ''}")
    try:
        df = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot parse CSV ({str(e).splitlines()[0]})") from None
    if df.empty:
        raise DataError(f"{path}: file has a header but no rows")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    for col in numeric:
        if col not in df.columns:
            continue
        converted = pd.to_numeric(df[col], errors="coerce")
        bad = converted.isna() & df[col].notna()
        if bad.any():
            i = int(bad.to_numpy().argmax())
            # +2: one for the header line, one because people count rows from 1
            raise DataError(
                f"{path}: row {i + 2}, column {col}: non-numeric value {show(df[col].iloc[i])}"
            )
        df[col] = converted
    return df


def show(value: object) -> str:
    """repr of a cell value for error messages: `3`, `'forty'` (not `np.int64(3)`)."""
    return repr(value.item() if hasattr(value, "item") else value)

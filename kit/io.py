"""File helpers: atomic writes, hashing, and CSV reading with one-line errors."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from kit.errors import DataError, KitError, OutputError


def output_error(path: Path, e: OSError) -> OutputError:
    """A one-line OutputError for an OSError met while writing `path`, and the folder on its way that the OS names
    (`--out` is a file: `(out/comp)`); not a temp file beside it, nor the source of a copy."""
    named = getattr(e, "filename", None)
    blocking = named is not None and Path(os.path.abspath(named)) in Path(os.path.abspath(path)).parents
    where = f" ({named})" if blocking else ""
    return OutputError(f"cannot write {path}: {e.strerror or e}{where}")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OSError raised inside the block into an OutputError naming `path` (exit 5, one line)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        raise output_error(Path(path), e) from None


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder and an atomic rename; an OS error (not a folder,
    disk full, read-only...) is an OutputError naming `path`, and leaves the old file, if any, as it was."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        _write_and_rename(fd, tmp, path, data)
    return path


def _write_and_rename(fd: int, tmp: str, path: Path, data: bytes) -> None:
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


def read_json_object(path: Path, missing: str) -> dict:
    """The JSON object in `path`; a one-line KitError naming the file when it is absent (`missing`: what to do
    then), not JSON, or not an object."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise KitError(f"{path}: not found; {missing}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KitError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise KitError(f"{path}: not a JSON object")
    return obj


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
    name = path.name.lower()
    plain = not name.endswith((".zip", ".gz", ".bz2", ".xz", ".parquet"))
    if plain and not set(kwargs) & {"sep", "delimiter", "header", "names", "skiprows", "nrows", "comment"}:
        check_rows(path)  # pandas pads short rows with NaN and miscounts rows in its errors
    try:
        if name.endswith(".parquet"):
            cols = kwargs.get("usecols")
            df = pd.read_parquet(path, columns=list(cols) if cols is not None else None)
        else:
            df = pd.read_csv(path, **kwargs)  # .csv.zip and other compressed CSVs: pandas decompresses
    except ImportError as e:
        raise DataError(f"{path}: cannot read parquet ({e}); pip install pyarrow, or convert it to CSV") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot parse CSV ({str(e).splitlines()[0]})") from None
    _strip(df)
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


def _strip(df: pd.DataFrame) -> None:
    """Strip surrounding whitespace from text cells and column names (pandas already does so for numbers)."""
    df.columns = [c.lstrip("\ufeff").strip() if isinstance(c, str) else c for c in df.columns]  # and a BOM
    for col in df.columns:
        if isinstance(df[col].dtype, pd.StringDtype):  # pandas 3's text columns: every value a string or missing
            # vectorised: a Python call per cell took 4.5 s of a 500,000-row table's 6 s read
            df[col] = df[col].str.strip()
        elif pd.api.types.is_object_dtype(df[col]):  # mixed columns (and pandas 2's text)
            df[col] = df[col].map(lambda v: v.strip() if isinstance(v, str) else v)


def check_rows(path: Path) -> None:
    """Every row has the header's number of fields, or a one-line DataError naming the row (rows count from the
    header = 1, blank lines skipped, as the other errors count them) and what is wrong; a file that ends
    mid-row says it is cut off."""
    path = Path(path)
    raw = path.read_bytes()
    if not raw.strip():
        return
    ends_cleanly = raw.endswith((b"\n", b"\r"))
    if b'"' not in raw:  # no quoting: count separators per line, fast on large pixel files
        lines = [ln for ln in raw.splitlines() if ln.strip()]
        counts = [ln.count(b",") + 1 for ln in lines]
        header = lines[0].decode("utf-8", "replace").split(",")
        fields = lambda i: lines[i].decode("utf-8", "replace").split(",")  # noqa: E731
    else:
        text = raw.decode("utf-8", "replace")
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        counts = [len(r) for r in rows]
        header = rows[0]
        fields = lambda i: rows[i]  # noqa: E731
    n = counts[0]
    for i, k in enumerate(counts):
        if k == n:
            continue
        row = fields(i)
        if k < n:
            last = i == len(counts) - 1 and not ends_cleanly
            missing = ", ".join(h.strip() for h in header[k:])
            what = (f"ends after {k} of {n} fields, in column {header[k - 1].strip()}: the file is cut off "
                    "(an interrupted download or copy?)" if last else
                    f"{k} fields where the header has {n}: column(s) {missing} missing")
            raise DataError(f"{path}: row {i + 1}: {what}")
        extra = ", ".join(repr(v) for v in row[n:][:3])
        raise DataError(f"{path}: row {i + 1}: {k} fields where the header has {n}: extra value(s) {extra} after "
                        f"the last column {header[-1].strip()}")


def show(value: object) -> str:
    """repr of a cell value for error messages: `3`, `'forty'` (not `np.int64(3)`)."""
    return repr(value.item() if hasattr(value, "item") else value)

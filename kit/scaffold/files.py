"""Kaggle's competition files in a folder: which is train, test and the sample submission, and how to read them.

A CSV is sniffed before it is read: a UTF-8 byte-order mark, a `;` / tab / `|` separator, a Latin-1 encoding are
found and said (the generated competition then reads its files with the same `csv_options`); quoted fields that
span lines are read as pandas reads them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kit.errors import DataError, KitError

SUFFIXES = (".csv", ".csv.zip", ".parquet")
# file stems of each role, as Kaggle names them (lower case, before the suffix)
ROLES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training", "train_data", "train_df"),
    "test": ("test", "testing", "test_data", "test_df"),
    "sample": ("sample_submission", "samplesubmission", "sample_submissions", "gender_submission",
               "submission_format", "sample", "submission", "sample_solution"),
}


def _stem(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def missing_folder(data_dir: Path, slug: str = "SLUG") -> DataError:
    """The error for a data folder that is not there, saying how to fill it."""
    return DataError(f"{data_dir}: no such folder; put Kaggle's files there (`kaggle competitions download -c {slug} "
                     f"-p {data_dir}`, then unzip) or pass --data-dir")


def find_files(data_dir: Path, slug: str = "SLUG") -> dict[str, Path]:
    """{'train', 'test', 'sample'} -> the file of that role in `data_dir`; a one-line error when a role has no file
    or more than one (files it cannot tell apart)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise missing_folder(data_dir, slug)
    tables = sorted(p for p in data_dir.iterdir() if p.is_file() and _stem(p) is not None)
    found: dict[str, Path] = {}
    for role, stems in ROLES.items():
        hits = [p for p in tables if _stem(p) in stems]
        if not hits and role == "sample":  # sample_submission_v2.csv, sampleSubmission_stage1.csv, ...
            hits = [p for p in tables if re.search(r"sample|submission", _stem(p) or "")]
        if len(hits) > 1:
            # the same table twice (train.csv and train.csv.zip): prefer the plain CSV
            plain = [p for p in hits if p.name.lower().endswith(".csv")]
            if len(plain) == 1 and len({_stem(p) for p in hits}) == 1:
                hits = plain
        if len(hits) > 1:
            raise DataError(f"{data_dir}: cannot tell which is the {role} file: {', '.join(p.name for p in hits)}; "
                            "keep one of them in the folder")
        if not hits:
            what = {"train": "training file (train.csv)", "test": "test file (test.csv)",
                    "sample": "sample submission (sample_submission.csv)"}[role]
            names = ", ".join(p.name for p in tables) or "no .csv, .csv.zip or .parquet file"
            raise DataError(f"{data_dir}: no {what} among {names}")
        found[role] = hits[0]
    return found


@dataclass
class Table:
    """One file read: its frame, the read options it needed (kit.io.read_csv keywords) and what was noticed."""

    path: Path
    frame: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sniff(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The pandas options a CSV needs beyond the defaults (separator, encoding), and one note for each."""
    head = Path(path).read_bytes()[: 1 << 16]
    options: dict[str, Any] = {}
    notes: list[str] = []
    if head.startswith(b"\xef\xbb\xbf"):
        notes.append(f"{path.name}: starts with a UTF-8 byte-order mark (read past it)")
        head = head[3:]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut by the 64 KiB window
            options["encoding"] = "latin-1"
            notes.append(f"{path.name}: not UTF-8 (byte {e.start}), read as Latin-1")
        text = head.decode("latin-1")
    lines = text.splitlines()
    first = lines[0] if lines else ""
    counts = {sep: first.count(sep) for sep in (",", ";", "\t", "|")}
    sep = max(counts, key=lambda s: counts[s])
    if counts[sep] > 0 and sep != "," and counts[sep] > counts[","]:
        try:  # confirm on a few lines (quoted fields may hold commas)
            sep = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t|").delimiter
        except csv.Error:
            pass
        if sep != ",":
            options["sep"] = sep
            notes.append(f"{path.name}: fields separated by {sep!r}, not ','")
    return options, notes


def read_table(path: Path, options: dict[str, Any] | None = None) -> Table:
    """The file as a frame (sniffed unless `options` are given); one-line DataError when it cannot be read."""
    from kit.io import read_csv

    path = Path(path)
    notes: list[str] = []
    if options is None:
        options, notes = ({}, []) if not path.name.lower().endswith(".csv") else sniff(path)
    try:
        frame = read_csv(path, **options)
    except KitError:
        raise
    except Exception as e:  # a parquet reader error, a zip that is not a zip
        raise DataError(f"{path}: cannot read ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    if "\n" in "".join(str(c) for c in frame.columns):
        raise DataError(f"{path}: a column name spans lines; check the header's quoting")
    if options.get("sep") is None and len(frame.columns) == 1 and path.name.lower().endswith(".csv"):
        notes.append(f"{path.name}: one column only ({frame.columns[0]!r})")
    quoted = any(frame[c].astype(str).str.contains("\n", regex=False).any()
                 for c in frame.columns
                 if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c]))
    if quoted:
        notes.append(f"{path.name}: quoted text fields span lines (read as one value each)")
    return Table(path, frame, dict(options), notes)


def as_text(values: pd.Series) -> pd.Series:
    """Non-missing values as stripped text."""
    return values.dropna().astype(str).str.strip()

"""`kit init`'s library: a competition folder written from Kaggle's files and Kaggle's metadata.

`scaffold(...)` finds train / test / sample submission in a folder (kit.scaffold.files), infers the declaration
(kit.scaffold.tabular: id, target, task, metric, column roles, each with its reason), renders the module a person
would write and `write` puts it in `<dest>/<name>/__init__.py` atomically. The metric comes from `metric`, else
Kaggle's evaluation metric for the slug when credentials are there (kit.scaffold.kaggle_metrics), else the
task's default. Nothing here prints: the notes are returned for the command to say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.io import atomic_write_text
from kit.scaffold.files import find_files, read_table
from kit.scaffold.tabular import TabularSpec, infer, render
from kit.scaffold.vision import VisionSpec

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class Scaffold:
    """What `kit init` writes: the module's source, where, and what it noticed on the way."""

    name: str
    source: str
    spec: TabularSpec | VisionSpec | None = None
    notes: list[str] = field(default_factory=list)
    summary: str = ""


def check_name(name: str) -> None:
    """A competition name kit can import (lower case letters, digits, '-' and '_')."""
    if not NAME_RE.match(name):
        raise KitError(f"--comp {name!r}: a competition name is lower case letters, digits, '-' and '_' "
                       "(it becomes the folder's name)")


def scaffold(name: str, data_dir: Path, *, slug: str | None = None, targets: list[str] | None = None,
             metric: str | None = None, task: str | None = None, id_col: str | None = None, group: str | None = None,
             lookup: Callable[[str], tuple[str | None, str]] | None = None) -> Scaffold:
    """Infer the competition `name` from Kaggle's files in `data_dir`; `lookup(slug)` -> (Kaggle's metric name,
    note) is asked only when no `metric` is given (default: kit.scaffold.kaggle_metrics.lookup)."""
    from kit.scaffold import vision

    check_name(name)
    slug = slug or name
    layout = vision.detect(data_dir)
    kaggle_name, kaggle_note = None, ""
    if metric is None:
        if lookup is None:
            from kit.scaffold.kaggle_metrics import lookup
        kaggle_name, kaggle_note = lookup(slug)
    if layout is not None:
        if group is not None:
            raise KitError("--group: image competitions here take no group column")
        infer_vision = vision.infer_images if layout == "images" else vision.infer_pixels
        vspec = infer_vision(name, slug, data_dir, targets=targets, metric=metric, task=task, id_col=id_col,
                             kaggle_metric=kaggle_name, kaggle_note=kaggle_note if kaggle_name is None else "")
        if kaggle_name is not None and kaggle_note:
            vspec.notes.insert(0, kaggle_note)
        source = vision.render(vspec)
        compile(source, f"competitions/{name}/__init__.py", "exec")
        summary = (f"{vspec.task} images ({vspec.layout}: {vspec.sizes}) on {vspec.target_col!r}, metric "
                   f"{vspec.metric}")
        return Scaffold(name, source, vspec, list(vspec.notes), summary)
    files = find_files(data_dir, slug)
    tables = {role: read_table(path) for role, path in files.items()}
    spec = infer(name, slug, tables, targets=targets, metric=metric, task=task, id_col=id_col, group=group,
                 kaggle_metric=kaggle_name, kaggle_note=kaggle_note if kaggle_name is None else "")
    if kaggle_name is not None and kaggle_note:
        spec.notes.insert(0, kaggle_note)
    source = render(spec)
    compile(source, f"competitions/{name}/__init__.py", "exec")  # a bug here, never a broken file there
    counts = {r: len(spec.role(r)) for r in ("numeric", "categorical", "boolean", "datetime", "left out", "dropped")}
    shown = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
    summary = (f"{spec.task} on {spec.target_col!r} (id {spec.id_col!r}), metric {spec.metric}; columns: {shown}")
    return Scaffold(name, source, spec, list(spec.notes), summary)


def destination(name: str, to: Path | None = None) -> Path:
    """The folder the competition goes in: `to/<name>`, else the repository's competitions/<name>."""
    if to is not None:
        return Path(to) / name
    from kit import registry

    return registry.root() / name


def write(result: Scaffold, folder: Path, force: bool = False) -> Path:
    """`folder/__init__.py` written atomically (temp file + rename); refuses an existing folder unless `force`."""
    folder = Path(folder)
    target = folder / "__init__.py"
    if folder.exists() and not force and (not folder.is_dir() or any(folder.iterdir())):
        raise KitError(f"{folder} already exists; pass --force to overwrite its __init__.py (other files stay)")
    return atomic_write_text(target, result.source)

"""Discovers competitions: each package `competitions/<name>/` exposes `COMPETITION`.

Folders listed in the environment variable KIT_COMPETITIONS_PATH (separated like PATH) are searched too, so
competitions kept outside this repository (private ones, or tests' generated ones) join as `competitions.<name>`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path

from kit.errors import KitError
from kit.spec import Competition
from kit.tasks import Task

PATH_ENV = "KIT_COMPETITIONS_PATH"


PACKAGE = "competitions"  # the repository's competitions, found by name: kit/ imports no competition


def root() -> Path:
    """The repository's competitions/ folder (where `kit init` writes a new one)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise KitError(f"no {PACKAGE!r} package on the path: run kit from the repository or install it")
    return Path(list(spec.submodule_search_locations)[0])


def _extra_dirs() -> list[Path]:
    return [Path(p).resolve() for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]


def _locations() -> dict[str, Path | None]:
    """name -> folder of each competition package outside the repository (None: one of the repository's)."""
    found: dict[str, Path | None] = {m.name: None for m in pkgutil.iter_modules([str(root())]) if m.ispkg}
    for d in _extra_dirs():
        for m in pkgutil.iter_modules([str(d)]):
            if m.ispkg:
                found.setdefault(m.name, d / m.name)  # the repository's own competition wins a name clash
    return found


def names() -> list[str]:
    """Names of the competition packages, sorted."""
    return sorted(_locations())


def location(name: str) -> Path | None:
    """The folder of competition `name` (None when there is none)."""
    found = _locations()
    if name not in found:
        return None
    return found[name] or root() / name


def _import(name: str, folder: Path | None):
    full = f"{PACKAGE}.{name}"
    if folder is None or full in sys.modules:
        return importlib.import_module(full)
    # a package outside competitions/: imported under the same name, its folder searched for its submodules
    spec = importlib.util.spec_from_file_location(full, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[full]
        raise
    return module


def get(name: str) -> Competition:
    """The competition called `name`; a KitError listing the known ones if there is none."""
    known = _locations()
    if name not in known:
        raise KitError(f"unknown competition {name!r}; known: {', '.join(sorted(known)) or '(none)'}")
    module = _import(name, known[name])
    comp = getattr(module, "COMPETITION", None)
    if not isinstance(comp, Competition):
        raise KitError(f"competitions/{name}/__init__.py must define COMPETITION = <Competition instance>")
    if not isinstance(getattr(comp, "task", None), Task):
        raise KitError(f"competition {name!r} declares no task (one of binary, multiclass, multilabel, regression)")
    return comp

"""Discovers competitions: each package `competitions/<name>/` exposes `COMPETITION`."""

from __future__ import annotations

import importlib
import pkgutil

import competitions
from kit.errors import KitError
from kit.spec import TASKS, Competition


def names() -> list[str]:
    """Names of the competition packages under `competitions/`, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(competitions.__path__) if m.ispkg)


def get(name: str) -> Competition:
    """The competition called `name`; a KitError listing the known ones if there is none."""
    known = names()
    if name not in known:
        raise KitError(f"unknown competition {name!r}; known: {', '.join(known) or '(none)'}")
    module = importlib.import_module(f"competitions.{name}")
    comp = getattr(module, "COMPETITION", None)
    if not isinstance(comp, Competition):
        raise KitError(f"competitions/{name}/__init__.py must define COMPETITION = <Competition instance>")
    if comp.task not in TASKS:
        raise KitError(f"competition {name!r}: task {comp.task!r} is not one of {', '.join(TASKS)}")
    return comp

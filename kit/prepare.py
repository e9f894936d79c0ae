"""The competition as one run uses it: `prepare` is the one path from a name and the command line's choices to
the competition object and its parameters, shared by `kit train`, `kit tune` and every spawned tune worker (so a
worker decodes images at the run's `--set size`, as the command that spawned it does)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import registry
from kit.spec import Competition


@dataclass(frozen=True)
class Prepared:
    """A competition prepared for a run, and the run's parameters (defaults + overrides, resolved, checked)."""

    comp: Competition
    params: dict[str, Any]


def cache_dir(comp: Competition, runs: Path) -> Path:
    """Where a competition's caches (decoded images) live under a run root: `runs/<comp>/cache`."""
    return Path(runs) / comp.name / "cache"


def prepare(comp: str | Competition, model: str | None = None, overrides: dict[str, Any] | None = None,
            runs: Path | None = None) -> Prepared:
    """`comp` (a name, or a competition already chosen) training `model` (tabular families; None: its own), with
    caches under `runs`, its parameters resolved once (image competitions: the preset filled in) and checked,
    and its `load` set to decode at the run's size."""
    comp = registry.get(comp) if isinstance(comp, str) else comp
    if model is not None:
        comp = comp.with_model(model)
    if runs is not None:
        comp = comp.with_cache_dir(cache_dir(comp, runs))
    params = comp.params(overrides)
    return Prepared(comp.for_params(params), params)

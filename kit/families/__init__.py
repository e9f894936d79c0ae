"""Model families for tabular competitions (`kit train --model NAME`): strategy objects holding their
parameters, search space and fold fit (`base.Family`); `get(name)` finds one."""

from __future__ import annotations

from kit.errors import KitError
from kit.families.base import Family
from kit.families.nets import MLP, TabM
from kit.families.trees import FAMILIES as TREES

FAMILIES: dict[str, Family] = {f.name: f for f in (MLP(), TabM(), *TREES.values())}
NAMES: tuple[str, ...] = tuple(FAMILIES)  # mlp, tabm, lightgbm, catboost, xgboost


def get(name: str, known: tuple[str, ...] = NAMES) -> Family:
    """The family called `name` (one of `known`); a KitError listing them otherwise."""
    if name not in known or name not in FAMILIES:
        raise KitError(f"unknown model {name!r}; one of {', '.join(known)}")
    return FAMILIES[name]

"""The model-family strategy: what `kit train --model NAME` plugs into a tabular competition.

A family owns its parameters (a `kit.params.Params` dataclass: names, defaults, constraints), its Optuna search
space and how one fold is fit; `TabularCompetition` holds one and delegates to it, never branching on names.
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import numpy as np

from kit.errors import KitError
from kit.params import Params
from kit.spec import Data, FoldOutput


class Family:
    """Base of model families: subclasses set `name`, `package`, `params` and implement `search_space` and
    `fit_fold`."""

    name: ClassVar[str]
    package: ClassVar[str]  # the library it needs (a one-line error naming it when missing)
    params: ClassVar[type[Params]]

    def require(self) -> None:
        """A one-line error naming the package when the library is not installed."""
        if importlib.util.find_spec(self.package) is None:
            raise KitError(f"--model {self.name} needs the {self.package} package: pip install {self.package}")

    def defaults(self, comp: Any) -> dict[str, Any]:
        """`comp`'s defaults for this family: the family's, updated with the competition's `family_params`."""
        return {**self.params.defaults(), **comp.family_params.get(self.name, {})}

    def check(self, params: dict[str, Any], where: str) -> None:
        """Values this family cannot use: one line naming the parameter."""
        self.params.check(params, where)

    def kind(self, params: dict[str, Any], n_rows: int | None = None) -> str | None:
        """The net this family trains for `params` (`seed`, `mlp`, `tabm`), None for trees."""
        return None

    def search_space(self, trial: Any, defaults: dict[str, Any]) -> dict[str, Any]:
        """Hyper-parameters for one Optuna trial."""
        raise NotImplementedError

    def fit_fold(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, callbacks: list | None = None, progress: bool = True) -> FoldOutput:
        """One fold's model on `train_idx`: predictions on `valid_idx` and the test set, and its predictor."""
        raise NotImplementedError

    def parts(self, params: dict[str, Any], n_rows: int) -> int:
        """Parts of a fold that can train apart (`fit_part`) for `n_rows` training rows: one."""
        return 1

    def fit_part(self, comp: Any, data: Data, train_idx: np.ndarray, valid_idx: np.ndarray, params: dict[str, Any],
                 seed: int, part: int) -> FoldOutput:
        """Part `part` of the fold `fit_fold` trains with `seed`: the whole fold when it is one part."""
        if part != 0 or self.parts(params, len(train_idx)) != 1:
            raise NotImplementedError(f"{self.name}: a fold of several parts needs fit_part")
        return self.fit_fold(comp, data, train_idx, valid_idx, params, seed, progress=False)

    def __repr__(self) -> str:
        return f"<Family {self.name}>"

"""Typed hyper-parameters: each model family (and the vision base) declares its parameters once, as a frozen
dataclass whose fields are the names, types and defaults, with `_parameter_constraints` (scikit-learn's model)
checked in one place, `validate`.

Values travel as plain dicts (run records, Optuna trials and `--set` are JSON); `Params.check` validates such a
dict and `Params.of` reads one as the typed object, so code reads `p.lr`, never `params.get("lr", 1e-3)` with a
default restated beside the declared one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from kit.errors import KitError

P = TypeVar("P", bound="Params")


class Constraint:
    """A set of allowed values: `value in constraint`; `str(constraint)` says it in words for errors."""

    def __contains__(self, value: Any) -> bool:
        raise NotImplementedError


class Interval(Constraint):
    """Numbers of `kind` (int or float) between `lo` and `hi` (None: unbounded), `closed` at "both", "left",
    "right" or "neither" end."""

    def __init__(self, kind: type, lo: float | None, hi: float | None, closed: str = "both") -> None:
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be both, left, right or neither (got {closed!r})")
        self.kind, self.lo, self.hi, self.closed = kind, lo, hi, closed

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        lo_ok = self.lo is None or (value >= self.lo if self.closed in ("both", "left") else value > self.lo)
        hi_ok = self.hi is None or (value <= self.hi if self.closed in ("both", "right") else value < self.hi)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        if self.hi is None:
            return f">= {self.lo}" if self.closed in ("both", "left") else f"> {self.lo}"
        if self.lo is None:
            return f"<= {self.hi}" if self.closed in ("both", "right") else f"< {self.hi}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"in {left}{self.lo}, {self.hi}{right}"


class OrAuto(Constraint):
    """An integer >= `lo`, or 0 for "chosen from the data"."""

    def __init__(self, lo: int = 1, what: str = "the data size") -> None:
        self.lo, self.what = lo, what

    def __contains__(self, value: Any) -> bool:
        return value in Interval(int, self.lo, None) or value in Interval(int, 0, 0)

    def __str__(self) -> str:
        return f">= {self.lo}, or 0 to choose it from {self.what}"


class Options(Constraint):
    """One of the listed values."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __contains__(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)


class Flag(Constraint):
    """True or False."""

    def __contains__(self, value: Any) -> bool:
        return isinstance(value, bool)

    def __str__(self) -> str:
        return "true or false"


class Text(Constraint):
    """A string (a name or a path)."""

    def __contains__(self, value: Any) -> bool:
        return isinstance(value, str)

    def __str__(self) -> str:
        return "a string"


class IntList(Constraint):
    """A list of integers each `>= lo`."""

    def __init__(self, lo: int) -> None:
        self.lo = lo

    def __contains__(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(v in Interval(int, self.lo, None) for v in value)

    def __str__(self) -> str:
        return f"a list of integers >= {self.lo}"


def validate(constraints: Mapping[str, Constraint | Sequence[Constraint]], params: Mapping[str, Any],
             where: str, note: Mapping[str, str] | None = None) -> None:
    """The one place values are checked: each key of `params` that `constraints` names must be in one of its
    constraints, else a KitError `where: key must be ... (got value)` (`note`: words added after a key's rule)."""
    for key, allowed in constraints.items():
        if key not in params:
            continue
        options = [allowed] if isinstance(allowed, Constraint) else list(allowed)
        value = params[key]
        if not any(value in c for c in options):
            rule = " or ".join(str(c) for c in options)
            extra = f", {note[key]}" if note and key in note else ""
            raise KitError(f"{where}: {key} must be {rule}{extra} (got {value!r})")


@dataclass(frozen=True)
class Params:
    """Base of a family's parameters: subclasses are frozen dataclasses (the fields: names, types, defaults) with
    `_parameter_constraints`; `_notes` adds words to a key's error."""

    _parameter_constraints: ClassVar[dict[str, Constraint | Sequence[Constraint]]] = {}
    _notes: ClassVar[dict[str, str]] = {}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The declared defaults as a plain dict (a fresh copy)."""
        return dataclasses.asdict(cls())

    @classmethod
    def names(cls) -> list[str]:
        """The parameter names."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check(cls, params: Mapping[str, Any], where: str) -> None:
        """Each value of `params` this class declares against its constraints, then the cross-field rules."""
        validate(cls._parameter_constraints, _numbers(params), where, cls._notes)
        cls._check_together(params, where)

    @classmethod
    def _check_together(cls, params: Mapping[str, Any], where: str) -> None:
        """Rules on several values at once (subclasses)."""

    @classmethod
    def of(cls: type[P], params: Mapping[str, Any]) -> P:
        """The typed view of `params`: the declared fields, defaults where a key is absent, other keys ignored."""
        names = set(cls.names())
        return cls(**{k: v for k, v in params.items() if k in names})


def _numbers(params: Mapping[str, Any]) -> dict[str, Any]:
    """Integral floats kept as given; numpy scalars (Optuna, JSON) as Python numbers."""
    out = {}
    for k, v in params.items():
        out[k] = v.item() if hasattr(v, "item") and not isinstance(v, (list, tuple, str)) else v
    return out


def parse_overrides(pairs: Sequence[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`["lr=0.01", "depth=2"]` (`--set`) -> typed dict, cast to the type of each default value."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise KitError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if key not in defaults:
            raise KitError(f"--set {key}: unknown parameter; known: {', '.join(sorted(defaults))}")
        default = defaults[key]
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                value = int(raw)
            elif isinstance(default, float):
                value = float(raw)
            elif isinstance(default, (list, dict)):
                value = json.loads(raw)
            else:
                value = raw
        except (ValueError, json.JSONDecodeError):
            kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(default), "JSON")
            raise KitError(f"--set {key}={raw}: expected {kind}") from None
        out[key] = value
    return out

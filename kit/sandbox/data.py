"""Generated competitions for the sandbox: `DIR/<slug>/` with public files, a private `solution.csv`
(Kaggle's layout: the target columns plus `Usage` = Public/Private) and a hidden `.competition.json` naming
the kit competition that scores it (with its slug, title, id and target columns).

Which competitions: every kit competition (`kit.registry.names()`) whose package has a `synthetic` module,
found through this contract (kit never names a competition):

- `generate(out_dir, n_train=..., n_test=..., seed=..., solution_path=None, **kw) -> dict` writes the public
  files in Kaggle's layout into `out_dir` and, when `solution_path` is given, the test set's answers there
  (the id column and the submission's target columns, in the submission's format);
- `SANDBOX: dict`: keyword arguments of `generate` for a small sandbox copy (e.g. fewer, smaller images);
- optionally `DEMO_TRAIN_ARGS: list[str]`: extra `kit train` arguments for a quick training in `make demo`
  (competitions with it are downloaded, trained, submitted and listed there; the others only downloaded).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from kit import registry
from kit.errors import KitError
from kit.io import atomic_write_csv, atomic_write_json
from kit.spec import Competition

META_FILE = ".competition.json"
SOLUTION_FILE = "solution.csv"
PRIVATE_FILES = {META_FILE, SOLUTION_FILE}


@dataclass(frozen=True)
class CompetitionMeta:
    """What the sandbox keeps on Kaggle's side of a competition: which kit competition scores it, and how."""

    competition: str  # the kit competition's name (kit.registry)
    slug: str
    title: str
    id_col: str
    target_cols: tuple[str, ...]
    # a code competition takes submissions only from notebooks (Kaggle's is_kernels_submissions_only), each run
    # with no network under these caps (Kaggle's usual 9 h and a CPU notebook's 30 GB unless set otherwise)
    code: bool = False
    kernel_runtime_s: float = 9 * 3600.0
    kernel_memory_mb: int = 30 * 1024

    @classmethod
    def load(cls, comp_dir: Path) -> CompetitionMeta:
        """Read `comp_dir/.competition.json`."""
        path = Path(comp_dir) / META_FILE
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise KitError(f"{path}: missing or invalid sandbox metadata ({e})") from None
        if not isinstance(d, dict) or "competition" not in d:
            raise KitError(f"{path}: no \"competition\" (the kit competition scoring it): written by an older kit; "
                           "delete the folder and generate it again (kit sandbox --generate)")
        try:
            return cls(d["competition"], d["slug"], d["title"], d["id_col"], tuple(d["target_cols"]),
                       bool(d.get("code", False)), float(d.get("kernel_runtime_s", 9 * 3600.0)),
                       int(d.get("kernel_memory_mb", 30 * 1024)))
        except (KeyError, TypeError) as e:
            raise KitError(f"{path}: invalid sandbox metadata (missing {e})") from None

    @classmethod
    def of(cls, comp: Competition, solution_columns: list[str]) -> CompetitionMeta:
        """The metadata of kit competition `comp` whose solution file has these columns (Usage excluded)."""
        targets = tuple(c for c in solution_columns if c not in (comp.id_col, "Usage"))
        return cls(comp.name, comp.slug, getattr(comp, "title", "") or comp.name, comp.id_col, targets)

    def save(self, comp_dir: Path) -> Path:
        """Write `comp_dir/.competition.json`."""
        d = {"competition": self.competition, "slug": self.slug, "title": self.title, "id_col": self.id_col,
             "target_cols": list(self.target_cols), "code": self.code, "kernel_runtime_s": self.kernel_runtime_s,
             "kernel_memory_mb": self.kernel_memory_mb}
        return atomic_write_json(Path(comp_dir) / META_FILE, d)


@dataclass(frozen=True)
class SandboxCompetition:
    """A kit competition that can join the sandbox: the competition and its `synthetic` module."""

    comp: Competition
    synthetic: ModuleType

    @property
    def name(self) -> str:
        """The kit competition's name."""
        return self.comp.name

    @property
    def slug(self) -> str:
        """Its Kaggle slug: the sandbox folder's name."""
        return self.comp.slug

    @property
    def sandbox_kwargs(self) -> dict[str, Any]:
        """`generate` keyword arguments for the sandbox's small copy (the module's SANDBOX)."""
        return dict(getattr(self.synthetic, "SANDBOX", {}))

    @property
    def demo_train_args(self) -> list[str] | None:
        """Extra `kit train` arguments for the demo, or None if the demo does not train it."""
        args = getattr(self.synthetic, "DEMO_TRAIN_ARGS", None)
        return None if args is None else [str(a) for a in args]


def sandbox_competitions(names: list[str] | None = None) -> list[SandboxCompetition]:
    """The kit competitions with a `synthetic` module (all, or those in `names`), sorted by name."""
    known = registry.names()
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise KitError(f"unknown competition {unknown[0]!r}; known: {', '.join(known) or '(none)'}")
    out = []
    for name in known if names is None else sorted(set(names)):
        module = f"competitions.{name}.synthetic"
        comp = registry.get(name)  # imports the package first (also one found through KIT_COMPETITIONS_PATH)
        if importlib.util.find_spec(module) is None:
            if names is not None:
                raise KitError(f"competition {name!r} has no synthetic module ({module}); it cannot join the sandbox")
            continue
        synthetic = importlib.import_module(module)
        if not callable(getattr(synthetic, "generate", None)):
            raise KitError(f"{module} has no generate(out_dir, n_train=..., n_test=..., seed=..., solution_path=...)")
        out.append(SandboxCompetition(comp, synthetic))
    return out


def _with_usage(solution: pd.DataFrame, seed: int, public_fraction: float = 0.5) -> pd.DataFrame:
    """Kaggle's solution files mark each row Public (leaderboard) or Private (final standings)."""
    rng = np.random.default_rng(seed + 1)
    out = solution.copy()
    out["Usage"] = np.where(rng.random(len(out)) < public_fraction, "Public", "Private")
    return out


def make_competition(root: Path, entry: SandboxCompetition | str, seed: int = 0, **overrides: Any) -> Path:
    """Generate `root/<slug>/`: public files, solution.csv and metadata; `overrides` replace SANDBOX's arguments."""
    if isinstance(entry, str):
        (entry,) = sandbox_competitions([entry])
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    comp_dir = root / entry.slug
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        sol_tmp = Path(tmp) / SOLUTION_FILE
        entry.synthetic.generate(comp_dir, seed=seed, solution_path=sol_tmp, **{**entry.sandbox_kwargs, **overrides})
        sol = pd.read_csv(sol_tmp, keep_default_na=False)  # empty tag strings stay empty strings
        if entry.comp.id_col not in sol.columns:
            raise KitError(f"{entry.synthetic.__name__}.generate: solution lacks the id column {entry.comp.id_col!r}")
        atomic_write_csv(comp_dir / SOLUTION_FILE, _with_usage(sol, seed))
    CompetitionMeta.of(entry.comp, list(sol.columns)).save(comp_dir)
    return comp_dir


def make_code_competition(comp_dir: Path, runtime_s: float | None = None,
                          memory_mb: int | None = None) -> CompetitionMeta:
    """Turn a generated competition into a code competition (notebook submissions only), with these kernel caps."""
    meta = CompetitionMeta.load(comp_dir)
    if (runtime_s is not None and runtime_s <= 0) or (memory_mb is not None and memory_mb <= 0):
        raise KitError(f"kernel caps must be positive (runtime {runtime_s} s, memory {memory_mb} MB)")
    meta = replace(meta, code=True,
                   kernel_runtime_s=meta.kernel_runtime_s if runtime_s is None else float(runtime_s),
                   kernel_memory_mb=meta.kernel_memory_mb if memory_mb is None else int(memory_mb))
    meta.save(comp_dir)
    return meta


def generate_all(root: Path, seed: int = 0, names: list[str] | None = None) -> list[Path]:
    """Create every sandbox competition (or those in `names`) under `root` unless already there."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return [make_competition(root, entry, seed) for entry in sandbox_competitions(names)
            if not (root / entry.slug / META_FILE).is_file()]

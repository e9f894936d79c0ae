"""Generated competitions for the sandbox: `DIR/<slug>/` with public files, a private `solution.csv`
(Kaggle's layout: the target columns plus `Usage` = Public/Private) and a hidden `.competition.json`
telling the sandbox how to score (metric, id column, target columns).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.errors import KitError
from kit.io import atomic_write_csv, atomic_write_json

META_FILE = ".competition.json"
SOLUTION_FILE = "solution.csv"
PRIVATE_FILES = {META_FILE, SOLUTION_FILE}

TITANIC_SLUG = "titanic"
PLANET_SLUG = "planet-understanding-the-amazon-from-space"


@dataclass(frozen=True)
class CompetitionMeta:
    """How the sandbox scores a competition (what Kaggle keeps on its side)."""

    slug: str
    title: str
    metric: str  # "accuracy" (exact match of the target column) or "f2_samples" (space-separated tags)
    id_col: str
    target_cols: tuple[str, ...]

    @classmethod
    def load(cls, comp_dir: Path) -> CompetitionMeta:
        """Read `comp_dir/.competition.json`."""
        path = Path(comp_dir) / META_FILE
        try:
            d = json.loads(path.read_text())
            return cls(d["slug"], d["title"], d["metric"], d["id_col"], tuple(d["target_cols"]))
        except (OSError, ValueError, KeyError) as e:
            raise KitError(f"{path}: missing or invalid sandbox metadata ({e})") from None

    def save(self, comp_dir: Path) -> Path:
        """Write `comp_dir/.competition.json`."""
        d = {"slug": self.slug, "title": self.title, "metric": self.metric, "id_col": self.id_col,
             "target_cols": list(self.target_cols)}
        return atomic_write_json(Path(comp_dir) / META_FILE, d)


def _with_usage(solution: pd.DataFrame, seed: int, public_fraction: float = 0.5) -> pd.DataFrame:
    """Kaggle's solution files mark each row Public (leaderboard) or Private (final standings)."""
    rng = np.random.default_rng(seed + 1)
    out = solution.copy()
    out["Usage"] = np.where(rng.random(len(out)) < public_fraction, "Public", "Private")
    return out


def make_titanic(root: Path, seed: int = 0, n_train: int = 891, n_test: int = 418) -> Path:
    """Titanic-format competition (train.csv, test.csv, gender_submission.csv) scored by accuracy."""
    from competitions.titanic import synthetic

    comp_dir = Path(root) / TITANIC_SLUG
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        sol_tmp = Path(tmp) / "solution.csv"
        synthetic.generate(comp_dir, n_train=n_train, n_test=n_test, seed=seed, solution_path=sol_tmp)
        atomic_write_csv(comp_dir / SOLUTION_FILE, _with_usage(pd.read_csv(sol_tmp), seed))
    CompetitionMeta(TITANIC_SLUG, "Titanic - Machine Learning from Disaster", "accuracy", "PassengerId",
                    ("Survived",)).save(comp_dir)
    return comp_dir


def make_planet(root: Path, seed: int = 0, n_train: int = 64, n_test: int = 24, size: int = 32) -> Path:
    """Planet-format competition (train_v2.csv, train-jpg/, test-jpg*/, sample_submission_v2.csv), mean F2."""
    from competitions.planet import synthetic

    comp_dir = Path(root) / PLANET_SLUG
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        sol_tmp = Path(tmp) / "solution.csv"
        synthetic.generate(comp_dir, n_train=n_train, n_test=n_test, seed=seed, size=size,
                           solution_path=sol_tmp, workers=1)
        sol = pd.read_csv(sol_tmp, keep_default_na=False)
        atomic_write_csv(comp_dir / SOLUTION_FILE, _with_usage(sol, seed))
    CompetitionMeta(PLANET_SLUG, "Planet: Understanding the Amazon from Space", "f2_samples", "image_name",
                    ("tags",)).save(comp_dir)
    return comp_dir


def generate_all(root: Path, seed: int = 0, planet_n: int = 64) -> list[Path]:
    """Create the titanic and planet competitions under `root` unless they are already there."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    made = []
    if not (root / TITANIC_SLUG / META_FILE).is_file():
        made.append(make_titanic(root, seed))
    if not (root / PLANET_SLUG / META_FILE).is_file():
        made.append(make_planet(root, seed, n_train=planet_n, n_test=max(2, planet_n * 3 // 8)))
    return made

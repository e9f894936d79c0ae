"""Titanic-format data with a known survival rule: `python -m competitions.titanic.synthetic OUT --n 891`.

Same columns, dtypes and kinds of missing values as Kaggle's files (Age ~20% missing, Cabin mostly
missing, a couple of Embarked missing, one Fare missing in test), odd names included, so the whole
pipeline can be exercised without Kaggle's data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kit.io import atomic_write_csv

SURNAMES = ["Smith", "Andersson", "Sage", "Goodwin", "O'Brien", "Kelly", "van der Hoef", "Nasser", "Rice",
            "Panula", "Skoog", "Asplund", "Carter", "Fortune", "Allison", "Baclini", "de Messemaeker", "Ware",
            "Johnson", "Brown", "Williams", "Ford", "Harper", "Hocking", "Nakid", "Yasbeck", "Zabour", "Ali"]
FIRST_M = ["John", "William", "Owen Harris", "Karl", "James", "Anders Johan", "Achille", "Samuel", "Ernst"]
FIRST_F = ["Mary", "Elizabeth", "Anna", "Florence", "Laina", "Margaret", "Helga E", "Marie", "Bertha"]

# the local Kaggle sandbox (kit.sandbox.data): full-size copy; `make demo` trains it briefly
SANDBOX: dict = {}
DEMO_TRAIN_ARGS: list[str] = ["--folds", "2", "--set", "epochs=3"]


def _passengers(n: int, rng: np.random.Generator, start_id: int) -> pd.DataFrame:
    pclass = rng.choice([1, 2, 3], size=n, p=[0.24, 0.21, 0.55])
    sex = rng.choice(["male", "female"], size=n, p=[0.65, 0.35])
    age = np.clip(rng.normal(29, 14, size=n), 0.42, 80).round(0)
    child = age < 13
    age[rng.random(n) < 0.05] += 0.5  # Kaggle has ages like 28.5 and 0.42
    title = np.where(sex == "female", np.where(age < 18, "Miss", rng.choice(["Mrs", "Miss", "Ms", "Mme"], size=n,
                                                                             p=[0.6, 0.36, 0.02, 0.02])),
                     np.where(child, "Master", rng.choice(["Mr", "Dr", "Rev", "Col"], size=n,
                                                          p=[0.94, 0.03, 0.02, 0.01])))
    fam = rng.integers(0, len(SURNAMES), size=n)
    sibsp = rng.choice([0, 1, 2, 3, 4], size=n, p=[0.68, 0.23, 0.05, 0.02, 0.02])
    parch = rng.choice([0, 1, 2, 3], size=n, p=[0.76, 0.13, 0.09, 0.02])
    names = []
    for i in range(n):
        first = (FIRST_F if sex[i] == "female" else FIRST_M)[rng.integers(0, 9)]
        name = f"{SURNAMES[fam[i]]}, {title[i]}. {first}"
        if rng.random() < 0.05:
            name += ' ("Nellie")'
        if rng.random() < 0.03 and title[i] == "Mrs":
            name = f"{SURNAMES[fam[i]]}, Mrs. {rng.choice(FIRST_M)} ({first} Smith)"
        names.append(name)
    base_fare = np.where(pclass == 1, 84.0, np.where(pclass == 2, 20.0, 13.0))
    fare = np.round(base_fare * rng.lognormal(0, 0.5, size=n) * (1 + 0.3 * (sibsp + parch)), 4)
    ticket = np.array([f"{rng.choice(['', 'PC ', 'A/5 ', 'STON/O2. ', 'C.A. '])}{100000 + f * 37 + p}"
                       for f, p in zip(fam, pclass, strict=True)])
    cabin = np.where((pclass == 1) & (rng.random(n) < 0.8) | (rng.random(n) < 0.05),
                     [f"{'ABCDEF'[rng.integers(0, 6)]}{rng.integers(1, 130)}" for _ in range(n)], None)
    embarked = rng.choice(["S", "C", "Q"], size=n, p=[0.72, 0.19, 0.09]).astype(object)
    df = pd.DataFrame({
        "PassengerId": np.arange(start_id, start_id + n),
        "Pclass": pclass, "Name": names, "Sex": sex, "Age": age, "SibSp": sibsp, "Parch": parch,
        "Ticket": ticket, "Fare": fare, "Cabin": cabin, "Embarked": embarked,
    })
    df.loc[rng.random(n) < 0.2, "Age"] = np.nan
    df.loc[rng.random(n) < 0.003, "Embarked"] = None
    return df


def survival(df: pd.DataFrame, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    """Women and children first, by class, with `noise` of the labels flipped."""
    female = df["Sex"].eq("female").to_numpy()
    boy = df["Name"].str.contains("Master.", regex=False).to_numpy()
    p3 = df["Pclass"].eq(3).to_numpy()
    logit = -1.6 + 3.2 * female + 2.2 * boy - 1.3 * p3 - 0.8 * (female & p3) + 0.9 * df["Pclass"].eq(1).to_numpy()
    alive = rng.random(len(df)) < 1 / (1 + np.exp(-3 * logit))
    flip = rng.random(len(df)) < noise
    return np.where(flip, ~alive, alive).astype(np.int64)


def generate(out_dir: Path, n_train: int = 891, n_test: int = 418, seed: int = 0,
             solution_path: Path | None = None) -> dict[str, Path]:
    """Write train.csv, test.csv and gender_submission.csv (+ solution.csv with the test labels if asked)."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    allp = _passengers(n_train + n_test, rng, start_id=1)
    y = survival(allp, rng)
    train = allp.iloc[:n_train].copy()
    train.insert(1, "Survived", y[:n_train])
    test = allp.iloc[n_train:].reset_index(drop=True)
    if n_test:
        test.loc[rng.integers(0, n_test), "Fare"] = np.nan
    sample = pd.DataFrame({"PassengerId": test["PassengerId"], "Survived": test["Sex"].eq("female").astype(int)})
    paths = {
        "train": atomic_write_csv(out_dir / "train.csv", train),
        "test": atomic_write_csv(out_dir / "test.csv", test),
        "sample": atomic_write_csv(out_dir / "gender_submission.csv", sample),
    }
    if solution_path is not None:
        sol = pd.DataFrame({"PassengerId": test["PassengerId"], "Survived": y[n_train:]})
        paths["solution"] = atomic_write_csv(Path(solution_path), sol)
    return paths


def main(argv: list[str] | None = None) -> int:
    """CLI: write a Titanic-format competition folder."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=891, help="training rows")
    p.add_argument("--n-test", type=int, default=418)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--solution", type=Path, default=None, help="also write the test labels here")
    a = p.parse_args(argv)
    for k, v in generate(a.out, a.n, a.n_test, a.seed, a.solution).items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

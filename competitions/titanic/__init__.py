"""Titanic - Machine Learning from Disaster: binary survival, scored by accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from competitions.titanic.features import GroupSurvival, TitanicFeatures
from kit.spec import Data
from kit.tabular import TabularCompetition


class Titanic(TabularCompetition):
    """The seeds' MLP (width 64 by default) on engineered passenger features, 5-fold stratified CV, OOF threshold."""

    name = "titanic"
    slug = "titanic"
    title = "Titanic - Machine Learning from Disaster"
    task = "binary"
    id_col = "PassengerId"
    target_col = "Survived"
    train_file = "train.csv"
    test_file = "test.csv"
    sample_file = "gender_submission.csv"
    metric = "accuracy"
    n_folds = 5
    threads = 1  # a 64-unit MLP on ~700 rows: one thread is fastest
    raw_columns = ["Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked"]
    raw_numeric = ["Pclass", "Age", "SibSp", "Parch", "Fare"]
    numeric_features = ["Age", "AgeMissing", "SibSp", "Parch", "FamilySize", "IsAlone", "LogFarePP", "CabinKnown",
                        "IsBoy", "GroupSurvival", "FamilyKnown", "TicketKnown", "WCGSurvival", "WCGKnown"]
    categorical_features = ["Sex", "Embarked", "Title", "Pclass", "Deck"]
    default_params: dict[str, Any] = {
        "arch": "seed", "width": 64, "depth": 1, "dropout": 0.3, "wd": 0.03, "epochs": 20, "lr": 3e-3, "bs": 64,
        "n_models": 1,
    }

    def load(self, data_dir: Path) -> Data:
        """Kaggle's files plus TicketCount (passengers sharing a ticket over train+test: uses no labels)."""
        data = super().load(data_dir)
        counts = data.train["Ticket"].astype(str).value_counts().add(
            data.test["Ticket"].astype(str).value_counts(), fill_value=0)
        for df in (data.train, data.test):
            df["TicketCount"] = df["Ticket"].astype(str).map(counts).astype(float)
        return data

    def feature_steps(self, params: dict[str, Any]) -> list:
        """Derived columns, then fold-safe group survival."""
        return [("features", TitanicFeatures()), ("group_survival", GroupSurvival())]


COMPETITION = Titanic()

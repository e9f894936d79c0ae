"""Titanic - Machine Learning from Disaster: binary survival, scored by accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from competitions.titanic.features import GroupSurvival, TitanicFeatures
from kit.errors import KitError
from kit.spec import Data
from kit.tabular import TabularCompetition


class Titanic(TabularCompetition):
    """The seeds' MLP (width 64 by default) on engineered passenger features, 5-fold stratified CV, OOF threshold."""

    name = "titanic"
    slug = "titanic"
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
        "width": 64, "depth": 1, "dropout": 0.3, "wd": 0.03, "epochs": 20, "lr": 3e-3, "bs": 64,
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

    def check_params(self, params: dict[str, Any]) -> None:
        """Reject unknown names and values outside what the MLP can use."""
        super().check_params(params)
        for key in ("width", "depth", "epochs", "bs", "n_models"):
            if int(params[key]) < 1:
                raise KitError(f"titanic: {key} must be >= 1 (got {params[key]})")
        if not 0 <= float(params["dropout"]) < 1:
            raise KitError(f"titanic: dropout must be in [0, 1) (got {params['dropout']})")
        if float(params["lr"]) <= 0 or float(params["wd"]) < 0:
            raise KitError(f"titanic: lr must be > 0 and wd >= 0 (got lr={params['lr']}, wd={params['wd']})")

    def search_space(self, trial) -> dict[str, Any]:
        """lr, epochs, width, depth, dropout, weight decay, batch size."""
        return {
            "lr": trial.suggest_float("lr", 3e-4, 3e-2, log=True),
            "epochs": trial.suggest_int("epochs", 5, 40, step=5),
            "width": trial.suggest_categorical("width", [32, 64, 128, 256]),
            "depth": trial.suggest_int("depth", 1, 3),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "wd": trial.suggest_float("wd", 1e-4, 0.3, log=True),
            "bs": trial.suggest_categorical("bs", [32, 64, 128]),
        }


COMPETITION = Titanic()

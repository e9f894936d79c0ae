"""Titanic feature steps: derived columns, title-median age, and fold-safe family/ticket survival."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

TITLES = {
    "Mr": "Mr", "Mrs": "Mrs", "Miss": "Miss", "Master": "Master",
    "Mlle": "Miss", "Ms": "Miss", "Mme": "Mrs", "Lady": "Mrs", "the Countess": "Mrs", "Dona": "Mrs",
}


def title_of(name: pd.Series) -> pd.Series:
    """'Braund, Mr. Owen Harris' -> 'Mr'; rare titles -> 'Rare'; unparsable names -> 'Unknown'."""
    raw = name.astype("string").str.extract(r",\s*([^.]+)\.", expand=False).str.strip()
    return raw.map(lambda t: TITLES.get(t, "Rare") if isinstance(t, str) else "Unknown").astype(object)


def surname_of(name: pd.Series) -> pd.Series:
    """'Braund, Mr. Owen Harris' -> 'Braund' (whole name when there is no comma)."""
    return name.astype("string").fillna("").str.split(",", n=1).str[0].str.strip().astype(object)


class TitanicFeatures(BaseEstimator, TransformerMixin):
    """Derived columns: Title, Surname, FamilySize, IsAlone, Deck, CabinKnown, log fare per person,
    AgeMissing and Age imputed with the training fold's median for the passenger's title."""

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> TitanicFeatures:
        t = title_of(X["Name"])
        age = pd.to_numeric(X["Age"], errors="coerce")
        self.age_by_title_ = age.groupby(t).median().dropna().to_dict()
        self.age_median_ = float(age.median()) if age.notna().any() else 30.0
        fare = pd.to_numeric(X["Fare"], errors="coerce")
        self.fare_by_class_ = fare.groupby(X["Pclass"]).median().dropna().to_dict()
        self.fare_median_ = float(fare.median()) if fare.notna().any() else 14.0
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        out["Title"] = title_of(X["Name"])
        out["Surname"] = surname_of(X["Name"])
        age = pd.to_numeric(X["Age"], errors="coerce")
        out["AgeMissing"] = age.isna().astype(np.float32)
        fill = out["Title"].map(self.age_by_title_).astype(float).fillna(self.age_median_)
        out["Age"] = age.fillna(fill)
        out["FamilySize"] = X["SibSp"].fillna(0) + X["Parch"].fillna(0) + 1
        out["IsAlone"] = (out["FamilySize"] == 1).astype(np.float32)
        cabin = X["Cabin"].astype("string")
        out["CabinKnown"] = cabin.notna().astype(np.float32)
        deck = cabin.str[0].fillna("U").astype(object)
        out["Deck"] = deck.where(deck.isin(list("ABCDEFG")), "U")
        fare = pd.to_numeric(X["Fare"], errors="coerce")
        fare = fare.fillna(X["Pclass"].map(self.fare_by_class_).astype(float)).fillna(self.fare_median_)
        out["Fare"] = fare
        per_person = fare / X["TicketCount"].clip(lower=1) if "TicketCount" in X else fare
        out["LogFarePP"] = np.log1p(per_person.clip(lower=0))
        out["Pclass"] = X["Pclass"].astype("Int64").astype(str)  # categorical: one-hot
        out["IsBoy"] = (out["Title"] == "Master").astype(np.float32)
        return out


def _group_value(surv: np.ndarray, n: np.ndarray) -> np.ndarray:
    """1 if any other member survived, 0 if others are known and none did, 0.5 when nothing is known."""
    return np.where(n <= 0, 0.5, np.where(surv > 0, 1.0, 0.0))


class GroupSurvival(BaseEstimator, TransformerMixin):
    """Fold-safe group survival: what happened to the passenger's family (surname + fare) and ticket mates,
    and to the women and boys of their surname/ticket group (the "woman-child group").

    Statistics come only from the labels given to `fit`. On those same rows (`fit_transform`) each passenger
    is left out of their own groups, so a row never sees its own label; other rows see all fitted members.
    """

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> GroupSurvival:
        self._fit_stats(X, y)
        return self

    @staticmethod
    def _keys(X: pd.DataFrame) -> dict[str, pd.Series]:
        fare = pd.to_numeric(X["Fare"], errors="coerce").round(1).astype(str)
        return {"Family": X["Surname"].astype(str) + "|" + fare, "Ticket": X["Ticket"].astype(str),
                "Surname": X["Surname"].astype(str)}

    @staticmethod
    def _woman_or_boy(X: pd.DataFrame) -> np.ndarray:
        title = X["Title"] if "Title" in X else pd.Series("", index=X.index)
        return (X["Sex"].astype(str).eq("female") | title.eq("Master")).to_numpy()

    def _fit_stats(self, X: pd.DataFrame, y: np.ndarray) -> None:
        y = np.asarray(y, dtype=np.float64)
        wcg = self._woman_or_boy(X)
        self.stats_ = {}
        for name, key in self._keys(X).items():
            k = key.to_numpy()
            all_g = pd.Series(y).groupby(k)
            self.stats_[name] = (all_g.sum().to_dict(), all_g.size().to_dict())
            w = pd.Series(y[wcg]).groupby(k[wcg])
            self.stats_["WCG" + name] = (w.sum().to_dict(), w.size().to_dict())

    def _counts(self, stat: str, key: pd.Series, own: np.ndarray | None, member: np.ndarray | None):
        sums, sizes = self.stats_[stat]
        s = key.map(sums).fillna(0.0).to_numpy(dtype=np.float64)
        n = key.map(sizes).fillna(0).to_numpy(dtype=np.float64)
        if own is not None:  # leave the passenger's own label out (of the groups they were counted in)
            m = np.ones(len(key), dtype=bool) if member is None else member
            s, n = s - own * m, n - m
        return s, n

    def _apply(self, X: pd.DataFrame, own: np.ndarray | None) -> pd.DataFrame:
        out = X.copy()
        keys = self._keys(X)
        values = []
        for name in ("Family", "Ticket"):
            s, n = self._counts(name, keys[name], own, None)
            out[f"{name}Known"] = (n > 0).astype(np.float32)
            values.append(_group_value(s, n))
        fam, tick = values
        # family evidence first; ticket mates fill in where the family says nothing or says "died"
        out["GroupSurvival"] = np.where(fam == 0.5, tick, np.where((fam == 0) & (tick == 1), 1.0, fam))
        # women and boys of the same surname or ticket tend to share one fate (survival rate among the others)
        wcg = self._woman_or_boy(X)
        s1, n1 = self._counts("WCGSurname", keys["Surname"], own, wcg)
        s2, n2 = self._counts("WCGTicket", keys["Ticket"], own, wcg)
        s, n = s1 + s2, n1 + n2
        out["WCGKnown"] = (n > 0).astype(np.float32)
        out["WCGSurvival"] = np.where(n > 0, s / np.maximum(n, 1), 0.5)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._apply(X, None)

    def fit_transform(self, X: pd.DataFrame, y: np.ndarray | None = None, **fit_params) -> pd.DataFrame:
        if y is None:
            raise ValueError("GroupSurvival needs the training labels")
        self._fit_stats(X, y)
        return self._apply(X, np.asarray(y, dtype=np.float64))

import numpy as np
import pandas as pd
import pytest

from competitions.titanic.features import GroupSurvival, TitanicFeatures, title_of
from kit import registry


def test_titles_parse_odd_names():
    names = pd.Series(["Braund, Mr. Owen Harris", 'Rothes, the Countess. of (Lucy Noel Martha Dyer-Edwards)',
                       "Oliva y Ocana, Dona. Fermina", "no comma here", None, "Smith, Mlle. Anne"])
    assert title_of(names).tolist() == ["Mr", "Mrs", "Mrs", "Unknown", "Unknown", "Miss"]


def _fold_features(comp, data, train_idx, valid_idx, y):
    pipe = comp.pipeline(comp.default_params)
    tr = pipe.fit_transform(data.train.iloc[train_idx], y[train_idx])
    return tr, pipe.transform(data.train.iloc[valid_idx]), pipe.transform(data.test)


def test_group_features_are_fold_safe(titanic_dir):
    comp = registry.get("titanic")
    data = comp.load(titanic_dir)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(data.y))
    tr, va = idx[:100], idx[100:]
    a = _fold_features(comp, data, tr, va, data.y)
    y2 = data.y.copy()
    y2[va] = rng.permutation(1 - y2[va])  # scramble every validation label
    b = _fold_features(comp, data, tr, va, y2)
    for x, z in zip(a, b, strict=True):
        assert np.array_equal(x, z)
    # and changing training labels does change them (the features do use labels)
    y3 = data.y.copy()
    y3[tr] = 1 - y3[tr]
    c = _fold_features(comp, data, tr, va, y3)
    assert not np.array_equal(a[1], c[1])


def test_group_survival_leaves_own_label_out():
    X = pd.DataFrame({"Surname": ["A", "A", "B", "C", "A"], "Fare": [10.0, 10.0, 5.0, 7.0, 3.0],
                      "Ticket": ["t1", "t1", "t2", "t3", "t9"], "Sex": ["female", "male", "female", "male", "female"],
                      "Title": ["Mrs", "Mr", "Miss", "Mr", "Miss"]})
    y = np.array([1, 0, 1, 0, 0])
    out = GroupSurvival().fit_transform(X, y)
    # row 0 sees row 1 (died) -> 0; row 1 sees row 0 (survived) -> 1; alone -> 0.5
    assert out["GroupSurvival"].tolist() == [0.0, 1.0, 0.5, 0.5, 0.5]
    # women/boys of surname A = rows 0 and 4 (row 1 is a man): each sees only the other; row 1 sees both
    # through the surname and row 0 again through ticket t1: (1 + 0 + 1) / 3
    assert out["WCGSurvival"].tolist() == pytest.approx([0.0, 2 / 3, 0.5, 0.5, 1.0])
    assert out["WCGKnown"].tolist() == [1, 1, 0, 0, 1]
    new = GroupSurvival().fit(X, y).transform(pd.DataFrame(
        {"Surname": ["A"], "Fare": [10.0], "Ticket": ["zz"], "Sex": ["male"], "Title": ["Master"]}))
    assert new["GroupSurvival"].tolist() == [1.0]
    assert new["WCGSurvival"].tolist() == [0.5]  # rows 0 and 4: one survived, one died


def test_unseen_categories_in_test_are_handled(titanic_dir):
    test = pd.read_csv(titanic_dir / "test.csv")
    test.loc[0, "Embarked"] = "X"
    test.loc[1, "Name"] = "Nobody, Capt. Zed"
    test.loc[2, "Cabin"] = "Z99"
    test.to_csv(titanic_dir / "test.csv", index=False)
    comp = registry.get("titanic")
    data = comp.load(titanic_dir)
    pipe = comp.pipeline(comp.default_params)
    pipe.fit_transform(data.train, data.y)
    x = pipe.transform(data.test)
    assert np.isfinite(x).all() and x.shape[0] == len(test)


def test_age_imputed_from_training_title_median():
    X = pd.DataFrame({"Name": ["a, Mr. x", "b, Mr. y", "c, Master. z", "d, Mr. w"], "Age": [20, 40, 4, np.nan],
                      "SibSp": 0, "Parch": 0, "Cabin": None, "Fare": 7.0, "Pclass": 3, "Ticket": "1"})
    f = TitanicFeatures().fit(X.iloc[:3])
    out = f.transform(X)
    assert out["Age"].tolist() == [20, 40, 4, 30]
    assert out["AgeMissing"].tolist() == [0, 0, 0, 1]

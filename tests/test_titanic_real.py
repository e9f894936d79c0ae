"""Kaggle's public Titanic files, when they sit at ../shared/data/titanic (they do in CI)."""

import pytest

from kit import registry
from kit.cv import cross_validate
from tests.conftest import SHARED_TITANIC

pytestmark = pytest.mark.skipif(not (SHARED_TITANIC / "train.csv").is_file(), reason="no ../shared/data/titanic")


def test_default_config_reaches_080_cv_accuracy():
    comp = registry.get("titanic")
    data = comp.load(SHARED_TITANIC)
    res = cross_validate(comp, data, comp.params(), seed=42, n_folds=5, progress=False)
    assert len(res.fold_scores) == 5
    assert res.mean >= 0.80, res.summary()

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, fbeta_score, hamming_loss, mean_squared_error

from kit import metrics


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_accuracy_matches_sklearn(rng):
    y, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    assert metrics.accuracy(y, p) == pytest.approx(accuracy_score(y, p))
    y3, p3 = rng.integers(0, 2, (200, 4)), rng.integers(0, 2, (200, 4))
    assert metrics.accuracy(y3, p3) == pytest.approx(accuracy_score(y3, p3))  # subset accuracy


@pytest.mark.parametrize("thresh", [0.2, 0.5, 0.8])
def test_accuracy_multi_matches_sklearn(rng, thresh):
    y = rng.integers(0, 2, (300, 6))
    probs = rng.random((300, 6))
    assert metrics.accuracy_multi(y, probs, thresh) == pytest.approx(1 - hamming_loss(y, probs >= thresh))


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_fbeta_samples_matches_sklearn(rng, beta):
    y = (rng.random((400, 17)) < 0.25).astype(int)
    pred = (rng.random((400, 17)) < 0.3).astype(int)
    y[:5] = 0  # rows with no true label
    pred[3:8] = 0  # rows with no prediction, some with neither
    ref = fbeta_score(y, pred, beta=beta, average="samples", zero_division=0)
    assert metrics.fbeta_samples(y, pred, beta) == pytest.approx(ref, abs=1e-12)
    if beta == 2.0:
        assert metrics.f2_samples(y, pred) == pytest.approx(ref, abs=1e-12)


def test_rmse_matches_sklearn(rng):
    y, p = rng.normal(size=100), rng.normal(size=100)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)))


def test_label_matrix_and_f2_on_tag_strings():
    classes = ["clear", "primary", "road"]
    m = metrics.label_matrix(["clear primary", "", "road unknown_tag", "primary  primary"], classes)
    assert m.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0]]
    pred = metrics.label_matrix(["clear", "road", "road", "primary"], classes)
    ref = fbeta_score(m, pred, beta=2, average="samples", zero_division=0)
    assert metrics.f2_samples(m, pred) == pytest.approx(ref)

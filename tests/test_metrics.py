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


# ---- Metric objects: every built-in checked against scikit-learn ---------------------------------------------
from sklearn import metrics as skm  # noqa: E402

from kit.errors import KitError  # noqa: E402


def _cases(rng):
    yb, pb = rng.integers(0, 2, 300), rng.random(300)
    yc, pc = rng.integers(0, 4, 300), rng.dirichlet(np.ones(4), 300)
    yml, pml = (rng.random((300, 5)) < 0.3).astype(int), rng.random((300, 5))
    yr, pr = rng.gamma(2.0, 50.0, 300), rng.gamma(2.0, 50.0, 300)
    return yb, pb, yc, pc, yml, pml, yr, pr


def test_every_builtin_metric_matches_sklearn(rng):
    yb, pb, yc, pc, yml, pml, yr, pr = _cases(rng)
    m = metrics.get
    assert m("accuracy")(yc, pc.argmax(1)) == pytest.approx(accuracy_score(yc, pc.argmax(1)))
    assert m("logloss")(yb, pb) == pytest.approx(skm.log_loss(yb, pb))
    assert m("logloss")(yc, pc) == pytest.approx(skm.log_loss(yc, pc))
    assert m("auc")(yb, pb) == pytest.approx(skm.roc_auc_score(yb, pb))
    assert m("auc")(yc, pc) == pytest.approx(skm.roc_auc_score(yc, pc, multi_class="ovr"))
    assert m("auc")(yml, pml) == pytest.approx(skm.roc_auc_score(yml, pml))
    assert m("f1")(yb, pb >= 0.5) == pytest.approx(skm.f1_score(yb, pb >= 0.5))
    assert m("f1")(yc, pc.argmax(1)) == pytest.approx(skm.f1_score(yc, pc.argmax(1), average="macro"))
    assert m("f1_macro")(yc, pc.argmax(1)) == pytest.approx(skm.f1_score(yc, pc.argmax(1), average="macro"))
    assert m("f1_samples")(yml, pml >= 0.5) == pytest.approx(
        skm.f1_score(yml, pml >= 0.5, average="samples", zero_division=0))
    assert m("f2_samples")(yml, pml >= 0.5) == pytest.approx(
        fbeta_score(yml, pml >= 0.5, beta=2, average="samples", zero_division=0))
    assert m("rmse")(yr, pr) == pytest.approx(np.sqrt(mean_squared_error(yr, pr)))
    assert m("rmsle")(yr, pr) == pytest.approx(skm.root_mean_squared_log_error(yr, pr))
    assert m("mae")(yr, pr) == pytest.approx(skm.mean_absolute_error(yr, pr))
    assert m("r2")(yr, pr) == pytest.approx(skm.r2_score(yr, pr))


def test_metric_objects_carry_direction_and_what_they_score():
    assert metrics.get("logloss").direction == "minimize" and metrics.get("logloss").takes_probs
    assert metrics.get("auc").direction == "maximize" and metrics.get("auc").takes_probs
    assert metrics.get("accuracy").direction == "maximize" and not metrics.get("accuracy").takes_probs
    assert metrics.get("rmsle").target_transform == "log1p"
    assert metrics.get("log_loss") is metrics.get("logloss")  # aliases
    assert metrics.get("rmse").better(1.0, 2.0) and not metrics.get("accuracy").better(0.5, 0.6)
    custom = metrics.Metric("gini", lambda y, p: 2 * skm.roc_auc_score(y, p) - 1, needs="probs")
    assert metrics.get(custom) is custom and str(custom) == "gini"
    with pytest.raises(KitError, match="unknown metric 'nope'; built in: accuracy, logloss"):
        metrics.get("nope")

"""What kit relies on in Optuna beyond its public API, pinned: the journal's heartbeat contract, and the
public-attribute check of whether a distribution can sample a value."""

import inspect
import time
import types

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import kit.tune.storage as storage_module
from kit.tune.objective import holds
from kit.tune.storage import HEARTBEAT_ATTR, HeartbeatJournalStorage, fail_stale_trials, open_storage


def test_optuna_heartbeat_contract_is_what_the_journal_implements():
    # HeartbeatJournalStorage subclasses this private class: a rename or a new abstract method fails here
    from optuna.storages._heartbeat import BaseHeartbeat

    assert BaseHeartbeat.__abstractmethods__ == {
        "record_heartbeat", "_get_stale_trial_ids", "get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    assert issubclass(optuna.storages.RDBStorage, BaseHeartbeat)
    assert not inspect.isabstract(HeartbeatJournalStorage)


def test_optimize_beats_on_a_journal(tmp_path):
    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}", heartbeat=1))
    study.optimize(lambda t: time.sleep(1.3) or t.suggest_float("x", 0, 1), n_trials=1)
    assert HEARTBEAT_ATTR in study.trials[0].system_attrs


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask() outside optimize, on purpose
def test_stale_journal_trial_is_failed_and_its_copy_enqueued(tmp_path, monkeypatch):
    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}", heartbeat=1))
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    assert fail_stale_trials(study) == []  # just started: within the grace period
    now = time.time
    monkeypatch.setattr(storage_module, "time", types.SimpleNamespace(time=lambda: now() + 10))
    assert fail_stale_trials(study) == [0]
    t0, t1 = study.get_trials()
    assert t0.state == TrialState.FAIL and t1.state == TrialState.WAITING
    assert t1.system_attrs["failed_trial"] == 0 and t1.params == t0.params


@pytest.mark.parametrize("dist, value, expected", [
    (FloatDistribution(0.0, 1.0), 0.5, True),
    (FloatDistribution(0.0, 1.0), 1.0, True),
    (FloatDistribution(0.0, 1.0), 1.5, False),
    (FloatDistribution(1e-4, 1e-1, log=True), 3e-3, True),
    (FloatDistribution(0.0, 1.0, step=0.25), 0.75, True),
    (FloatDistribution(0.0, 1.0, step=0.25), 0.3, False),
    (FloatDistribution(0.1, 0.5, step=0.1), 0.3, True),  # 0.3 - 0.1 is not exactly 2 * 0.1
    (IntDistribution(1, 9, step=2), 5, True),
    (IntDistribution(1, 9, step=2), 4, False),
    (IntDistribution(16, 512, log=True), 128, True),
    (IntDistribution(16, 512, log=True), 8, False),
    (CategoricalDistribution(["adam", "sgd"]), "sgd", True),
    (CategoricalDistribution(["adam", "sgd"]), "rmsprop", False),
    (CategoricalDistribution([0.1, 0.2]), float("nan"), False),
    (IntDistribution(1, 9), "three", False),
])
def test_holds(dist, value, expected):
    assert holds(dist, value) is expected


def test_a_stored_study_with_other_choices_for_a_parameter_is_one_line(tmp_path):
    from kit.errors import KitError
    from kit.tune.objective import FixedParams

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'old.db'}")
    study.add_trial(optuna.trial.create_trial(  # a trial of an older kit, whose nets had two embeddings
        params={"num_emb": "none"}, distributions={"num_emb": CategoricalDistribution(["periodic", "none"])},
        value=1.0))
    trial = FixedParams(study.ask(), {})
    assert trial.suggest_float("lr", 1e-3, 1e-2) > 0  # other parameters are unaffected
    with pytest.raises(KitError, match=r"num_emb: this study's earlier trials chose from other values .* new --study"):
        trial.suggest_categorical("num_emb", ["periodic", "ple", "none"])
    assert FixedParams(study.ask(), {"num_emb": "ple"}).suggest_categorical("num_emb", ["x"]) == "ple"  # --set

"""`kit tune`: a tiny study end to end, resuming, two workers on one journal, a killed worker, bad input, pruning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from competitions.titanic import Titanic
from competitions.titanic.synthetic import generate
from kit import registry
from kit.commands.tune import main
from kit.cv import make_folds
from kit.errors import KitError
from kit.io import sha256_file
from kit.submission import validate_submission
from kit.tune.objective import EPOCH_STEPS, fold_end_step, objective, probe_search_space
from kit.tune.study import make_pruner

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--folds", "2", "--set", "epochs=2", "--threads", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("titanic")
    generate(d, n_train=150, n_test=40, seed=0)
    return d


def args(data_dir: Path, tmp: Path, *extra: str) -> list[str]:
    return ["--comp", "titanic", "--data-dir", str(data_dir), "--runs", str(tmp / "runs"),
            "--out", str(tmp / "subs"), *FAST, *extra]


def journal(path: Path, study: str = "titanic") -> optuna.Study:
    return optuna.load_study(study_name=study, storage=JournalStorage(JournalFileBackend(str(path))))


def test_tiny_study_writes_all_outputs(data_dir, tmp_path, capsys):
    assert main(args(data_dir, tmp_path, "--n-trials", "4", "--pruner", "none", "--repeats", "1")) == 0
    out = capsys.readouterr().out
    study_dir = tmp_path / "runs" / "titanic" / "titanic"
    assert (tmp_path / "runs" / "titanic" / "optuna.db").is_file()
    for name in ("best_params.json", "trials.csv", "optimization_history.png", "param_importances.png",
                 "threshold_curve.png", "thresholds.json", "thresholds.txt", "tune_result.json"):
        assert (study_dir / name).stat().st_size > 0, name
    assert len(pd.read_csv(study_dir / "trials.csv")) == 4
    best = json.loads((study_dir / "best_params.json").read_text())
    assert best["params"]["epochs"] == 2 and set(best["params"]) == set(Titanic.default_params)
    study = optuna.load_study(study_name="titanic", storage=f"sqlite:///{tmp_path / 'runs/titanic/optuna.db'}")
    assert best["trial"] in (study.best_trial.number, 0)  # the best, or trial 0: the defaults
    # every epoch of every fold and every fold's end was reported for pruning
    assert set(study.best_trial.intermediate_values) == {0, 1, fold_end_step(0), EPOCH_STEPS, EPOCH_STEPS + 1,
                                                         fold_end_step(1)}
    subs = sorted((tmp_path / "subs" / "titanic").glob("*.csv"))
    assert len(subs) == 1
    validate_submission(registry.get("titanic"), subs[0], data_dir / "gender_submission.csv")
    sidecar = json.loads(subs[0].with_suffix(".json").read_text())
    assert sidecar["tune"]["study"] == "titanic" and sidecar["tune"]["chosen_trial"] == best["trial"]
    # the refit (same seed, same folds) reproduces the chosen trial's CV exactly (the best, or the defaults)
    assert sidecar["cv"]["mean"] == pytest.approx(best["value"], abs=1e-6)
    assert sidecar["tune"]["chosen_trial"] == best["trial"] and best["choice"].startswith(("refitting", "keeping"))
    thr = json.loads((study_dir / "thresholds.json").read_text())
    assert thr["score"] >= thr["score_at_0.5"]
    assert "OOF accuracy at 0.5" in out and "submission:" in out


def test_second_run_adds_trials(data_dir, tmp_path):
    assert main(args(data_dir, tmp_path, "--n-trials", "6", "--no-refit")) == 0
    assert main(args(data_dir, tmp_path, "--n-trials", "2", "--no-refit")) == 0
    study = optuna.load_study(study_name="titanic", storage=f"sqlite:///{tmp_path / 'runs/titanic/optuna.db'}")
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert not (tmp_path / "subs").exists()  # --no-refit writes no submission
    assert len(pd.read_csv(tmp_path / "runs/titanic/titanic/trials.csv")) == 8


@pytest.mark.parametrize("sampler, pruner", [("random", "hyperband"), ("cmaes", "median")])
def test_other_samplers_and_pruners_run(data_dir, tmp_path, sampler, pruner):
    assert main(args(data_dir, tmp_path, "--n-trials", "2", "--no-refit", "--sampler", sampler,
                     "--pruner", pruner)) == 0
    study = optuna.load_study(study_name="titanic", storage=f"sqlite:///{tmp_path / 'runs/titanic/optuna.db'}")
    assert len(study.trials) == 2 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    assert study.trials[0].state == TrialState.COMPLETE  # nothing to compare the first trial with


def test_two_workers_share_one_journal(data_dir, tmp_path):
    path = tmp_path / "study.log"
    assert main(args(data_dir, tmp_path, "--n-trials", "5", "--n-jobs", "2", "--no-refit",
                     "--storage", f"journal:{path}", "--study", "shared")) == 0
    trials = journal(path, "shared").get_trials()
    assert sorted(t.number for t in trials) == list(range(5))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert not any("failed_trial" in t.system_attrs for t in trials)
    # each worker has its own sampler seed: no configuration was evaluated twice
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 5


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_killed_worker_trial_is_failed_and_retried(data_dir, tmp_path, kind):
    path = tmp_path / ("study.log" if kind == "journal" else "study.db")
    url = f"journal:{path}" if kind == "journal" else f"sqlite:///{path}"

    def trials() -> list[optuna.trial.FrozenTrial]:
        storage = JournalStorage(JournalFileBackend(str(path))) if kind == "journal" else url
        return optuna.load_study(study_name="titanic", storage=storage).get_trials()

    cmd = [sys.executable, "-m", "kit", "tune", *args(data_dir, tmp_path, "--n-trials", "1", "--no-refit",
                                                   "--storage", url, "--heartbeat", "1")]
    slow = [a if a != "epochs=2" else "epochs=400" for a in cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(slow, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:  # wait until the trial is mid-training
            # poll only once the worker has created the study: two processes creating SQLite tables can collide
            if "trial(s) so far" in (tmp_path / "killed.log").read_text():
                try:
                    running = [t for t in trials() if t.state == TrialState.RUNNING]
                except Exception:  # the study (or the SQLite tables) not created yet
                    running = []
                if running and running[0].intermediate_values:
                    break
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-1500:]
            time.sleep(0.3)
        else:
            pytest.fail("trial never started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    assert trials()[0].state == TrialState.RUNNING  # nobody told the storage
    time.sleep(2.5)  # past the grace period (2 heartbeats)
    # the same command again (a study refuses other settings): it fails the dead trial and runs its copy
    log = open(tmp_path / "resumed.log", "w")
    proc = subprocess.Popen(slow, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            ts = trials() if "trial(s) so far" in (tmp_path / "resumed.log").read_text() else []
            if len(ts) == 2 and ts[1].state == TrialState.RUNNING and ts[1].intermediate_values:
                break
            assert proc.poll() is None, (tmp_path / "resumed.log").read_text()[-1500:]
            time.sleep(0.3)
        else:
            pytest.fail("the retry never started")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    t0, t1 = trials()
    assert t0.state == TrialState.FAIL
    assert t1.system_attrs["failed_trial"] == 0 and t1.params == t0.params
    assert "marked failed and queued for retry" in (tmp_path / "resumed.log").read_text()


@pytest.mark.parametrize("extra, expected", [
    (["--comp", "nosuch"], "unknown competition 'nosuch'; known:"),
    (["--sampler", "grid"], "unknown sampler 'grid'"),
    (["--pruner", "asha"], "unknown pruner 'asha'"),
    (["--n-trials", "0"], "--n-trials must be at least 1"),
    (["--storage", "not a url"], "not a database URL"),
    (["--storage", "nosuchdb://x/y"], "cannot open storage nosuchdb://x/y"),
    (["--storage", "journal:/nonexistent/dir/j.log"], "folder /nonexistent/dir does not exist"),
    (["--set", "dropout=1.5"], "titanic: dropout must be in [0, 1)"),
])
def test_bad_input_one_line_and_study_untouched(data_dir, tmp_path, capsys, extra, expected):
    db = tmp_path / "runs" / "titanic" / "optuna.db"
    db.parent.mkdir(parents=True)
    optuna.create_study(study_name="titanic", storage=f"sqlite:///{db}", direction="maximize")
    before = sha256_file(db)
    argv = args(data_dir, tmp_path, "--n-trials", "2") + extra
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert sha256_file(db) == before


def test_unreachable_postgres_is_one_line_without_password(data_dir, tmp_path, capsys):
    pytest.importorskip("psycopg2")
    url = "postgresql://kit:s3cret@127.0.0.1:9/optuna"  # nothing listens on the discard port
    assert main(args(data_dir, tmp_path, "--storage", url)) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open storage postgresql://kit:***@127.0.0.1:9/optuna" in err[0]
    assert "s3cret" not in err[0]


def test_search_space_value_rejected_by_competition():
    class Wide(Titanic):
        def search_space(self, trial):
            return {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
                    "dropout": trial.suggest_float("dropout", 0.0, 1.0)}

    with pytest.raises(KitError, match=r"offers dropout=1\.0, which it rejects"):
        probe_search_space(Wide(), {})
    probe_search_space(Titanic(), {})


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruner_prunes_constructed_objective(pruner):
    """Learning curves whose level is the parameter: the hopeless ones must be stopped early."""

    def curve(trial: optuna.Trial) -> float:
        level = trial.suggest_float("level", 0.0, 1.0)
        for fold in range(2):
            for epoch in range(10):
                trial.report(level * (1 - 0.5 ** (epoch + 1)), step=fold * EPOCH_STEPS + epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return level

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=make_pruner(pruner, n_folds=2))
    study.optimize(curve, n_trials=30)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(pruned) >= 5
    assert study.best_value > max(t.params["level"] for t in pruned)
    assert make_pruner("none", 2).prune(study, pruned[0]) is False


def test_epoch_callback_stops_fastai_training(data_dir):
    """The fastai callback reports after the first epoch and stops the fit when the pruner says so."""

    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    comp = registry.get("titanic")
    data = comp.load(data_dir)
    folds = make_folds(comp.task, data.y, 2, 0)
    study = optuna.create_study(direction="maximize", pruner=Always())
    study.optimize(lambda t: objective(t, comp, data, 0, folds, {"epochs": 5}), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    assert 0 <= trial.intermediate_values[0] <= 1


# ---- tuning that survives small data: repeated k-fold, trial SE, defaults kept unless beaten by more than SE ----
def _trial(number_value, folds, defaults=False):
    import optuna

    d = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    return optuna.trial.create_trial(params={"lr": 1e-3}, distributions=d, value=float(np.mean(folds)),
                                     user_attrs={"fold_scores": folds, "defaults": defaults,
                                                 "params": {"lr": 1e-3, "tag": number_value}})


def test_refit_keeps_the_defaults_unless_the_best_beats_them_by_more_than_its_standard_error():
    import optuna

    from kit.tune.selection import choose_trial

    base = [0.80, 0.82, 0.78, 0.81, 0.79, 0.80]
    noise = [0.82, 0.80, 0.80, 0.80, 0.80, 0.798]  # +0.003 on average, fold differences of ±0.02
    clear = [0.85, 0.86, 0.83, 0.85, 0.84, 0.85]  # +0.045, every fold
    for other, keep in ((noise, True), (clear, False)):
        study = optuna.create_study(direction="maximize")
        study.add_trial(_trial("defaults", base, defaults=True))
        study.add_trial(_trial("tuned", other))
        chosen, why = choose_trial(study, study.best_trial, True)
        assert chosen.user_attrs["params"]["tag"] == ("defaults" if keep else "tuned"), why
        assert ("keeping the defaults" in why) == keep and "±" in why
    study = optuna.create_study(direction="minimize")  # lower is better: the sign follows the metric
    study.add_trial(_trial("defaults", base, defaults=True))
    study.add_trial(_trial("tuned", [b - 0.05 for b in base]))
    assert choose_trial(study, study.best_trial, False)[0].user_attrs["params"]["tag"] == "tuned"


def test_a_search_margin_must_survive_fresh_folds_the_trial_was_not_chosen_on():
    import optuna

    from kit.tune.selection import choose_trial

    base = [0.80, 0.82, 0.78, 0.81, 0.79, 0.80]
    lucky = [0.85, 0.86, 0.83, 0.85, 0.84, 0.85]  # a clear margin on the search's folds
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial("defaults", base, defaults=True))
    study.add_trial(_trial("tuned", lucky))
    seen = []

    def same(best, defaults):  # on fresh folds the two are the same configuration in all but name
        seen.append((best["tag"], defaults["tag"]))
        return base, [b + 0.001 * (-1) ** i for i, b in enumerate(base)]

    chosen, why = choose_trial(study, study.best_trial, True, confirm=same)
    assert seen == [("tuned", "defaults")] and chosen.user_attrs["params"]["tag"] == "defaults"
    assert "fresh paired folds" in why and "selection, not skill" in why
    chosen, why = choose_trial(study, study.best_trial, True, confirm=lambda b, d: (lucky, base))
    assert chosen.user_attrs["params"]["tag"] == "tuned" and "it was not chosen on" in why


def test_confirming_splits_are_not_the_search_splits(titanic_dir):
    from kit import registry
    from kit.tune.selection import confirming_splits
    from kit.tune.study import repeated_folds

    comp = registry.get("titanic")
    data = comp.load(titanic_dir)
    search = repeated_folds(comp, data, 3, 42, 2)
    fresh = confirming_splits(comp, data, 3, 42, 2)
    assert len(fresh) == 2 and all(not np.array_equal(f, s) for f in fresh for s in search)
    assert all(np.array_equal(a, b) for a, b in zip(fresh, confirming_splits(comp, data, 3, 42, 2), strict=True))


def test_small_data_tunes_on_repeated_folds_starting_from_the_defaults(titanic_dir, workdir, capsys, caplog):
    import logging

    import optuna

    with caplog.at_level(logging.INFO, logger="kit.tune.objective"):
        rc = main(["--comp", "titanic", "--data-dir", str(titanic_dir), "--n-trials", "2", "--folds", "2",
                   "--set", "epochs=2", "--no-refit"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    err = caplog.text
    study = optuna.load_study(study_name="titanic", storage="sqlite:///runs/titanic/optuna.db")
    first = study.trials[0]
    assert first.user_attrs.get("defaults") and first.params["width"] == 64 and first.params["dropout"] == 0.3
    assert all(len(t.user_attrs["fold_scores"]) == 6 for t in study.trials)  # 160 rows: 3 x 2-fold
    assert "standard error over 6 folds = 3 split(s) x 2" in err
    assert "defaults" in out and "±" in out


def test_only_worker_zero_queues_the_defaults(titanic_dir, workdir, capsys):
    """Machines started together on one study must not each queue (and run) the defaults trial."""
    rc = main(["--comp", "titanic", "--data-dir", str(titanic_dir), "--n-trials", "1", "--folds", "2",
               "--set", "epochs=2", "--no-refit", "--worker", "1", "--repeats", "1"])
    assert rc == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="titanic", storage="sqlite:///runs/titanic/optuna.db")
    assert len(study.trials) == 1 and not study.trials[0].user_attrs.get("defaults")


def test_spawned_worker_prepares_the_competition_as_the_command_did(tmp_path):
    """A worker of an image study rebuilds the competition from its config: it must decode at the `--set size`
    (it decoded at the preset's size before kit.prepare), train the `--model` family and cache under `--runs`."""
    from kit.tune.study import TuneConfig, worker_competition

    cfg = TuneConfig(comp="planet", data_dir=tmp_path, storage="sqlite://", study="s", n_trials=1, timeout=None,
                     sampler="tpe", pruner="none", seed=0, n_folds=2, heartbeat=0, fixed={"size": 40},
                     runs=tmp_path / "runs")
    comp = worker_competition(cfg)
    assert comp.decode_size() == 40 != registry.get("planet").decode_size()
    assert comp.cache_dir == tmp_path / "runs" / "planet" / "cache"
    tabular = worker_competition(TuneConfig(**{**cfg.__dict__, "comp": "titanic", "fixed": {}, "model": "lightgbm"}))
    assert tabular.model_family == "lightgbm" and registry.get("titanic").model_family == "mlp"

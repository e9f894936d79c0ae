"""Hyper-parameter search with Optuna: `study` (samplers, pruners, workers), `objective` (the CV metric,
pruned per epoch and fold), `storage` (SQLite / journal / PostgreSQL with heartbeats), `outputs` (what a
search leaves behind). The `kit tune` command on top of it is `kit.commands.tune`."""

SAMPLERS = ("tpe", "random", "cmaes")  # here, not in `study`: `kit tune --help` lists them without importing optuna
PRUNERS = ("median", "hyperband", "none")

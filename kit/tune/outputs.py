"""What a tuning run leaves under runs/<comp>/<study>/: best params, trials.csv, plots, threshold report."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from kit import plots
from kit.decoders import Decoder
from kit.io import atomic_write_csv, atomic_write_json, atomic_write_text
from kit.metrics import Metric

log = logging.getLogger(__name__)


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Number of trials per state, e.g. {'COMPLETE': 6, 'PRUNED': 2}."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return dict(sorted(counts.items()))


def write_trials(study: optuna.Study, out_dir: Path) -> Path:
    """`trials.csv`: Optuna's trials_dataframe (one row per trial, params, states, durations, user attrs)."""
    return atomic_write_csv(out_dir / "trials.csv", study.trials_dataframe())


def write_best(study: optuna.Study, params: dict[str, Any], out_dir: Path, extra: dict[str, Any],
               trial: optuna.trial.FrozenTrial | None = None) -> Path:
    """`best_params.json`: the full parameter set of the chosen trial (the best, or the defaults when the best
    does not beat them by more than its standard error), usable as `kit train --params`."""
    best = trial or study.best_trial
    return atomic_write_json(out_dir / "best_params.json", {
        "study": study.study_name,
        "trial": best.number,
        "value": best.value,
        "fold_scores": best.user_attrs.get("fold_scores"),
        "params": params,
        "searched": best.params,
        **extra,
    })


def write_study_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optimisation history and parameter importances as PNG (importances need two finished trials)."""
    from optuna.visualization import matplotlib as ovm

    out: list[Path] = []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if complete:
            out.append(plots.save(ovm.plot_optimization_history(study).figure, out_dir / "optimization_history.png"))
        if len(complete) >= 2:
            try:
                ax = ovm.plot_param_importances(study)
                out.append(plots.save(ax.figure, out_dir / "param_importances.png"))
            except (ValueError, RuntimeError) as e:  # e.g. every trial had the same params
                log.warning("no parameter importance plot: %s", str(e).splitlines()[0])
    return out


def write_thresholds(decoder: Decoder, metric: Metric | str, out_dir: Path) -> list[Path]:
    """`thresholds.json`, `thresholds.txt` (the decoder's report) and `threshold_curve.png` (metric vs threshold)."""
    out = [atomic_write_json(out_dir / "thresholds.json", decoder.to_json())]
    out.append(atomic_write_text(out_dir / "thresholds.txt", "\n".join(decoder.report(metric)) + "\n"))
    curve = decoder.curve()
    if curve is not None:
        out.append(plots.threshold_curve(np.asarray(curve[0]), np.asarray(curve[1]), float(curve[2]), str(metric),
                                         out_dir / "threshold_curve.png"))
    return out

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
from kit.io import atomic_write_csv, atomic_write_json, atomic_write_text

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


def write_best(study: optuna.Study, params: dict[str, Any], out_dir: Path, extra: dict[str, Any]) -> Path:
    """`best_params.json`: the full parameter set of the best trial (usable as `kit train --params`)."""
    best = study.best_trial
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


def threshold_report(decoding: dict[str, Any], metric: str) -> list[str]:
    """Readable lines: OOF metric at 0.5, at the best global threshold, with per-class thresholds and the guard."""
    kind = decoding.get("kind")
    if kind == "threshold":
        return [f"OOF {metric} at 0.5: {decoding['score_at_0.5']:.4f}",
                f"OOF {metric} at the best threshold {decoding['threshold']:.2f}: {decoding['score']:.4f}"]
    if kind == "per_class":
        lines = [
            f"OOF {metric} at 0.5: {decoding['score_at_0.5']:.4f}",
            f"OOF {metric} at the best global threshold {decoding['global_threshold']:.2f}: "
            f"{decoding['score_global']:.4f}",
            f"OOF {metric} with per-class thresholds: {decoding['score_per_class_raw']:.4f} raw, "
            f"{decoding['score_per_class']:.4f} after the rare-class guard"
            + (" (guard fell back to the global threshold)" if decoding.get("fell_back_to_global") else ""),
            f"{'class':<20} {'n_pos':>6} {'raw':>6} {'guarded':>8} {'shift':>7}",
        ]
        for c in decoding.get("classes", []):
            lines.append(f"{c['class']:<20} {c['n_pos']:>6d} {c['raw']:>6.3f} {c['guarded']:>8.3f} {c['shift']:>+7.3f}")
        if abs(decoding.get("score", decoding["score_per_class"]) - decoding["score_per_class"]) > 1e-12:
            lines.append(f"OOF {metric} after the competition's own decoding rules: {decoding['score']:.4f}")
        return lines
    return [f"OOF {metric}: {decoding.get('score', float('nan')):.4f} (no decision threshold for this task)"]


def write_thresholds(decoding: dict[str, Any], metric: str, out_dir: Path) -> list[Path]:
    """`thresholds.json`, `thresholds.txt` (the report) and `threshold_curve.png` (metric vs global threshold)."""
    out = [atomic_write_json(out_dir / "thresholds.json", {k: v for k, v in decoding.items() if k != "curve"})]
    lines = threshold_report(decoding, metric)
    out.append(atomic_write_text(out_dir / "thresholds.txt", "\n".join(lines) + "\n"))
    curve = decoding.get("curve")
    if curve:
        chosen = decoding.get("threshold", decoding.get("global_threshold", 0.5))
        out.append(plots.threshold_curve(np.asarray(curve["grid"]), np.asarray(curve["score"]), chosen, metric,
                                         out_dir / "threshold_curve.png"))
    return out

"""Which trial a study refits: the defaults unless a trial beats them, and beats them on folds it was not chosen on.

The best of N trials is the maximum of N noisy estimates: on the search's own folds it beats the defaults by
more than one standard error by chance alone as N grows (measured: an 8-trial Titanic study refit a trial that
"beat" the defaults by +0.0022 ± 0.0020 and scored 0.7871 on the hidden labels against the defaults' 0.7990). So
the rule has two stages:

1. on the search's folds, the best trial must beat the defaults' trial by more than one standard error of their
   paired fold differences (else the search found only noise: keep the defaults);
2. then both are cross-validated again on fresh splits (other fold seeds, the same number of repeats), which
   played no part in choosing the trial, and the best is kept only if it beats the defaults there too by more
   than one standard error. Its score there is an unbiased estimate of the gain; the selection cannot inflate it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna

from kit.tune.objective import paired_gain

# seeds of the confirming splits: far from the search's (seed + 1000 r), the same for every run of a study
CONFIRM_SEED_OFFSET = 7919

Confirm = Callable[[dict, dict], tuple[list[float], list[float]]]


def defaults_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial that ran the defaults, if any."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return next((t for t in done if t.user_attrs.get("defaults")), None)


def choose_trial(study: optuna.Study, best: optuna.trial.FrozenTrial, greater_is_better: bool,
                 confirm: Confirm | None = None) -> tuple[optuna.trial.FrozenTrial, str]:
    """The trial to refit and why (module docstring); `confirm(best_params, default_params)` returns both
    configurations' fold scores on fresh splits (stage 2; skipped when None)."""
    base = defaults_trial(study)
    if base is None:
        return best, f"refitting the best trial {best.number} (the defaults' trial did not complete)"
    if base.number == best.number:
        return best, f"refitting the defaults (trial {best.number}): no trial beat them"
    a, b = best.user_attrs.get("fold_scores") or [], base.user_attrs.get("fold_scores") or []
    if len(a) != len(b) or not a:
        return best, f"refitting the best trial {best.number} (no fold scores to compare with the defaults)"
    gain, se = paired_gain(a, b, greater_is_better)
    if gain <= se:
        return base, (f"keeping the defaults (trial {base.number}): the best trial {best.number} beats them by only "
                      f"{gain:+.4f} ± {se:.4f} over {len(a)} paired folds, within one standard error")
    found = (f"the best trial {best.number} beats the defaults (trial {base.number}) by {gain:+.4f} ± {se:.4f} "
             f"over {len(a)} paired folds of the search")
    if confirm is None:
        return best, f"refitting the best trial {best.number}: {found}"
    fresh_best, fresh_base = confirm(best.user_attrs.get("params") or {}, base.user_attrs.get("params") or {})
    gain2, se2 = paired_gain(fresh_best, fresh_base, greater_is_better)
    again = f"{gain2:+.4f} ± {se2:.4f} over {len(fresh_best)} fresh paired folds"
    if gain2 > se2:
        return best, f"refitting the best trial {best.number}: {found}, and by {again} it was not chosen on"
    return base, (f"keeping the defaults (trial {base.number}): {found}, but only by {again} it was not chosen "
                  "on (the search's margin was selection, not skill)")


def confirming_splits(comp, data, n_folds: int, seed: int, repeats: int) -> list[np.ndarray]:
    """Fold assignments the search never used, as many as it used."""
    from kit.cv import make_folds

    base = seed + CONFIRM_SEED_OFFSET
    return [make_folds(comp.task, data.y, n_folds, base + 1000 * r, comp.fold_groups(data)) for r in range(repeats)]


def cv_confirm(comp, data, n_folds: int, seed: int, repeats: int) -> Confirm:
    """A `confirm` for `choose_trial`: both parameter sets cross-validated on the confirming splits."""
    from kit.cv import cross_validate

    splits = confirming_splits(comp, data, n_folds, seed, repeats)

    def run(best_params: dict, default_params: dict) -> tuple[list[float], list[float]]:
        scores: dict[str, list[float]] = {"best": [], "defaults": []}
        for name, params in (("best", best_params), ("defaults", default_params)):
            for r, folds in enumerate(splits):
                res = cross_validate(comp, data, comp.params(params), seed + CONFIRM_SEED_OFFSET + 1000 * r,
                                     folds=folds, progress=False)
                scores[name] += res.fold_scores
        return scores["best"], scores["defaults"]

    return run

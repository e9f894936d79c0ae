"""Blending finished runs on their shared folds: `mean`, `rank`, `hill` (Caruana selection) and `stack`.

Every method returns out-of-fold predictions of the blend on the runs' own folds, so the blend's CV and the
decoding re-fit on its OOF are as honest as a single run's: `stack` fits each fold's stacker on the other folds'
OOF rows only; `hill` chooses its weights on all OOF rows (as Caruana et al. do), and also reports a nested CV
whose weights never saw the fold they score. `blend_and_submit` turns a blend into a submission and a run folder
laid out like `kit train`'s, so blends can themselves be blended and put on the board.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from kit.cv import CVResult
from kit.decoders import Decoder
from kit.ensemble import METHODS
from kit.ensemble.runs import Run, check_compatible, read_run
from kit.errors import DataError, KitError
from kit.io import sha256_file
from kit.run import RUNS_DIR, row_id_col, submit_run
from kit.spec import Competition, Data
from kit.submission import SUBMISSIONS_DIR, git_commit, utc_stamp

HILL_STEPS = 25  # additions after the best single run; with a handful of runs the climb stops well before
EPS = 1e-6


@dataclass
class Blended:
    """A blend's out-of-fold and test predictions, fold scores, and how it was made."""

    method: str
    oof: np.ndarray
    test: np.ndarray
    fold_scores: list[float]
    weights: list[float] | None = None  # one per input, summing to 1 (mean, rank, hill)
    detail: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---- mean and rank --------------------------------------------------------------------------------------
def weighted_mean(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of same-shape arrays."""
    w = np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), np.stack([np.asarray(a, dtype=np.float64) for a in arrays]), axes=1)


def rank_scale(oof: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column as its mid-rank among the OOF values, scaled to [0, 1] (test values ranked against the OOF
    values, so OOF and test land on the same scale and a threshold chosen on OOF means the same on test)."""
    o2, t2 = np.atleast_2d(oof.T).T, np.atleast_2d(test.T).T
    ro, rt = np.empty_like(o2, dtype=np.float64), np.empty_like(t2, dtype=np.float64)
    for j in range(o2.shape[1]):
        ref = np.sort(o2[:, j])
        for src, dst in ((o2, ro), (t2, rt)):
            lo = np.searchsorted(ref, src[:, j], side="left")
            hi = np.searchsorted(ref, src[:, j], side="right")
            dst[:, j] = (lo + hi) / (2.0 * len(ref))
    return ro.reshape(oof.shape), rt.reshape(test.shape)


# ---- hill climbing --------------------------------------------------------------------------------------
def hill_climb(oofs: Sequence[np.ndarray], score: Callable[[np.ndarray], float], greater_is_better: bool,
               max_steps: int = HILL_STEPS) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Greedy forward selection with replacement (Caruana et al. 2004) -> (counts per input, steps taken).

    Starts from the best single input, then repeatedly adds (again, possibly) the input whose addition most
    improves `score` of the mean of the selected inputs; stops after `max_steps` additions or when no addition
    improves. Written by hand: scikit-learn and friends stack with a learner, none selects an ensemble on OOF
    predictions like this.
    """
    better = (lambda a, b: a > b) if greater_is_better else (lambda a, b: a < b)
    arrs = [np.asarray(a, dtype=np.float64) for a in oofs]
    singles = [score(a) for a in arrs]
    best = int(np.argmax(singles) if greater_is_better else np.argmin(singles))
    counts = np.zeros(len(arrs), dtype=np.int64)
    counts[best] = 1
    total, current = arrs[best].copy(), singles[best]
    steps = [{"add": best, "score": float(current)}]
    for _ in range(max_steps):
        n = counts.sum()
        cand = [score((total + a) / (n + 1)) for a in arrs]
        j = int(np.argmax(cand) if greater_is_better else np.argmin(cand))
        if not better(cand[j], current):
            break
        counts[j] += 1
        total += arrs[j]
        current = cand[j]
        steps.append({"add": j, "score": float(current)})
    return counts, steps


# ---- stacking -------------------------------------------------------------------------------------------
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _binary_fit(x: np.ndarray, y: np.ndarray, seed: int) -> LogisticRegression | float:
    y = np.asarray(y).astype(np.int64)
    if len(np.unique(y)) < 2:  # a class absent from these rows: predict its (constant) rate
        return float(y.mean()) if len(y) else 0.5
    return LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, y)


def _binary_predict(model: LogisticRegression | float, x: np.ndarray) -> np.ndarray:
    if isinstance(model, float):
        return np.full(len(x), model)
    return model.predict_proba(x)[:, 1]


def _coef(model: Any) -> dict[str, Any]:
    if isinstance(model, float):
        return {"constant": model}
    return {"intercept": np.ravel(model.intercept_).round(6).tolist(), "coef": np.round(model.coef_, 6).tolist()}


class Stacker:
    """A linear model on the inputs' predictions: logistic regression on their logits (binary; per class for
    multi-label), multinomial on their log-probabilities (multiclass), ridge on the values (regression, per
    output; a missing target, such as an absent keypoint, is left out of that output's fit)."""

    def __init__(self, task: str, n_classes: int | None = None, seed: int = 0, alpha: float = 1.0) -> None:
        self.task, self.n_classes, self.seed, self.alpha = task, n_classes, seed, alpha
        self.models: list[Any] = []

    def _columns(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-output feature matrices (one column per input run)."""
        xs = [np.asarray(x, dtype=np.float64) for x in xs]
        if xs[0].ndim == 1:
            return [np.column_stack(xs)]
        return [np.column_stack([x[:, j] for x in xs]) for j in range(xs[0].shape[1])]

    def fit(self, xs: Sequence[np.ndarray], y: np.ndarray) -> Stacker:
        """Fit on the inputs' predictions `xs` (one array per run) for targets `y`."""
        y = np.asarray(y)
        if self.task == "multiclass":
            x = np.hstack([np.log(np.clip(np.asarray(a, dtype=np.float64), EPS, 1.0)) for a in xs])
            if len(np.unique(y)) < 2:
                self.models = [np.bincount(y.astype(np.int64), minlength=self.n_classes) / len(y)]
            else:
                self.models = [LogisticRegression(C=1.0, max_iter=2000, random_state=self.seed).fit(x, y)]
            return self
        cols = self._columns(xs)
        if self.task == "regression":
            y2 = y.reshape(len(y), -1)
            self.models = []
            for j, x in enumerate(cols):
                ok = np.isfinite(y2[:, j])
                self.models.append(Ridge(alpha=self.alpha).fit(x[ok], y2[ok, j]) if ok.any() else 0.0)
            return self
        y2 = y.reshape(len(y), -1)  # binary: one output; multi-label: one per class
        self.models = [_binary_fit(_logit(x), y2[:, j], self.seed) for j, x in enumerate(cols)]
        return self

    def predict(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        """Blended predictions for the inputs' predictions `xs`, in the task's shape."""
        n = len(xs[0])
        if self.task == "multiclass":
            model = self.models[0]
            if isinstance(model, np.ndarray):
                return np.tile(model, (n, 1))
            x = np.hstack([np.log(np.clip(np.asarray(a, dtype=np.float64), EPS, 1.0)) for a in xs])
            out = np.zeros((n, self.n_classes or int(model.classes_.max()) + 1))
            out[:, model.classes_.astype(np.int64)] = model.predict_proba(x)
            return out
        cols = self._columns(xs)
        if self.task == "regression":
            out = np.column_stack([m.predict(x) if not isinstance(m, float) else np.full(n, m)
                                   for m, x in zip(self.models, cols, strict=True)])
        else:
            out = np.column_stack([_binary_predict(m, _logit(x)) for m, x in zip(self.models, cols, strict=True)])
        return out[:, 0] if np.asarray(xs[0]).ndim == 1 else out

    def describe(self) -> list[dict[str, Any]]:
        """The fitted coefficients, per output (for the record)."""
        out = []
        for m in self.models:
            if isinstance(m, np.ndarray):
                out.append({"constant": m.round(6).tolist()})
            elif isinstance(m, Ridge):
                out.append({"intercept": round(float(m.intercept_), 6), "coef": np.round(m.coef_, 6).tolist()})
            else:
                out.append(_coef(m))
        return out


# ---- the blend ------------------------------------------------------------------------------------------
def _fold_scores(comp: Competition, y: np.ndarray, folds: np.ndarray, oof: np.ndarray) -> list[float]:
    return [float(comp.score(y[folds == k], oof[folds == k])) for k in range(int(folds.max()) + 1)]


def _task_name(comp: Competition) -> str:
    return str(comp.task) if comp.task.classification else "regression"


def blend(comp: Competition, y: np.ndarray, folds: np.ndarray, oofs: Sequence[np.ndarray],
          tests: Sequence[np.ndarray], method: str, n_classes: int | None = None, seed: int = 0,
          hill_steps: int = HILL_STEPS) -> Blended:
    """Blend the inputs' OOF and test predictions with `method`; fold scores use the competition's metric at
    its untuned decoding (`comp.score`), as `kit train`'s do."""
    if method not in METHODS:
        raise KitError(f"unknown blend method {method!r}; methods: {', '.join(METHODS)}")
    if len(oofs) < 2:
        raise KitError("a blend needs at least two runs")
    y, folds = np.asarray(y), np.asarray(folds)
    notes: list[str] = []
    if method == "rank" and not comp.task.classification:
        notes.append("rank: ranks do not average into values on the target's scale; blended with mean instead")
        method_used = "mean"
    else:
        method_used = method
    n = len(oofs)
    if method_used == "mean":
        w = [1.0 / n] * n
        oof, test = weighted_mean(oofs, w), weighted_mean(tests, w)
        return Blended(method, oof, test, _fold_scores(comp, y, folds, oof), w, {}, notes)
    if method_used == "rank":
        pairs = [rank_scale(np.asarray(o, dtype=np.float64), np.asarray(t, dtype=np.float64))
                 for o, t in zip(oofs, tests, strict=True)]
        w = [1.0 / n] * n
        oof, test = weighted_mean([p[0] for p in pairs], w), weighted_mean([p[1] for p in pairs], w)
        if str(comp.task) == "multiclass":  # rows of ranks -> rows summing to 1 (argmax unchanged)
            oof, test = oof / oof.sum(axis=1, keepdims=True), test / test.sum(axis=1, keepdims=True)
        if comp.metric.takes_probs:
            notes.append(f"rank: the blend holds scaled ranks, not calibrated probabilities ({comp.metric} scores "
                         "them as probabilities)")
        return Blended(method, oof, test, _fold_scores(comp, y, folds, oof), w, {}, notes)
    if method_used == "hill":
        counts, steps = hill_climb(oofs, lambda p: comp.score(y, p), comp.greater_is_better, hill_steps)
        w = (counts / counts.sum()).tolist()
        oof, test = weighted_mean(oofs, w), weighted_mean(tests, w)
        nested = []
        for k in range(int(folds.max()) + 1):  # weights chosen without fold k, scored on fold k
            tr, va = folds != k, folds == k
            ck, _ = hill_climb([o[tr] for o in oofs], lambda p, tr=tr: comp.score(y[tr], p),
                               comp.greater_is_better, hill_steps)
            nested.append(float(comp.score(y[va], weighted_mean([o[va] for o in oofs], ck))))
        detail = {"counts": counts.tolist(), "steps": steps, "cv_nested": nested}
        return Blended(method, oof, test, _fold_scores(comp, y, folds, oof), w, detail, notes)
    # stack: each fold's stacker sees only the other folds' OOF rows, so the blend's OOF is out-of-fold
    task = _task_name(comp)
    oof = np.zeros_like(np.asarray(oofs[0], dtype=np.float64))
    per_fold = []
    for k in range(int(folds.max()) + 1):
        tr, va = folds != k, folds == k
        st = Stacker(task, n_classes, seed).fit([o[tr] for o in oofs], y[tr])
        oof[va] = st.predict([o[va] for o in oofs])
        per_fold.append(st.describe())
    final = Stacker(task, n_classes, seed).fit(oofs, y)
    test = final.predict(tests)
    detail = {"stacker": "ridge" if task == "regression" else "logistic regression",
              "coefficients": final.describe(), "fold_coefficients": per_fold}
    return Blended(method, oof, test, _fold_scores(comp, y, folds, oof), None, detail, notes)


@dataclass
class BlendRun:
    """What `blend_and_submit` produced."""

    blended: Blended
    cv: CVResult
    decoder: Decoder
    oof_score: float
    inputs: list[Run]
    submission: Path
    run_dir: Path


def check_rows(comp: Competition, data: Data, run: Run) -> None:
    """Refuse runs whose training or test rows (ids, order) or outputs are not the loaded data's."""
    idc = row_id_col(comp, data.train)
    train_ids = data.train[idc].astype(str).to_numpy()
    if train_ids.tolist() != run.ids.tolist():
        raise DataError(f"{run.path}: its rows ({len(run.ids)}) are not the training rows of the data "
                        f"({len(train_ids)} in {data.files.get('train', 'the data folder')}); pass the --data-dir "
                        "the runs were trained on")
    test_ids = data.test[row_id_col(comp, data.test)].astype(str).to_numpy()
    if test_ids.tolist() != run.test_ids.tolist():
        raise DataError(f"{run.path}: its test rows are not the test rows of the data ({len(run.test_ids)} vs "
                        f"{len(test_ids)})")
    want = len(data.classes) if str(comp.task) in ("multiclass", "multilabel") and data.classes else None
    got = 1 if run.oof.ndim == 1 else run.oof.shape[1]
    if want is not None and got != want:
        raise DataError(f"{run.path}: {got} probability column(s), the data has {want} classes")


def check_same_data(runs: Sequence[Run], inputs: dict[str, str], allow: bool = False) -> list[str]:
    """Refuse runs whose records name other input files (SHA-256) than the loaded data's `inputs` (runs recorded
    without hashes pass); with `allow`, one note per such run instead."""
    notes = []
    for r in runs:
        theirs = r.record.get("inputs_sha256")
        if not isinstance(theirs, dict):
            continue
        other = sorted(k for k in set(theirs) & set(inputs) if theirs[k] != inputs[k])
        if not other:
            continue
        what = f"{r.path}: trained on other data ({', '.join(other)}: SHA-256 {str(theirs[other[0]])[:12]}… where " \
               f"the data has {inputs[other[0]][:12]}…)"
        if not allow:
            raise DataError(f"{what}; pass the --data-dir it was trained on, or --allow-other-data to blend anyway")
        notes.append(f"{what}; blended anyway (--allow-other-data)")
    return notes


def blend_and_submit(comp: Competition, data_dir: Path, run_dirs: Sequence[Path], method: str = "hill",
                     out: Path = SUBMISSIONS_DIR, runs: Path = RUNS_DIR, data: Data | None = None,
                     hill_steps: int = HILL_STEPS, allow_other_data: bool = False) -> BlendRun:
    """Check the runs, blend them, re-fit the decoding on the blended OOF, and write a validated submission with
    its record plus a run folder (folds, OOF, test probabilities, decoding, record) like `kit train`'s."""
    if method not in METHODS:
        raise KitError(f"unknown blend method {method!r}; methods: {', '.join(METHODS)}")
    if len(run_dirs) < 2:
        raise KitError(f"a blend needs at least two runs (got {len(run_dirs)}); train another model on the same "
                       "folds (same --seed and --folds)")
    inputs = [read_run(Path(p)) for p in run_dirs]
    check_compatible(inputs, comp.name, str(comp.task), str(comp.metric))
    data = data if data is not None else comp.load(Path(data_dir))
    for r in inputs:
        check_rows(comp, data, r)
    data_sha = {k: sha256_file(p) for k, p in sorted(data.files.items()) if Path(p).is_file()}
    other_notes = check_same_data(inputs, data_sha, allow_other_data)
    folds = inputs[0].folds
    seed = inputs[0].record.get("seed")
    n_classes = len(data.classes) if data.classes else None
    b = blend(comp, data.y, folds, [r.oof for r in inputs], [r.test for r in inputs], method, n_classes,
              seed=int(seed) if isinstance(seed, int) else 0, hill_steps=hill_steps)
    b.notes[:0] = other_notes
    if not (np.isfinite(b.oof).all() and np.isfinite(b.test).all()):
        raise KitError(f"blend {method}: non-finite predictions (check the inputs' OOF and test probabilities)")
    cv = CVResult(folds=folds, oof=b.oof, test=b.test, fold_scores=b.fold_scores,
                  params={"method": method, "runs": [r.name for r in inputs]}, seed=seed, metric=str(comp.metric))
    decoder = comp.decoder().fit(data.y, b.oof, comp.metric, data.classes)
    oof_score = float(decoder.score_)
    df = comp.submission(data, decoder.apply(b.test))
    stamp = utc_stamp()
    run_dir = Path(runs) / comp.name / stamp
    while run_dir.exists():  # two blends in the same millisecond
        stamp = utc_stamp()
        run_dir = Path(runs) / comp.name / stamp
    described = []
    for i, r in enumerate(inputs):
        d = {"run": str(r.path), "name": r.name, "model": r.model, "cv": {k: r.cv.get(k) for k in
             ("metric", "mean", "std", "fold_scores")}, "oof_score": r.record.get("oof_score")}
        if b.weights is not None:
            d["weight"] = round(float(b.weights[i]), 6)
        described.append(d)
    record = {
        "created_utc": stamp,
        "kind": "blend",
        "model": "blend",
        "method": method,
        "competition": comp.name,
        "task": str(comp.task),
        "metric": str(comp.metric),
        "inputs": described,
        "weights": None if b.weights is None else [round(float(w), 6) for w in b.weights],
        "blend": b.detail,
        "notes": b.notes,
        "cv": cv.as_record(),
        "oof_score": round(oof_score, 6),
        "decoding": decoder.to_json(),
        "params": cv.params,
        "seed": seed,
        "git_commit": git_commit(),
        "inputs_sha256": data_sha,
        "run_dir": str(run_dir),
        "versions": {"python": platform.python_version()},
    }
    path = submit_run(comp, data, cv, decoder, df, record, run_dir, out)
    return BlendRun(blended=b, cv=cv, decoder=decoder, oof_score=oof_score, inputs=inputs, submission=path,
                    run_dir=run_dir)

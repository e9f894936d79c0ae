"""Chapter 7's techniques, A/B on the same folds: each competition's cpu preset with a technique off (A) and on (B).

Issue 18 part 2's proof. For every competition where a technique applies, A is the cpu preset with every
technique off (mixup, cutmix, label_smoothing, progressive = 0, whatever the preset declares) and B is A with
one technique on; A is trained once and every B is paired with it. Both see the same folds
(`make_folds(comp.task, data.y, folds, seed)`) and the same training seed per fold (`cross_validate`'s
seed + k), at the preset's settings otherwise; differences are per fold, B − A, with the standard error of their
mean (std ddof 1 / √folds); "tie" = within one SE, and a gain within one SE is not a gain.

- digit-recognizer (`competitions.digit-recognizer.synthetic`: scikit-learn's real digits, 1,400 / 397): fold
  accuracy (argmax) and held-out accuracy of the fold-mean test probabilities, decoded by the decoder fitted on OOF.
- planet (`competitions.planet.synthetic`, --planet-n tiles): fold F2 two ways, (a) `comp.score` at threshold
  0.5 (what `cross_validate` reports) and (b) decoded as `make planet` submits, the per-class thresholds + weather
  rules cross-fitted (fitted on the OOF of the other folds, applied to this fold's rows); held-out F2 of the
  fold-mean test probabilities decoded by the decoder fitted on all of OOF.
- facial-keypoints: no technique applies to the cpu preset (small_cnn's point head); the reasons are kit's own
  refusals (`comp.params`), quoted in the results.
- norm (fold vs backbone) is not run: the cpu presets' small_cnn has no pretrained weights (see NORM_SKIP).

Usage: python bench/techniques.py [--seed 0] [--folds 5] [--only digits|planet] [--technique NAME ...]
                                  [--planet-n 2000] [--planet-n-test 750] [--workdir DIR] [--out FILE]
Writes bench/results/vision-techniques.md (`make bench-techniques ARGS='...'`). Not a test.
"""

from __future__ import annotations

import os
import warnings

# spinning OpenMP threads collapse throughput when other processes share the cores; must precede torch
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# as kit/__init__.py: fastai's import touches torch.jit.script, deprecated in torch >= 2.14
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model, load_text, versions  # noqa: E402

from kit import metrics, registry, vision  # noqa: E402
from kit.cv import CVResult, cross_validate, make_folds  # noqa: E402
from kit.errors import KitError  # noqa: E402
from kit.io import atomic_write_text  # noqa: E402
from kit.learner import default_device  # noqa: E402

PRESET = "cpu"
# B's setting of each technique (the values); A has all four at 0
TECHNIQUES: dict[str, dict[str, Any]] = {
    "mixup": {"mixup": 0.4},
    "cutmix": {"cutmix": 1.0},
    "label_smoothing": {"label_smoothing": 0.1},
    "progressive": {"progressive": 0.5},
}
OFF: dict[str, Any] = {"mixup": 0.0, "cutmix": 0.0, "label_smoothing": 0.0, "progressive": 0.0}
NORM_SKIP = (
    "`norm=fold` vs `norm=backbone` is not run: every cpu preset's arch is small_cnn, which has no pretrained "
    "weights, so `norm=auto` already normalises with the training fold's statistics, and `backbone` would "
    "normalise a randomly initialised net with ImageNet's constants, statistics no weights of it were trained "
    "under. small_cnn's first conv (no bias) feeds a BatchNorm, so a per-channel affine change of the input is "
    "absorbed up to the conv weights' scale: the A/B would measure an initialisation rescaling, not the "
    "technique. It becomes meaningful with a pretrained torchvision/timm arch (the gpu presets)."
)


# ---- statistics ------------------------------------------------------------------------------------------------
def paired(b: list[float], a: list[float]) -> tuple[np.ndarray, float, float]:
    """Per-fold b - a, its mean and the standard error of the mean (std ddof 1 / sqrt(folds))."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return d, float(d.mean()), se


def verdict(mean: float, se: float, higher_better: bool = True) -> str:
    gain = mean if higher_better else -mean
    return "**better**" if gain > se else "tie (within 1 SE)" if gain >= -se else "**worse**"


def ms(scores: list[float]) -> str:
    return f"{np.mean(scores):.4f} ± {np.std(scores):.4f}"


# ---- runs ------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One cross-validation: its result, fold scores (more than one kind where the competition has them), time."""

    name: str
    params: dict[str, Any]
    cv: CVResult
    wall: float
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    scores: dict[str, list[float]] = field(default_factory=dict)
    held: dict[str, float] = field(default_factory=dict)


@dataclass
class Section:
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    runs: int = 0


def cv_run(comp, data, params: dict[str, Any], seed: int, folds: np.ndarray, tag: str, name: str) -> Run:
    """cross_validate on the given folds, a progress line per fold."""
    n = int(folds.max()) + 1
    marks = [time.perf_counter()]

    def on_fold(k: int, score: float) -> None:
        marks.append(time.perf_counter())
        print(f"[{tag}] {name} fold {k + 1}/{n}: {comp.metric} {score:.4f} ({marks[-1] - marks[-2]:.1f} s)",
              flush=True)

    load0, t = os.getloadavg(), time.perf_counter()
    cv = cross_validate(comp, data, params, seed, folds=folds, on_fold=on_fold, progress=False)
    wall = time.perf_counter() - t
    print(f"[{tag}] {name}: {comp.metric} {ms(cv.fold_scores)} in {wall:.1f} s (load {load_text(os.getloadavg())})",
          flush=True)
    return Run(name, params, cv, wall, (load0, os.getloadavg()))


def resolve(comp, technique: str | None) -> dict[str, Any]:
    """The cpu preset with every technique off (A), or with `technique` on (B)."""
    over = {**OFF, **(TECHNIQUES[technique] if technique else {})}
    return comp.params({"preset": PRESET, **over})


def prepare(name: str, work: Path, seed: int, n_folds: int, **gen: Any):
    """Generate the competition's data with its solution (reused when already in `work`), load it, make the folds."""
    comp = registry.get(name)
    synth = importlib.import_module(f"competitions.{name}.synthetic")
    suffix = "-".join(f"{k}{v}" for k, v in sorted(gen.items()))
    where = work / f"{name}-s{seed}{'-' + suffix if suffix else ''}"
    data_dir, solution = where / "data", where / "solution.csv"
    t = time.perf_counter()
    gen_s = ""
    if not solution.is_file():
        synth.generate(data_dir, seed=seed, solution_path=solution, **gen)
        gen_s = f"generated in {time.perf_counter() - t:.1f} s"
    gen_s = gen_s or f"reused: generated by an earlier run into {where.name}/"
    comp = comp.for_params(resolve(comp, None))  # decode once at the run's size
    t = time.perf_counter()
    data = comp.load(data_dir)
    comp.images(data, "train", int(resolve(comp, None)["size"]))
    comp.images(data, "test", int(resolve(comp, None)["size"]))
    load_s = time.perf_counter() - t
    folds = make_folds(comp.task, data.y, n_folds, seed)
    return comp, data, solution, folds, gen_s, load_s


def ab_table(runs: list[Run], a: Run, kind: str, label: str, higher_better: bool = True) -> list[str]:
    """One row per technique: A and B mean ± std, paired B − A ± SE, verdict, per fold, wall ratio."""
    lines = [
        f"| technique (B) | A: {label} | B: {label} | B − A paired (± SE) | verdict | per fold B − A "
        "| wall B / A |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for r in runs:
        d, mean, se = paired(r.scores[kind], a.scores[kind])
        lines.append(f"| {r.name} | {ms(a.scores[kind])} | {ms(r.scores[kind])} | {mean:+.4f} ± {se:.4f} "
                     f"| {verdict(mean, se, higher_better)} | {', '.join(f'{v:+.4f}' for v in d)} "
                     f"| {r.wall / a.wall:.2f} |")
    return lines


def run_all(comp, data, seed: int, folds: np.ndarray, tag: str, techniques: list[str],
            sec: Section) -> tuple[Run | None, list[Run]]:
    a: Run | None = None
    bs: list[Run] = []
    try:
        a = cv_run(comp, data, resolve(comp, None), seed, folds, tag, "A (all off)")
        sec.runs += 1
    except Exception:
        sec.errors.append(f"A on {comp.name}:\n{traceback.format_exc()}")
        print(sec.errors[-1], file=sys.stderr, flush=True)
        return None, []
    for t in techniques:
        try:
            bs.append(cv_run(comp, data, resolve(comp, t), seed, folds, tag,
                             f"{t}={next(iter(TECHNIQUES[t].values()))}"))
            sec.runs += 1
        except Exception:
            sec.errors.append(f"B {t} on {comp.name}:\n{traceback.format_exc()}")
            print(sec.errors[-1], file=sys.stderr, flush=True)
    return a, bs


def params_line(p: dict[str, Any]) -> str:
    return f"`{ {k: p[k] for k in sorted(p)} }`"


def times_line(a: Run, bs: list[Run]) -> str:
    each = "; ".join(f"{r.name} {r.wall:.1f} ({load_text(r.load[0])} → {load_text(r.load[1])})" for r in [a, *bs])
    return ("wall time of each CV (s, every fold's training + valid/test prediction; load average at its start → "
            f"end): {each}")


# ---- digit-recognizer ------------------------------------------------------------------------------------------
def bench_digits(a: argparse.Namespace, work: Path) -> Section:
    sec, tag = Section(), "digits"
    comp, data, solution, folds, gen_s, load_s = prepare("digit-recognizer", work, a.seed, a.folds)
    truth = pd.read_csv(solution).set_index("ImageId").loc[data.test[comp.id_col], "Label"].to_numpy()
    print(f"[{tag}] {len(data.y)} train / {len(data.test)} test images", flush=True)
    base, bs = run_all(comp, data, a.seed, folds, tag, a.techniques, sec)
    for r in [base, *bs] if base else []:
        r.scores["acc"] = r.cv.fold_scores
        decoder = comp.decoder().fit(data.y, r.cv.oof, comp.metric, data.classes)
        sub = comp.submission(data, decoder.apply(r.cv.test))
        r.held["acc"] = float(np.mean(sub[comp.target_col].astype(np.int64).to_numpy() == truth))
    sec.lines += [
        "## digit-recognizer",
        "",
        f"`competitions.digit-recognizer.synthetic.generate(seed={a.seed})`: scikit-learn's real handwritten digits "
        f"in MNIST's 28x28 layout, {len(data.y)} train / {len(data.test)} held-out test images ({gen_s}, "
        f"loaded in {load_s:.1f} s). {int(folds.max()) + 1}-fold stratified CV; fold accuracy by "
        "argmax (`comp.score`); held-out: fold-mean test probabilities through the decoder fitted on OOF "
        "(argmax) and `comp.submission`, against the solution.",
        "",
    ]
    if base is None:
        return sec
    sec.lines += [
        f"A's params: {params_line(base.params)}",
        "",
        *ab_table(bs, base, "acc", "CV accuracy (mean ± std)"),
        "",
        "| run | held-out accuracy | held-out B − A |",
        "|---|---:|---:|",
        f"| A (all off) | {base.held['acc']:.4f} | |",
        *[f"| {r.name} | {r.held['acc']:.4f} | {r.held['acc'] - base.held['acc']:+.4f} |" for r in bs],
        "",
        f"- {times_line(base, bs)}",
        "",
    ]
    return sec


# ---- planet ----------------------------------------------------------------------------------------------------
def crossfit_decoded(comp, y: np.ndarray, oof: np.ndarray, folds: np.ndarray, classes) -> list[float]:
    """Per fold: F2 of this fold's OOF rows decoded by the decoder fitted on the other folds' OOF rows."""
    out = []
    for k in range(int(folds.max()) + 1):
        tr, va = folds != k, folds == k
        dec = comp.decoder().fit(y[tr], oof[tr], comp.metric, classes)
        out.append(float(metrics.f2_samples(y[va], dec.apply(oof[va]))))
    return out


def bench_planet(a: argparse.Namespace, work: Path) -> Section:
    sec, tag = Section(), "planet"
    comp, data, solution, folds, gen_s, load_s = prepare("planet", work, a.seed, a.folds, n_train=a.planet_n,
                                                         n_test=a.planet_n_test)
    truth = pd.read_csv(solution, keep_default_na=False).set_index("image_name").loc[data.test["image_name"], "tags"]
    y_test = metrics.label_matrix(truth.tolist(), data.classes)
    print(f"[{tag}] {len(data.y)} train / {len(data.test)} test tiles", flush=True)
    base, bs = run_all(comp, data, a.seed, folds, tag, a.techniques, sec)
    for r in [base, *bs] if base else []:
        r.scores["f2@0.5"] = r.cv.fold_scores
        r.scores["f2 decoded"] = crossfit_decoded(comp, data.y, r.cv.oof, folds, data.classes)
        decoder = comp.decoder().fit(data.y, r.cv.oof, comp.metric, data.classes)
        r.held["oof decoded"] = float(metrics.f2_samples(data.y, decoder.apply(r.cv.oof)))
        r.held["f2 decoded"] = float(metrics.f2_samples(y_test, decoder.apply(r.cv.test)))
        r.held["f2@0.5"] = float(metrics.f2_samples(y_test, r.cv.test >= 0.5))
    sec.lines += [
        "## planet",
        "",
        f"`competitions.planet.synthetic.generate(n_train={a.planet_n}, n_test={a.planet_n_test}, seed={a.seed})`: "
        f"{len(data.y)} train / {len(data.test)} held-out test tiles (256 px JPEG; {gen_s}; "
        f"decoded to the preset's size in {load_s:.1f} s). n={a.planet_n} (half of `make bench-planet`'s 4,000) keeps "
        "one 5-fold CV to a few minutes on 2 shared cores, so A and the four Bs fit in the bench's time; each "
        "validation fold still holds 400 tiles, enough for every common tag and a few of each rare one. "
        f"{int(folds.max()) + 1}-fold multilabel-stratified CV. Fold F2 two ways: at threshold 0.5 (`comp.score`, "
        "what `cross_validate` reports; MixUp and label smoothing move the probabilities, so 0.5 is not neutral) and "
        "decoded as `make planet` submits (per-class thresholds + weather rules, cross-fitted: fitted on the other "
        "folds' OOF rows, applied to this fold's). Held-out: fold-mean test probabilities decoded by the decoder "
        "fitted on all of OOF. The decoded F2 is the one that counts.",
        "",
    ]
    if base is None:
        return sec
    sec.lines += [
        f"A's params: {params_line(base.params)}",
        "",
        "Decoded F2 (per-class thresholds + weather rules, cross-fitted per fold):",
        "",
        *ab_table(bs, base, "f2 decoded", "CV F2 decoded"),
        "",
        "F2 at threshold 0.5 (`comp.score`):",
        "",
        *ab_table(bs, base, "f2@0.5", "CV F2 @ 0.5"),
        "",
        "| run | OOF F2 decoded | held-out F2 decoded | held-out B − A | held-out F2 @ 0.5 |",
        "|---|---:|---:|---:|---:|",
        f"| A (all off) | {base.held['oof decoded']:.4f} | {base.held['f2 decoded']:.4f} | "
        f"| {base.held['f2@0.5']:.4f} |",
        *[f"| {r.name} | {r.held['oof decoded']:.4f} | {r.held['f2 decoded']:.4f} "
          f"| {r.held['f2 decoded'] - base.held['f2 decoded']:+.4f} | {r.held['f2@0.5']:.4f} |" for r in bs],
        "",
        f"- {times_line(base, bs)}",
        "",
    ]
    return sec


# ---- facial-keypoints ------------------------------------------------------------------------------------------
def bench_keypoints(a: argparse.Namespace, work: Path) -> Section:
    """Nothing is trained: each technique's B is asked of `comp.params`, and kit's refusal is the reason."""
    comp = registry.get("facial-keypoints")
    lines = ["## facial-keypoints", "", "Not run: no technique applies to the cpu preset (small_cnn, point "
             "targets). Each B was asked of `comp.params`; kit's own refusal, one line each:", ""]
    errors: list[str] = []
    for t in a.techniques:
        try:
            resolve(comp, t)
        except KitError as e:
            lines.append(f"- {t}: {e}")
        else:  # a technique kit accepts here would need a run: say so rather than skip it silently
            errors.append(f"facial-keypoints accepts {t} ({TECHNIQUES[t]}): add it to the A/B")
            lines.append(f"- {t}: **accepted** by kit now; not run here (add facial-keypoints to this bench)")
    lines.append("")
    return Section(lines=lines, errors=errors)


# ---- main ------------------------------------------------------------------------------------------------------
BENCHES = {"digits": bench_digits, "planet": bench_planet, "keypoints": bench_keypoints}


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run A and each B per competition on the same folds, write the markdown."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="data, folds and training seed")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only", choices=list(BENCHES), action="append", default=None,
                   help="run these competitions only (repeatable)")
    p.add_argument("--technique", dest="techniques", choices=list(TECHNIQUES), action="append", default=None,
                   help="B's to run (repeatable; default all)")
    p.add_argument("--planet-n", type=int, default=2000)
    p.add_argument("--planet-n-test", type=int, default=750)
    p.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench-techniques",
                   help="generated data go here, and are reused by a later run")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vision-techniques.md")
    a = p.parse_args(argv)
    a.techniques = a.techniques or list(TECHNIQUES)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    from kit.cli import setup_logging

    setup_logging()
    device = default_device()
    started, load0, t0 = dt.datetime.now(dt.UTC), os.getloadavg(), time.perf_counter()
    print(f"torch threads {torch.get_num_threads()}, device {vision.describe_device(device)}, load average "
          f"{load_text(load0)}", flush=True)
    a.workdir.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    for key in a.only or list(BENCHES):
        try:
            sections.append(BENCHES[key](a, a.workdir))
        except Exception:
            err = f"{key}:\n{traceback.format_exc()}"
            print(err, file=sys.stderr, flush=True)
            sections.append(Section(lines=[f"## {key}", "", "Failed before any run."], errors=[err]))
    load1, wall = os.getloadavg(), time.perf_counter() - t0

    n_cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else n_cores
    cmd = "python bench/techniques.py" + ("" if not argv_list else " " + shlex.join(argv_list))
    lines = [
        "# Chapter 7's techniques: paired A/B on the same folds (cpu presets)",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; total wall time {wall:.0f} s "
        f"({sum(s.runs for s in sections)} cross-validations)",
        f"- command: `{cmd}` (`make bench-techniques ARGS='...'`)",
        f"- machine: {cpu_model()}, {n_cores} cores ({usable} usable), shared with other work; device "
        f"{vision.describe_device(device)}; load average (1/5/15 min) at start {load_text(load0)}, at end "
        f"{load_text(load1)}",
        f"- torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}",
        f"- versions: {versions()}",
        f"- seed {a.seed}, {a.folds} folds; A = the cpu preset with `{OFF}`; B = A with one of "
        f"`{ {t: v for t, v in TECHNIQUES.items() if t in a.techniques} }`",
        "",
        "B − A: per fold, the same validation rows and training seed for A and B; ± is the standard error of the "
        "mean difference (std with ddof 1 / √folds); \"better\"/\"worse\" = beyond one SE, \"tie\" = within one "
        "SE (a gain within one SE is not a gain). Every B is paired with the same A run, so the rows of a table "
        "are not independent of each other. Wall ratios are on shared cores: the load column says how shared.",
        "",
        f"- {NORM_SKIP}",
        "",
    ]
    for sec in sections:
        lines += sec.lines
        for err in sec.errors:
            lines += ["Failure:", "", "```", err.rstrip(), "```", ""]
    text = "\n".join(lines)
    atomic_write_text(a.out, text)
    print(text)
    print(f"wrote {a.out}", flush=True)
    return 1 if any(s.errors for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())

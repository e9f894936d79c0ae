"""The tabular nets' parameters, declared once: names, defaults and constraints (kit.params)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kit.nets.features import NUM_TRANSFORMS
from kit.params import Flag, Interval, Options, OrAuto, Params

SCHEDULES = ("one_cycle", "flat_cos")
TARGET_TRANSFORMS = ("auto", "none", "log1p", "log1p_mean")
PRECISIONS = ("auto", "fp32", "bf16")
NUM_EMBS = ("periodic", "ple", "none")

ARCHS = ("auto", "modern", "seed")
TABM_ARCHS = ("tabm", "tabm-mini", "tabm-packed")
# `arch=auto`: below this many training rows the seeds' MLP, with its own defaults. On the contract tables
# (142-455 rows) it scored as well or better (breast cancer log loss 0.077 vs 0.089, diabetes RMSE 53.9 vs 54.5)
# at a tenth of the time; from 3,900 rows (bench/tabular.py's choice tables) the modern net won 3 of 4 (computers
# RMSE 162 vs 199, doctor contacts 4.03 vs 4.23) and lost one (males log loss 1.61 vs 1.57).
AUTO_SEED_ROWS = 1000

# The modern MLP trains two nets a fold (seeds seed and seed + 1000, predictions averaged) and, for classification,
# with twice the rows a batch again (rows/16, up to 1,024), so that the pair costs little more than one net did.
# Measured on the choice tables (bench/results/tabular-ab-batch.md, "Two nets a fold"), paired against one net:
# regression (two nets at rows/32, 1.6-2x the time) computers -0.8 +- 0.4 RMSE, doctorcontacts -1.4 %, budgetfood
# -0.0006 +- 0.0001 (level with LightGBM); two nets with 0.6x the epochs were worse (computers +3 %).
# Classification (two nets at rows/16, 1.1-1.5x the time): males -0.052 +- 0.005 log loss, benefits +0.006 +- 0.004
# AUC, rwm5yr +0.0025 +- 0.0006 AUC (level with LightGBM), flchain +0.0004 +- 0.0007 (a tie).
MLP_MODELS = 2

POSITIVE = Interval(int, 1, None)
NET_CONSTRAINTS: dict[str, Any] = {
    "width": POSITIVE, "depth": POSITIVE, "n_models": OrAuto(what="the net (2 modern MLPs, 1 TabM or seeds' MLP)"),
    "d_emb": POSITIVE, "max_levels": POSITIVE,
    "epochs": OrAuto(), "bs": OrAuto(), "dropout": Interval(float, 0, 1, closed="left"),
    "label_smoothing": Interval(float, 0, 0.5, closed="left"), "lr": Interval(float, 0, None, closed="neither"),
    "wd": Interval(float, 0, None), "emb_scale": Interval(float, 0, None, closed="neither"),
    "num_transform": Options(*NUM_TRANSFORMS), "num_emb": Options(*NUM_EMBS), "n_bins": Interval(int, 2, None),
    "schedule": Options(*SCHEDULES), "target_transform": Options(*TARGET_TRANSFORMS),
    "target_encode": Flag(), "precision": Options(*PRECISIONS), "front_scale": Interval(float, 0, None),
}


@dataclass(frozen=True)
class NetParams(Params):
    """What the modern MLP and TabM share: optimiser, schedule, inputs and target (the modern net's defaults,
    chosen on bench/tabular.py's choice tables, reported on others in bench/results/tabular.md)."""

    lr: float = 6e-3
    wd: float = 1e-4
    dropout: float = 0.1
    epochs: int = 0  # 0: ~24 passes, fewer above 16k-25k rows (kit.nets.fit.fold_epochs)
    bs: int = 0  # 0: a power of two near rows / 32 (regression, TabM) or / 16 (the MLP's classification) up to
    # 512 or 1,024, and 1,024 from ~46k rows (kit.nets.fit.auto_batch_size)
    n_models: int = 0  # 0: two nets a fold for the modern MLP (auto_models), one for TabM
    num_transform: str = "quantile"
    num_emb: str = "periodic"
    d_emb: int = 16
    n_bins: int = 48  # num_emb=ple: the most bins a number gets (its training fold's quantiles)
    emb_scale: float = 0.3
    label_smoothing: float = 0.1
    schedule: str = "one_cycle"
    target_transform: str = "auto"
    max_levels: int = 1000
    target_encode: bool = True
    front_scale: float = 0.0  # > 0: a learned scale of each input unit in front of the body, its steps this many
    # times the others' (RealMLP's scaling layer, Holzmüller et al. 2024); 0: none
    precision: str = "auto"  # training batches under bfloat16 autocast: auto = on a CPU with AMX tiles
    # (kit.devices.fast_cpu_bf16) for batches of 512+ rows (kit.nets.fit.BF16_MIN_BATCH), fp32 elsewhere

    _parameter_constraints: ClassVar = NET_CONSTRAINTS


@dataclass(frozen=True)
class MLPParams(NetParams):
    """The mlp family's: the modern net's shape; `arch=seed` reads the seeds' MLP's keys (SEED_PARAMS) from the
    same names."""

    arch: str = "auto"
    width: int = 256
    depth: int = 3
    # RealMLP's scaling layer at its lr factor 6: on the 11 choice tables (2 x 5 folds, paired; bench/results/
    # tabular-ab.md, "A learned scale of each input") better on 5 (generated binary +0.0022 +- 0.0005 AUC, generated
    # price -0.8 % RMSE, computers -1.3 %, OFP, males -0.010 log loss), tied on 6, worse on none, at the same time
    front_scale: float = 6.0

    _parameter_constraints: ClassVar = {"arch": Options(*ARCHS), **NET_CONSTRAINTS}


# The seeds' MLP (`arch="seed"`): one hidden layer of 128, light dropout and weight decay, 30 epochs of
# fit_one_cycle on the one-hot/standardised ColumnTransformer. Chosen on the contract benchmark's splits 3-6
# (bench/results/contract.md has the sweep): two layers overfit the small tables, one layer is within 2 % of the
# best scikit-learn baseline on all three. A competition that declares `default_params` without `arch` gets it
# (its values were written for this net); Titanic declares it.
SEED_PARAMS: dict[str, Any] = {
    "arch": "seed", "width": 128, "depth": 1, "dropout": 0.1, "wd": 0.01, "epochs": 30, "lr": 3e-3, "bs": 64,
    "n_models": 1,
}


@dataclass(frozen=True)
class TabMParams(NetParams):
    """TabM's (kit.nets.modules.TabM on the `tabm` package's BatchEnsemble): k=8 heads of 2 x 128 (every head
    sees every row, so a step costs k times an MLP of that width: the paper's 32 x 512 is ~30x the modern MLP's
    cost on a CPU), the same inputs and schedule as the modern MLP."""

    width: int = 128
    depth: int = 2
    k: int = 8
    arch_type: str = "tabm"  # tabm's kinds: "tabm" (shared weights, per-head scalings), "tabm-mini", "tabm-packed"
    # (k independent MLPs in one batched module: a deep ensemble trained in one loop)

    _parameter_constraints: ClassVar = {"k": POSITIVE, "arch_type": Options(*TABM_ARCHS), **NET_CONSTRAINTS}


def auto_models(kind: str) -> int:
    """Nets a fold when `n_models` is 0: MLP_MODELS for the modern MLP, one TabM (already k heads)."""
    return MLP_MODELS if kind == "mlp" else 1


def fold_parts(kind: str, params: dict[str, Any]) -> int:
    """Parts of a fold that can train in separate processes (kit.workers): each of its nets, which start from
    their own seeds; one when `log1p_mean`'s factor is fitted on every net's predictions together."""
    p = (TabMParams if kind == "tabm" else MLPParams).of(params)
    return 1 if p.target_transform == "log1p_mean" else int(p.n_models) or auto_models(kind)

"""The board: every run and submission of a competition in one table (CV, OOF, leaderboard scores from the
ledger), `board.png` (CV vs public score) and the two submissions a careful competitor would select."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit import plots
from kit.ensemble.runs import DEFAULT_MODEL
from kit.errors import DataError
from kit.io import sha256_file
from kit.kaggle.ledger import Entry, Ledger
from kit.runs import OOF, RECORD, read_record, run_folders
from kit.spec import Competition


@dataclass
class Row:
    """One line of the board: a run (with its submission) or a ledger submission without a run folder."""

    run: str
    model: str
    cv_mean: float | None
    cv_std: float | None
    n_folds: int | None
    oof_score: float | None
    submission: Path | None
    run_dir: Path | None = None
    public: float | None = None
    private: float | None = None
    state: str | None = None  # the ledger's: submitted | pending | failed | abandoned; None: never submitted
    note: str = ""


def check_ledger(ledger: Ledger) -> None:
    """Refuse a ledger with a line that is not a JSON object (the board would silently lose its scores)."""
    if not ledger.path.is_file():
        return
    for i, line in enumerate(ledger.path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        if not ok:
            raise DataError(f"{ledger.path}: line {i} is not a JSON object; repair or delete that line")


def refresh(comp: Competition, ledger: Ledger, offline: bool = False) -> str:
    """Bring the ledger's scores up to date through the Kaggle client when credentials are there; one line
    saying what happened (offline: the scores as last recorded)."""
    if offline:
        return "ledger: offline (--offline); scores as last recorded"
    from kit.kaggle.credentials import find_credentials
    from kit.kaggle.errors import KaggleError, NoCredentials

    try:
        find_credentials()
    except NoCredentials:
        return "ledger: offline (no Kaggle credentials); scores as last recorded"
    try:
        from kit.kaggle.client import Kaggle
        from kit.kaggle.submissions import reconcile

        reconcile(Kaggle(comp.slug), comp, ledger)
    except KaggleError as e:
        return f"ledger: offline ({e}); scores as last recorded"
    return f"ledger: refreshed from Kaggle's submission list for {comp.slug}"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) else None


def _submission_path(rec: dict[str, Any], out: Path, comp_name: str) -> Path | None:
    sub = rec.get("submission")
    if not sub:
        return None
    p = Path(str(sub))
    for cand in (p, Path(out) / comp_name / p.name):
        if cand.is_file():
            return cand
    return p


def _best_entry(entries: list[Entry]) -> Entry:
    scored = [e for e in entries if e.public_score is not None]
    return (scored or entries)[-1]


def build(comp: Competition, runs: Path, out: Path, ledger: Ledger,
          data_dir: Path | None = None) -> tuple[list[Row], list[str]]:
    """The board's rows sorted by CV (best first, the metric's direction; rows without CV last), and notes."""
    notes: list[str] = []
    entries = ledger.entries(comp.name)
    by_sha: dict[str, list[Entry]] = {}
    for e in entries:
        by_sha.setdefault(e.sha256, []).append(e)
    train_sha = None
    if data_dir is not None and (Path(data_dir) / comp.train_file).is_file():
        train_sha = sha256_file(Path(data_dir) / comp.train_file)
    rows: list[Row] = []
    matched: set[str] = set()
    for d in run_folders(runs, comp.name):
        if not (d / RECORD).is_file():
            continue  # a run still being written, or killed before its record
        try:
            rec = read_record(d)
        except DataError as e:
            notes.append(f"skipped {e}")
            continue
        cv = rec.get("cv") if isinstance(rec.get("cv"), dict) else {}
        model = f"blend:{rec.get('method')}" if rec.get("kind") == "blend" else str(rec.get("model", DEFAULT_MODEL))
        sub = _submission_path(rec, out, comp.name)
        row = Row(run=d.name, model=model, cv_mean=_num(cv.get("mean")), cv_std=_num(cv.get("std")),
                  n_folds=cv.get("n_folds"), oof_score=_num(rec.get("oof_score")), submission=sub, run_dir=d)
        if sub is not None and sub.is_file():
            sha = sha256_file(sub)
            if sha in by_sha:
                e = _best_entry(by_sha[sha])
                row.public, row.private, row.state = e.public_score, e.private_score, e.state
                matched.add(sha)
        want = (rec.get("inputs_sha256") or {}).get("train") if isinstance(rec.get("inputs_sha256"), dict) else None
        if train_sha is not None and want is not None and want != train_sha:
            row.note = "other data"
        rows.append(row)
    for sha, es in by_sha.items():  # submitted files whose run folder is gone (or never existed)
        if sha in matched:
            continue
        e = _best_entry(es)
        side: dict[str, Any] = {}
        try:
            side = json.loads(Path(e.file).with_suffix(".json").read_text())
        except (OSError, ValueError):
            pass
        cv = side.get("cv") if isinstance(side, dict) and isinstance(side.get("cv"), dict) else {}
        rows.append(Row(run="-", model=str(side.get("model", "?")) if isinstance(side, dict) else "?",
                        cv_mean=_num(cv.get("mean")), cv_std=_num(cv.get("std")), n_folds=cv.get("n_folds"),
                        oof_score=_num(side.get("oof_score")) if isinstance(side, dict) else None,
                        submission=Path(e.file), public=e.public_score, private=e.private_score, state=e.state,
                        note="no run folder"))
    sign = -1.0 if comp.greater_is_better else 1.0
    rows.sort(key=lambda r: (r.cv_mean is None, sign * r.cv_mean if r.cv_mean is not None else 0.0, r.run))
    return rows, notes


def _fmt(v: float | None, nd: int = 4) -> str:
    return f"{v:.{nd}f}" if v is not None else "-"


def format_table(rows: list[Row], metric: str) -> str:
    """The board as an aligned text table."""
    table = [("run", "model", f"CV {metric}", "OOF", "submission", "public", "private", "note")]
    for r in rows:
        cv = f"{r.cv_mean:.4f} ± {r.cv_std:.4f}" if r.cv_mean is not None and r.cv_std is not None else _fmt(r.cv_mean)
        sub = r.submission.name if r.submission is not None else "-"
        if r.state in ("pending", "failed", "abandoned"):
            sub += f" ({r.state})"
        table.append((r.run, r.model, cv, _fmt(r.oof_score), sub, _fmt(r.public, 5), _fmt(r.private, 5), r.note))
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip() for t in table)


def _oof(run_dir: Path) -> pd.Series | None:
    """A run's OOF probabilities flattened, indexed by (row id, column) so two runs align on their rows."""
    try:
        df = pd.read_csv(run_dir / OOF, dtype={0: str})
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    long = df.set_index(df.columns[0]).stack()
    return pd.to_numeric(long, errors="coerce")


def select(rows: list[Row]) -> tuple[Row | None, Row | None, float | None, str]:
    """(best CV, least correlated with it, their OOF Pearson correlation, the pool chosen from).

    The pool is the submissions sent to Kaggle when there are two, else every run with a submission file; the
    second pick is the one whose OOF probabilities correlate least with the first's (ties: the better CV)."""
    have = [r for r in rows if r.cv_mean is not None and r.submission is not None and r.run_dir is not None]
    sent = [r for r in have if r.state == "submitted"]
    pool, where = (sent, "submitted to Kaggle") if len(sent) >= 2 else (have, "with a submission file")
    if not pool:
        return None, None, None, where
    best = pool[0]  # rows are sorted by CV
    ref = _oof(best.run_dir)
    pick, low = None, None
    for r in pool[1:]:
        other = _oof(r.run_dir) if ref is not None else None
        if other is None:
            continue
        both = pd.concat([ref, other], axis=1, join="inner").dropna()
        if len(both) < 3 or both.iloc[:, 0].std() == 0 or both.iloc[:, 1].std() == 0:
            continue
        c = float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1])
        if low is None or c < low:
            pick, low = r, c
    return best, pick, low, where


def selection_line(rows: list[Row], metric: str) -> str:
    """One line naming the two submissions to select, and why."""
    best, pick, corr, where = select(rows)
    if best is None:
        return "select: no run with a CV score and a submission yet"
    first = f"{best.submission.name} (best CV {metric} {_fmt(best.cv_mean)}, run {best.run})"
    if pick is None:
        return f"select: {first}; no second submission {where} to pair it with"
    return (f"select: {first} and {pick.submission.name} (CV {_fmt(pick.cv_mean)}, run {pick.run}: OOF correlation "
            f"{corr:.3f} with the first, the least among those {where})")


def plot(rows: list[Row], metric: str, title: str, path: Path) -> Path:
    """board.png: CV vs public score, one point per scored submission (y = x when on the same scale); without
    scores, each run's CV mean ± std."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    scored = [r for r in rows if r.cv_mean is not None and r.public is not None]
    if scored:
        x = np.array([r.cv_mean for r in scored])
        y = np.array([r.public for r in scored])
        ax.scatter(x, y, color="C0", zorder=3)
        for r, xi, yi in zip(scored, x, y, strict=True):
            ax.annotate(f"{r.run} {r.model}", (xi, yi), fontsize=7, xytext=(4, 3), textcoords="offset points")
        # same scale: both positive (or both negative) and within a factor of 2 of each other
        ax_, ay_ = np.abs(x), np.abs(y)
        if (np.sign(x) == np.sign(y)).all() and (ay_ <= 2 * ax_).all() and (ax_ <= 2 * ay_).all():
            lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
            pad = 0.05 * (hi - lo or abs(hi) or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", ls=":", label="public = CV")
            ax.legend(fontsize=8)
        ax.set_xlabel(f"CV {metric} (mean over folds)")
        ax.set_ylabel("public leaderboard score")
    else:
        runs = [r for r in rows if r.cv_mean is not None]
        ax.errorbar(np.arange(len(runs)), [r.cv_mean for r in runs], yerr=[r.cv_std or 0.0 for r in runs], fmt="o")
        ax.set_xticks(np.arange(len(runs)), [f"{r.run}\n{r.model}" for r in runs], fontsize=6, rotation=45,
                      ha="right")
        ax.set_ylabel(f"CV {metric} (mean ± std over folds)")
        title += " (no public scores yet)"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return plots.save(fig, path)

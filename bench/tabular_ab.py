"""Paired A/B of parameter variants (`--set`) on bench/tabular.py's tables: same folds, one child process each.

Each arm is `NAME=FAMILY[:KEY=VALUE,...]` (e.g. `base=mlp`, `none=mlp:target_transform=none`,
`lgbm=lightgbm`); every arm runs on the same R repeats of 5-fold (seeds 0..R-1) of each table, and every arm
after the first is reported as its paired per-fold difference from the first, ± the standard error, with its
wall time. This is how a net default is chosen: on `choice` tables only, with a margin of more than one SE.

Usage: python bench/tabular_ab.py --only psid doctorcontacts:1 --arm base=mlp --arm none=mlp:target_transform=none
                                  [--repeats 2] [--out FILE]     (TABLE:R: R repeats for that table)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import report_header
from tabular import FOLDS, ROOT, TABLES, paired, run_child, write_table


def parse_arm(text: str) -> tuple[str, str, list[str]]:
    """`NAME=FAMILY[:K=V,...]` -> (name, family, ["K=V", ...])."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise SystemExit(f"--arm {text!r}: expected NAME=FAMILY[:KEY=VALUE,...]")
    family, _, sets = rest.partition(":")
    return name, family, [s for s in sets.split(",") if s]


def same(value: Any, text: str) -> bool:
    """Whether a recorded parameter value is the one `--set` gave as text."""
    try:
        return float(value) == float(text)
    except (TypeError, ValueError):
        return str(value).lower() == text.lower()


def run_table(key: str, arms: list[tuple[str, str, list[str]]], repeats: int, root: Path,
              env: dict[str, str]) -> dict[str, Any]:
    """Every arm on every repeat of one table: fold scores and wall times per arm."""
    sys.path.insert(0, str(ROOT))
    from kit import registry

    t = TABLES[key]
    data_dir, _, sizes = write_table(t, root)
    comp = registry.get(t.name)
    out: dict[str, Any] = {"key": key, "sizes": sizes, "comp": comp, "scores": {}, "wall": {}, "errors": {}}
    for seed in range(repeats):
        for name, family, sets in arms:
            if name in out["errors"]:
                continue
            r = run_child(t, data_dir, family, seed, sets, root / name, env)
            if "error" in r:
                out["errors"][name] = r["error"]
                print(f"[{key}] {name} failed: {r['error']}\n{r['log'][-3000:]}", flush=True)
                continue
            unused = [x for x in sets if not same(r["params"].get(x.split("=", 1)[0]), x.split("=", 1)[1])]
            if unused:  # the worker drops keys its family does not have: an arm must not run the defaults unseen
                raise SystemExit(f"arm {name}: {', '.join(unused)} not a parameter value of {family}")
            out["scores"].setdefault(name, []).extend(r["scores"])
            out["wall"].setdefault(name, []).append(r["wall"])
            print(f"[{key}] seed {seed} {name}: {comp.metric} {np.mean(r['scores']):.4f} in {r['wall']:.1f} s",
                  flush=True)
    return out


def section(o: dict[str, Any], arms: list[tuple[str, str, list[str]]], repeats: int) -> list[str]:
    """One table's markdown: each arm against the first."""
    comp, sc, base = o["comp"], o["scores"], arms[0][0]
    t = TABLES[o["key"]]
    lines = [f"## {o['key']} ({t.role})", "", f"{t.note}. {o['sizes']['train']:,} train rows; {comp.task}, "
             f"{comp.metric} ({'higher' if comp.greater_is_better else 'lower'} is better).", "",
             f"| arm | {comp.metric} mean ± std ({repeats} x {FOLDS} folds) | − {base}, paired ± SE | verdict | "
             "wall time (s) |", "|---|---:|---:|---|---:|"]
    for name, _, _ in arms:
        if name not in sc:
            lines.append(f"| {name} | failed: {o['errors'].get(name, '?')} | | | |")
            continue
        vs, verdict = "—", "—"
        if name != base and base in sc:
            d, se = paired(sc[name], sc[base])
            gain = d if comp.greater_is_better else -d
            verdict = "better" if gain > se else "tie (within 1 SE)" if gain >= -se else "worse"
            vs = f"{d:+.4f} ± {se:.4f}"
        lines.append(f"| {name} | {np.mean(sc[name]):.4f} ± {np.std(sc[name]):.4f} | {vs} | {verdict} | "
                     f"{np.mean(o['wall'][name]):.1f} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", required=True, metavar="TABLE[:REPEATS]",
                   help=f"tables ({', '.join(sorted(TABLES))}), each with its own repeats after a colon")
    p.add_argument("--arm", action="append", required=True, metavar="NAME=FAMILY[:KEY=VALUE,...]")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    arms = [parse_arm(s) for s in a.arm]
    tables = [(k, int(r) if r else a.repeats) for k, _, r in (x.partition(":") for x in a.only)]
    for k, _ in tables:
        if k not in TABLES:
            raise SystemExit(f"--only {k}: not a table; choose from {', '.join(sorted(TABLES))}")
    started, t0, load0 = dt.datetime.now(dt.UTC), time.perf_counter(), os.getloadavg()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kit-bench-ab-") as tmpd:
        root = Path(tmpd)
        os.environ["KIT_COMPETITIONS_PATH"] = str(root / "comps")
        for name, _, _ in arms:
            (root / name).mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        outcomes = [(run_table(k, arms, r, root, env), r) for k, r in tables]
    wall, load1 = time.perf_counter() - t0, os.getloadavg()
    lines = [*report_header("Paired A/B of parameter variants on real tables", "tabular_ab.py",
                            argv if argv is not None else sys.argv[1:], started, wall, load0, load1),
             "Arms: " + "; ".join(f"`{n}` = {f}" + (f" with {', '.join(s)}" if s else " (defaults)")
                                  for n, f, s in arms) + ".", ""]
    for o, r in outcomes:
        lines += section(o, arms, r)
    text = "\n".join(lines) + "\n"
    out = a.out or ROOT / "bench" / "results" / "tabular-ab.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

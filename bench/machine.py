"""What every benchmark report says about the machine it ran on: CPU, code version, libraries, load."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_version() -> str:
    """`git describe` of the checkout (with -dirty when it has uncommitted changes)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions(**extra: str) -> str:
    """`python 3.11.7, numpy ..., kit <commit>`: the libraries a result depends on."""
    import fastai
    import numpy as np
    import pandas as pd
    import sklearn
    import torch

    libs = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__, "torch": torch.__version__, "fastai": fastai.__version__,
            **extra, "kit": git_version()}
    return ", ".join(f"{k} {v}" for k, v in libs.items())


def load_text(avg: tuple[float, float, float]) -> str:
    """A load average as 1.00/0.80/0.50."""
    return "/".join(f"{x:.2f}" for x in avg)


def report_header(title: str, script: str, argv: list[str], started: dt.datetime, wall: float,
                  load0: tuple[float, float, float], load1: tuple[float, float, float], machine_note: str = "",
                  versions_note: str = "") -> list[str]:
    """A report's title and its date, command, machine (with the load at start and end) and versions lines."""
    return [f"# {title}", "", f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; total wall time {wall:.0f} s",
            f"- command: `python bench/{script} {' '.join(argv)}`",
            f"- machine: {cpu_model()}, {os.cpu_count()} cores; load average (1/5/15 min) at start "
            f"{load_text(load0)}, at end {load_text(load1)}{machine_note}",
            f"- versions: {versions()}{versions_note}", ""]

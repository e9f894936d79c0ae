"""What every benchmark report says about the machine it ran on: CPU, code version, libraries, load."""

from __future__ import annotations

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

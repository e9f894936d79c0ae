"""kit: a toolkit for Kaggle-style competitions."""

__version__ = "0.1.0"

import os
import warnings

# Idle OpenMP threads sleep instead of spinning: with other processes on the same cores, spinning threads cut
# torch's CPU throughput by an order of magnitude. Only effective when set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# fastai's import touches torch.jit.script, which torch >= 2.14 flags as deprecated; it is not ours to fix
# and would otherwise print on every command, in front of our one-line errors.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)

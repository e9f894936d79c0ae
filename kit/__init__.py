"""kit: a toolkit for Kaggle-style competitions."""

__version__ = "0.1.0"

import warnings

# fastai's import touches torch.jit.script, which torch >= 2.14 flags as deprecated; it is not ours to fix
# and would otherwise print on every command, in front of our one-line errors.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)

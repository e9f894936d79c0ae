"""PNG plots of results worth looking at (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from kit.io import atomic_write_bytes  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    """Save a figure as PNG atomically and close it."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def threshold_curve(grid: np.ndarray, curve: np.ndarray, chosen: float, metric: str, path: Path) -> Path:
    """Metric vs decision threshold, with the chosen threshold and 0.5 marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(grid, curve, lw=1.5)
    ax.axvline(0.5, color="grey", ls=":", label="0.5")
    ax.axvline(chosen, color="C3", ls="--", label=f"chosen {chosen:.2f}")
    ax.set_xlabel("threshold")
    ax.set_ylabel(f"OOF {metric}")
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)


def learning_curves(histories: list[list[dict]], path: Path) -> Path:
    """Train and validation loss per epoch for every fold."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, hist in enumerate(histories):
        if not hist:
            continue
        ep = np.arange(1, len(hist) + 1)
        ax.plot(ep, [h.get("train_loss") for h in hist], color=f"C{k}", alpha=0.5, ls="--")
        ax.plot(ep, [h.get("valid_loss") for h in hist], color=f"C{k}", label=f"fold {k + 1}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (dashed: train, solid: valid)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)

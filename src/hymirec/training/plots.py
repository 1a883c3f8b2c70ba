"""Training curves as a PNG: loss and validation NDCG@10 per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_training_curves(history: list[dict[str, Any]], path: str | Path) -> None:
    """Plot training loss and validation NDCG@10 against the epoch."""
    if not history:
        return
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_ndcg) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["loss"] for r in history], marker=".")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="InfoNCE loss")
    ax_ndcg.plot(epochs, [r["valid"]["ndcg@10"] for r in history], marker=".", color="tab:green")
    ax_ndcg.set(xlabel="epoch", ylabel="NDCG@10", title="validation NDCG@10")
    for ax in (ax_loss, ax_ndcg):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

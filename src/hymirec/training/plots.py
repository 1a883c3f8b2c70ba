"""Training curves as a PNG: loss and the validation selection metric per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_training_curves(history: list[dict[str, Any]], path: str | Path, metric: str = "ndcg@10") -> None:
    """Plot training loss and the validation ``metric`` against the epoch."""
    if not history:
        return
    # Imported here: matplotlib costs ~0.5 s at import and only this function draws. A Figure of
    # its own (not pyplot) renders with the Agg canvas and leaves the caller's backend alone.
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_ndcg = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["loss"] for r in history], marker=".")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="InfoNCE loss")
    ax_ndcg.plot(epochs, [r["valid"][metric] for r in history], marker=".", color="tab:green")
    ax_ndcg.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    for ax in (ax_loss, ax_ndcg):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)

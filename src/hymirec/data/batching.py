"""From sequences to training batches: next-item windows and right-padded id matrices."""

from __future__ import annotations

import numpy as np
import torch


def training_windows(
    sequences: list[tuple[np.ndarray, np.ndarray]], max_len: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut training sequences into (inputs, timestamps, next-item targets) windows of at most
    ``max_len`` positions, so that every next-item pair of a long sequence is trained on (the
    most recent window keeps the most context; earlier windows start their context afresh)."""
    windows = []
    for items, times in sequences:
        n_pairs = len(items) - 1
        end = n_pairs
        while end > 0:
            start = max(0, end - max_len)
            windows.append((items[start:end], times[start:end], items[start + 1 : end + 1]))
            end = start
    return windows


def pad_right(rows: list[np.ndarray], length: int | None = None) -> torch.Tensor:
    """Stack int64 rows into ``[B, L]``, right-padded with 0 (L = longest row by default)."""
    length = max((len(r) for r in rows), default=0) if length is None else length
    out = np.zeros((len(rows), max(length, 1)), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)


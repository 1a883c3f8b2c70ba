"""From sequences to training batches: next-item windows and right-padded id matrices."""

from __future__ import annotations

import numpy as np
import torch


def training_windows(
    sequences: list[tuple[np.ndarray, np.ndarray]], max_len: int, phases: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut training sequences into (inputs, timestamps, next-item targets) windows of at most
    ``max_len`` positions, so that every next-item pair of a long sequence is trained on exactly
    once (the most recent window keeps the most context; earlier windows start their context
    afresh).

    ``phases`` (one per sequence, each in ``0..max_len-1``): after the most recent window, a
    window of that many positions, then windows of ``max_len`` again; drawn anew each epoch
    (``data.window_phase: random``) the boundaries, and with them each position's context, move
    between epochs. ``None`` (or 0): fixed windows of ``max_len`` from the end."""
    windows = []
    for index, (items, times) in enumerate(sequences):
        phase = 0 if phases is None else int(phases[index])
        bounds, step = [len(items) - 1], max_len  # from the number of next-item pairs down to 0
        while bounds[-1] > 0:
            bounds.append(max(0, bounds[-1] - step))
            step = phase if len(bounds) == 2 and phase else max_len
        windows += [(items[start:end], times[start:end], items[start + 1 : end + 1])
                    for end, start in zip(bounds, bounds[1:])]
    return windows


def pad_right(rows: list[np.ndarray], length: int | None = None) -> torch.Tensor:
    """Stack int64 rows into ``[B, L]``, right-padded with 0 (L = longest row by default)."""
    length = max((len(r) for r in rows), default=0) if length is None else length
    out = np.zeros((len(rows), max(length, 1)), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)


"""From sequences to training batches: next-item windows and right-padded id matrices."""

from __future__ import annotations

import numpy as np
import torch


def training_windows(
    sequences: list[tuple[np.ndarray, np.ndarray]],
    max_len: int,
    phases: np.ndarray | None = None,
    context: int = 0,
    whole_prefix: bool = True,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut training sequences into (inputs, timestamps, next-item targets) windows of at most
    ``max_len`` positions, so that every next-item pair of a long sequence is trained on exactly
    once (the most recent window keeps the most context; earlier windows start their context
    afresh).

    ``phases`` (one per sequence, each in ``0..max_len-context-1``): after the most recent window,
    a window of that many trained positions, then full windows again; drawn anew each epoch
    (``data.window_phase: random``) the boundaries, and with them each position's context, move
    between epochs. ``None`` (or 0): fixed windows from the end.

    ``context`` (``data.window_context``): each window's first ``context`` positions are read but
    not trained (target 0) and overlap the window before, so that every trained pair past the
    sequence's start sees at least ``context`` earlier items, as it does at inference, where the
    model reads the last ``max_len`` items (RecBole reads a full window before every pair). Each
    pair is still trained once; a sequence costs about ``max_len / (max_len - context)`` times the
    positions to run.

    ``whole_prefix`` (``data.window_whole_prefix``): with a context, the oldest ``max_len`` items
    of a sequence are one window, all of them trained (fewer rows); ``False``: every window trains
    at most ``max_len - context`` pairs, so that rows train about as many pairs each and a batch of
    rows stays a batch of about as many pairs while each reads a long context (HyMiRec's long
    history before its trained positions)."""
    if not 0 <= context < max_len:
        raise ValueError(f"data.window_context must be in [0, max_len={max_len}), got {context}")
    windows, trained = [], max_len - context
    for index, (items, times) in enumerate(sequences):
        phase = 0 if phases is None else int(phases[index])
        bounds, step = [len(items) - 1], trained  # from the number of next-item pairs down to 0
        while bounds[-1] > 0:
            end = bounds[-1]  # with a context, a prefix that fits one window is read whole, all trained
            bounds.append(0 if context and whole_prefix and end <= max_len else max(0, end - step))
            step = phase if len(bounds) == 2 and phase else trained
        for end, start in zip(bounds, bounds[1:]):
            read = max(0, start - context)
            targets = items[read + 1 : end + 1].copy()
            targets[: start - read] = 0  # context only: trained by the window before
            windows.append((items[read:end], times[read:end], targets))
    return windows


def pad_right(rows: list[np.ndarray], length: int | None = None) -> torch.Tensor:
    """Stack int64 rows into ``[B, L]``, right-padded with 0 (L = longest row by default)."""
    length = max((len(r) for r in rows), default=0) if length is None else length
    out = np.zeros((len(rows), max(length, 1)), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)


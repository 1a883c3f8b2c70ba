"""The long history as the paper serves it: each item held as a few codebook codes and scales,
decoded on demand into an approximate item vector for the lightweight recommender.

Only codes, scales and the (small) centroid tables are kept; decoding an item is a gather of
``L`` centroid rows and a weighted sum. ``codebook: none`` keeps the raw vectors instead (the
ablation); ``bytes_per_item`` says what one history item costs to fetch either way.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from hymirec.codebook import CodebookError, ResidualCodebook, fit, load
from hymirec.models.hymirec.config import HistoryConfig

log = logging.getLogger(__name__)


def history_codebook(config: HistoryConfig, vectors: np.ndarray) -> ResidualCodebook:
    """The codebook of ``config`` (loaded from ``codebook_path`` or fitted on ``vectors``
    ``[n, d]``); an error when a loaded one is of another variant or dimension."""
    if config.codebook_path is None:
        book = fit(vectors, config.codebook_config())
        log.info("history codebook fitted on %d item vectors: %d bytes per item", len(vectors),
                 book.config.bytes_per_item)
        return book
    book = load(config.codebook_path)
    if book.config.variant != config.codebook:
        raise CodebookError(f"history.codebook_path {config.codebook_path} is a {book.config.variant} codebook, "
                            f"history.codebook says {config.codebook}")
    if book.dim != vectors.shape[1]:
        raise CodebookError(f"history.codebook_path {config.codebook_path} has dimension {book.dim}, "
                            f"the item embeddings have {vectors.shape[1]}")
    return book


class CompressedHistory(nn.Module):
    """Item ids -> ``[*ids.shape, d]`` history vectors, decoded from codes (or raw)."""

    def __init__(self, config: HistoryConfig, vectors: torch.Tensor) -> None:
        """``vectors``: ``[n_items + 1, d]`` item vectors, row 0 padding."""
        super().__init__()
        self.dim = vectors.shape[1]
        # Rebuilt with the model (fitted with a seed or read from a file), never checkpointed.
        if config.codebook == "none":
            # The item table itself (no copy): the ablation reads what the codebook would compress.
            self.register_buffer("raw", vectors.float(), persistent=False)
            self.bytes_per_item = 4 * self.dim
            return
        self.raw = None
        book = history_codebook(config, vectors[1:].float().numpy())
        codes, scales = book.encode(vectors[1:].float().numpy())
        rows, weights = book.decoding_terms(codes, scales)
        # Padding decodes to zero: weight 0 on any row.
        rows = np.vstack([np.zeros((1, rows.shape[1]), dtype=np.int64), rows])
        weights = np.vstack([np.zeros((1, weights.shape[1]), dtype=np.float32), weights])
        self.register_buffer("rows", torch.from_numpy(rows), persistent=False)
        self.register_buffer("weights", torch.from_numpy(weights), persistent=False)
        self.register_buffer("centroids", torch.from_numpy(book.stacked_centroids.copy()), persistent=False)
        self.bytes_per_item = book.config.bytes_per_item

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.raw is not None:
            return self.raw[ids]
        rows, weights = self.rows[ids], self.weights[ids]
        return (self.centroids[rows] * weights.unsqueeze(-1)).sum(-2)

"""Cosine residual codebook (HyMiRec stage 1): item embeddings -> a few bytes of codes + scales.

    from hymirec.codebook import CodebookConfig, fit, load

    book = fit(basepool, CodebookConfig(layers=3, k=256))   # the paper's cosine variant
    codes, scales = book.encode(embeddings)                  # [n, 3] uint8, [n, 3] float16
    approx = book.decode(codes, scales)                      # [n, d] float32
    book.save("codebook.safetensors"); book = load("codebook.safetensors")
    book.stats().bytes_per_item                              # 9

``add``/``drift``/``refresh`` encode new items without refitting and refit when the recent
items' reconstruction cosine drifts below the fit-time baseline.
"""

from hymirec.codebook.codebook import (
    CodebookStats,
    DriftStatus,
    EncodedItems,
    LayerStats,
    ResidualCodebook,
    check_embeddings,
    fit,
    load,
)
from hymirec.codebook.config import CodebookConfig
from hymirec.codebook.errors import CodebookError
from hymirec.codebook.io import load_codes, load_embeddings, save_codes
from hymirec.codebook.quality import (
    balance,
    neighbour_recall,
    reconstruction_cosine,
    top_k_cosine,
)
from hymirec.codebook.synthetic import clustered_embeddings

__all__ = [
    "CodebookConfig",
    "CodebookError",
    "CodebookStats",
    "DriftStatus",
    "EncodedItems",
    "LayerStats",
    "ResidualCodebook",
    "balance",
    "check_embeddings",
    "clustered_embeddings",
    "fit",
    "load",
    "load_codes",
    "load_embeddings",
    "neighbour_recall",
    "reconstruction_cosine",
    "save_codes",
    "top_k_cosine",
]

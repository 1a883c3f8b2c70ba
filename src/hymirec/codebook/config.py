"""Typed settings of a residual codebook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hymirec.codebook.errors import CodebookError
from hymirec.codebook.scales import scale_bits
from hymirec.config import from_dict, require_positive, to_dict

Variant = Literal["cosine", "euclidean"]
ScaleDtype = Literal["float16", "float32", "uint8", "uint4"]



@dataclass
class CodebookConfig:
    """Settings of a residual codebook; ``from_dict``/``to_dict`` give its JSON form.

    ``variant``: ``cosine`` (the paper's: spherical centroids, residual orthogonal to the chosen
    centroid, one stored scale per layer) or ``euclidean`` (standard residual quantisation,
    residual ``e - c``, no scales).
    ``k``: centroids per layer, one number for all layers or one per layer.
    ``scale_dtype``: how the cosine variant stores its per-layer scales; ``uint8``/``uint4``
    quantise each layer's scale to 256/16 levels fitted (Lloyd-Max) to the basepool's scales
    (``uint4`` packs two scales per byte).
    ``antipodal``: cosine variant only. ``False`` (default) is the paper's rule: an item takes
    its most similar centroid by signed cosine. ``True`` lets it take ``-c`` (a negative scale)
    when that is closer, doubling the directions of the residual layers for free since the scale
    carries the sign: reconstruction cosine rises, but neighbour recall@10 measured lower
    (benchmarks/results/codebook), so it is off by default.
    ``balanced`` / ``balance_slack``: capacity-constrained assignment while fitting: no cluster
    holds more than ``ceil((1 + balance_slack) * n / k)`` basepool items.
    ``basepool_size``: how many vectors (sampled with ``seed``) the codebook is fitted on.
    ``drift_window`` / ``drift_tolerance``: ``add`` keeps the reconstruction cosine of the last
    ``drift_window`` items; ``refresh`` refits when their mean falls more than
    ``drift_tolerance`` below the basepool's mean at fit time.
    """

    variant: Variant = "cosine"
    layers: int = 3
    k: int | list[int] = 256
    scale_dtype: ScaleDtype = "float16"
    antipodal: bool = False
    balanced: bool = True
    balance_slack: float = 0.1
    basepool_size: int = 100_000
    kmeans_iters: int = 15
    init_iters: int = 10
    batch_size: int = 65_536
    seed: int = 0
    drift_window: int = 10_000
    drift_tolerance: float = 0.02

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``CodebookError`` naming the first setting that is out of range."""
        if self.variant not in ("cosine", "euclidean"):
            raise CodebookError(f"variant must be 'cosine' or 'euclidean', got {self.variant!r}")
        if self.scale_dtype not in ("float16", "float32", "uint8", "uint4"):
            raise CodebookError(f"scale_dtype {self.scale_dtype!r} is not float16/float32/uint8/uint4")
        if not isinstance(self.layers, int) or self.layers < 1:
            raise CodebookError(f"layers must be a positive integer, got {self.layers!r}")
        ks = self.k if isinstance(self.k, list) else [self.k]
        if isinstance(self.k, list) and len(self.k) != self.layers:
            raise CodebookError(f"k lists {len(self.k)} values for {self.layers} layers")
        if any(not isinstance(k, int) or k < 2 or k > 2**32 for k in ks):
            raise CodebookError(f"k must be integers between 2 and 2**32, got {self.k!r}")
        if self.balance_slack < 0:
            raise CodebookError(f"balance_slack must be >= 0, got {self.balance_slack}")
        require_positive(
            self, ("basepool_size", "kmeans_iters", "init_iters", "batch_size", "drift_window"), CodebookError
        )
        if self.drift_tolerance < 0:
            raise CodebookError(f"drift_tolerance must be >= 0, got {self.drift_tolerance}")

    @property
    def ks(self) -> list[int]:
        """Centroids per layer, one entry per layer."""
        return list(self.k) if isinstance(self.k, list) else [self.k] * self.layers

    @property
    def has_scales(self) -> bool:
        return self.variant == "cosine"

    @property
    def code_dtype(self) -> np.dtype:
        """The narrowest unsigned integer type that holds every code of every layer."""
        top = max(self.ks) - 1
        for dtype in (np.uint8, np.uint16, np.uint32):
            if top <= np.iinfo(dtype).max:
                return np.dtype(dtype)
        raise AssertionError("validate() bounds k by 2**32")

    @property
    def bytes_per_item(self) -> int:
        """Stored bytes per encoded item: the codes plus, for the cosine variant, the scales."""
        scale_bytes = -(-self.layers * scale_bits(self.scale_dtype) // 8) if self.has_scales else 0
        return self.layers * self.code_dtype.itemsize + scale_bytes

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CodebookConfig:
        """Strict construction from plain data: unknown keys and ill-typed values are errors."""
        return from_dict(cls, data, where="codebook")

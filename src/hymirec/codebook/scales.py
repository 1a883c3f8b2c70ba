"""How the cosine codebook stores its per-layer scales: fp16, fp32, or 8-bit linear levels."""

from __future__ import annotations

import numpy as np

_FLOAT = {"float16": np.float16, "float32": np.float32}


class ScaleCodec:
    """Turns float scales into their stored form and back, for one layer.

    ``uint8`` maps ``[lo, hi]`` (the range of the layer's scales on the basepool) onto 256 even
    levels and clips outside it. The encoder computes each next residual from the *stored*
    scale, so the quantisation error of one layer is left for the next layers to correct.
    """

    def __init__(self, dtype: str, lo: float = 0.0, hi: float = 1.0) -> None:
        self.dtype = dtype
        self.lo = float(lo)
        self.hi = float(hi) if hi > lo else float(lo) + 1e-6

    @classmethod
    def fitted(cls, dtype: str, scales: np.ndarray) -> ScaleCodec:
        """A codec whose 8-bit range covers ``scales`` (float dtypes need no fitting)."""
        if dtype == "uint8" and scales.size:
            return cls(dtype, float(scales.min()), float(scales.max()))
        return cls(dtype)

    @property
    def storage_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.dtype == "uint8" else _FLOAT[self.dtype])

    def encode(self, scales: np.ndarray) -> np.ndarray:
        if self.dtype != "uint8":
            return scales.astype(_FLOAT[self.dtype])
        step = (self.hi - self.lo) / 255.0
        levels = np.rint((scales - self.lo) / step)
        return np.clip(levels, 0, 255).astype(np.uint8)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if self.dtype != "uint8":
            return stored.astype(np.float32)
        step = (self.hi - self.lo) / 255.0
        return (self.lo + stored.astype(np.float32) * step).astype(np.float32)

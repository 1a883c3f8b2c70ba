"""How the cosine codebook stores its per-layer scales: fp16, fp32, or 8- or 4-bit levels.

Quantised scales take one of ``2**bits`` levels per layer, placed by Lloyd-Max (1-D k-means) on
the layer's scales over the basepool: the levels sit where the scales are, instead of evenly over
a [min, max] range that a few outliers stretch (first-layer scales, the cosines to the chosen
centroid, crowd into a narrow band). The encoder computes each next residual from the *stored*
scale, so one layer's quantisation error is left for the next layers to correct. ``uint4`` scales
are packed two to a byte (layer ``2j`` in the low nibble, ``2j + 1`` in the high one).
"""

from __future__ import annotations

import numpy as np

_FLOAT = {"float16": np.float16, "float32": np.float32}
_BITS = {"uint8": 8, "uint4": 4}
_LLOYD_ITERS = 25


def scale_bits(dtype: str) -> int:
    """Bits one stored scale takes."""
    return _BITS.get(dtype) or np.dtype(_FLOAT[dtype]).itemsize * 8


def n_levels(dtype: str) -> int:
    """Number of quantisation levels of an integer scale dtype (0 for float dtypes)."""
    return 2 ** _BITS[dtype] if dtype in _BITS else 0


def lloyd_max_levels(values: np.ndarray, count: int, iters: int = _LLOYD_ITERS) -> np.ndarray:
    """``count`` sorted levels minimising the squared error of rounding ``values`` to the nearest
    one: quantile start, then Lloyd iterations (each level moves to the mean of its values)."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    levels = np.quantile(v, (np.arange(count) + 0.5) / count)
    for _ in range(iters):
        index = np.searchsorted((levels[1:] + levels[:-1]) / 2, v)
        sums = np.bincount(index, weights=v, minlength=count)
        counts = np.bincount(index, minlength=count)
        levels = np.where(counts > 0, sums / np.maximum(counts, 1), levels)
    return np.sort(levels).astype(np.float32)


class ScaleCodec:
    """Turns one layer's float scales into stored values (floats or level indices) and back."""

    def __init__(self, dtype: str, levels: np.ndarray | None = None) -> None:
        self.dtype = dtype
        self.levels = None if levels is None else np.asarray(levels, dtype=np.float32)
        if dtype in _BITS and (self.levels is None or self.levels.shape != (n_levels(dtype),)):
            raise ValueError(f"a {dtype} scale codec needs {n_levels(dtype)} levels")

    @classmethod
    def fitted(cls, dtype: str, scales: np.ndarray) -> ScaleCodec:
        """A codec whose levels are fitted to ``scales`` (float dtypes need no fitting)."""
        if dtype in _BITS:
            return cls(dtype, lloyd_max_levels(scales, n_levels(dtype)))
        return cls(dtype)

    def encode(self, scales: np.ndarray) -> np.ndarray:
        if self.levels is None:
            return scales.astype(_FLOAT[self.dtype])
        midpoints = (self.levels[1:] + self.levels[:-1]) / 2
        return np.searchsorted(midpoints, scales).astype(np.uint8)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if self.levels is None:
            return stored.astype(np.float32)
        return self.levels[stored]


def storage_dtype(dtype: str) -> np.dtype:
    """The numpy dtype of the stored scale array."""
    return np.dtype(_FLOAT.get(dtype, np.uint8))


def stored_columns(dtype: str, layers: int) -> int:
    """Columns of the stored scale array: one per layer, or one per two layers for ``uint4``."""
    return (layers + 1) // 2 if dtype == "uint4" else layers


def pack(values: np.ndarray, dtype: str) -> np.ndarray:
    """``[n, layers]`` per-layer stored values -> the stored scale array."""
    if dtype != "uint4":
        return values
    padded = values if values.shape[1] % 2 == 0 else np.pad(values, ((0, 0), (0, 1)))
    return (padded[:, 0::2] | (padded[:, 1::2] << 4)).astype(np.uint8)


def unpack(stored: np.ndarray, dtype: str, layers: int) -> np.ndarray:
    """The stored scale array -> ``[n, layers]`` per-layer stored values."""
    if dtype != "uint4":
        return stored
    out = np.empty((len(stored), 2 * stored.shape[1]), dtype=np.uint8)
    out[:, 0::2] = stored & 0x0F
    out[:, 1::2] = stored >> 4
    return out[:, :layers]

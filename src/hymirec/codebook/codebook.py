"""The residual codebook: fit, encode, decode, incremental add/refresh, stats, save/load.

One residual-quantiser loop serves both variants; what differs (scores, scale, centroid update,
search) comes from ``geometry.py``. Per layer ``l`` an item ``e_l`` goes to its best centroid
``c``; the cosine variant stores ``s = e_l.c / ||c||^2`` and passes on ``e_l - s c`` (the part of
``e_l`` orthogonal to ``c``), the Euclidean variant passes on ``e_l - c``. Decoding is
``sum_l s_l c_l`` (``s_l = 1`` for the Euclidean variant).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from hymirec.codebook.balanced_kmeans import capacity, fit_layer
from hymirec.codebook.config import CodebookConfig
from hymirec.codebook.errors import CodebookError
from hymirec.codebook.geometry import make_geometry, nearest
from hymirec.codebook.io import read_codebook, write_codebook
from hymirec.codebook.scales import ScaleCodec, pack, storage_dtype, stored_columns, unpack
from hymirec.distributed import WORLD_OF_ONE, World

REFERENCE_DIM = 2048  # the paper's item-embedding size, used to quote its compression ratio


def check_embeddings(x: Any, dim: int | None = None, *, offset: int = 0) -> np.ndarray:
    """``x`` as a float32 ``[n, d]`` array, or a ``CodebookError`` saying what is wrong with it:
    not 2-D, not numeric, the wrong dimension, NaN/inf, or an all-zero row (a zero vector has no
    direction, so neither its cosine codes nor its reconstruction cosine are defined).
    ``offset`` is added to row numbers in messages when ``x`` is a batch of a larger array."""
    array = np.asarray(x)
    if array.ndim != 2:
        raise CodebookError(f"embeddings must be a 2-D array [items, dim], got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise CodebookError(f"embeddings must be numeric, got dtype {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise CodebookError(f"embeddings have dimension {array.shape[1]}, the codebook has {dim}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise CodebookError(
            f"embeddings hold NaN or inf in {bad.size} row(s), the first at row {bad[0] + offset}"
        )
    zero = ~array.any(axis=1)
    if zero.any():
        bad = np.flatnonzero(zero)
        raise CodebookError(
            f"embeddings hold {bad.size} all-zero row(s), the first at row {bad[0] + offset}; "
            "a zero vector has no direction to encode"
        )
    return array


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = np.einsum("ij,ij->i", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-30)


@dataclass
class LayerStats:
    """Fit-time numbers of one layer, measured on the basepool."""

    k: int
    reconstruction_cosine: float  # mean cos(e, decode of layers 1..l)
    relative_error: float  # mean ||e - e_hat||^2 / ||e||^2 after layers 1..l
    fit_sizes: list[int]  # cluster sizes of the (balanced) fit assignment
    code_sizes: list[int]  # cluster sizes when each item takes its best centroid (encode rule)
    capacity: int | None  # the balance cap on fit_sizes, None when unbalanced
    iterations: int


@dataclass
class DriftStatus:
    """Reconstruction quality of recently added items against the fit-time baseline."""

    recent_cosine: float | None  # mean reconstruction cosine of the last ``n_recent`` added items
    n_recent: int
    baseline_cosine: float  # the basepool's mean reconstruction cosine at fit time
    threshold: float
    needs_refresh: bool


@dataclass
class CodebookStats:
    """What a fitted codebook costs and how well it fitted; ``to_dict`` for JSON."""

    variant: str
    dim: int
    layers: int
    ks: list[int]
    code_dtype: str
    scale_dtype: str | None
    bytes_per_item: int
    compression_ratio: float  # fp32 embedding of this codebook's dim / bytes_per_item
    compression_ratio_2048: float  # the same for a 2048-d fp32 embedding (the paper's size)
    codebook_bytes: int  # the centroids themselves, fp32
    basepool_size: int
    fit_seconds: float
    layer_stats: list[LayerStats]
    drift: DriftStatus

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EncodedItems:
    """Encoded items and how well each is reconstructed after each layer."""

    codes: np.ndarray  # [n, L]
    scales: np.ndarray | None  # as returned by ``encode``
    cosines: np.ndarray  # [n, L] float32: cos(e, decode of layers 1..l)


@dataclass
class _FitState:
    basepool_size: int
    fit_seconds: float
    layer_stats: list[LayerStats] = field(default_factory=list)

    @property
    def baseline_cosine(self) -> float:
        return self.layer_stats[-1].reconstruction_cosine


class ResidualCodebook:
    """A multi-layer residual codebook (cosine or Euclidean variant, see ``CodebookConfig``)."""

    def __init__(self, config: CodebookConfig | None = None) -> None:
        self.config = config or CodebookConfig()
        self._geometry = make_geometry(self.config.variant, self.config.antipodal)
        self.dim: int | None = None
        self.centroids: list[np.ndarray] = []
        self._codecs: list[ScaleCodec] = []
        self._fit: _FitState | None = None
        self._recent = np.zeros(self.config.drift_window, dtype=np.float32)
        self._n_recent = 0
        self._recent_pos = 0

    # ----------------------------------------------------------------- fitting
    @property
    def is_fitted(self) -> bool:
        return self._fit is not None

    def fit(self, basepool: Any, *, progress: bool = False) -> ResidualCodebook:
        """Fit every layer on a basepool of ``basepool_size`` rows sampled (with ``seed``) from
        ``basepool`` (any ``[n, d]`` array, a memory-mapped one included: only the sample is
        read). Refitting replaces the previous codebook and clears the drift window."""
        cfg = self.config
        if not hasattr(basepool, "shape"):
            basepool = np.asarray(basepool)
        n = basepool.shape[0] if basepool.ndim else 0
        ks = cfg.ks
        if n < max(ks):
            raise CodebookError(
                f"fit needs at least as many vectors as centroids: got {n} vectors for k={max(ks)}"
            )
        if cfg.basepool_size < max(ks):
            raise CodebookError(
                f"basepool_size={cfg.basepool_size} is smaller than k={max(ks)} centroids"
            )
        start = time.perf_counter()
        if n > cfg.basepool_size:
            rng = np.random.default_rng(cfg.seed)
            rows = np.sort(rng.choice(n, size=cfg.basepool_size, replace=False))
            x = check_embeddings(basepool[rows])
        else:
            x = check_embeddings(basepool)
        self.dim = x.shape[1]
        # unfitted until every layer is in place, so a failed refit cannot leave a mixed codebook
        self._fit = None
        self.centroids, self._codecs, stats = [], [], []
        residual = x.copy()
        for layer, k in enumerate(tqdm(ks, desc="codebook fit", unit="layer", disable=not progress)):
            fitted = fit_layer(
                residual,
                k,
                self._geometry,
                iters=cfg.kmeans_iters,
                init_iters=cfg.init_iters,
                seed=cfg.seed + layer,
                balanced=cfg.balanced,
                slack=cfg.balance_slack,
            )
            self.centroids.append(fitted.centroids)
            codes, _ = self._quantise_layer(layer, residual, fit_codec=True)
            approx = x - residual
            stats.append(
                LayerStats(
                    k=k,
                    reconstruction_cosine=float(_cosine(x, approx).mean()),
                    relative_error=float(
                        (np.einsum("ij,ij->i", residual, residual) / np.einsum("ij,ij->i", x, x)).mean()
                    ),
                    fit_sizes=np.bincount(fitted.assign, minlength=k).tolist(),
                    code_sizes=np.bincount(codes, minlength=k).tolist(),
                    capacity=capacity(len(x), k, cfg.balance_slack) if cfg.balanced else None,
                    iterations=fitted.iterations,
                )
            )
        self._fit = _FitState(len(x), time.perf_counter() - start, stats)
        self._build_tables()
        self._n_recent = self._recent_pos = 0
        return self

    def _build_tables(self) -> None:
        # Decoding is one sparse-times-dense product: a row per item with one weight per layer,
        # at column offset(layer) + code, against all layers' centroids stacked.
        self._stacked = np.ascontiguousarray(np.vstack(self.centroids), dtype=np.float32)
        self._offsets = np.concatenate([[0], np.cumsum(self.config.ks)[:-1]]).astype(np.int64)

    def _require_fitted(self) -> None:
        if self._fit is None:
            raise CodebookError("the codebook is not fitted: call fit() or load() first")

    # ---------------------------------------------------------------- encoding
    def encode_layers(
        self, x: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray]]:
        """Encode one validated float32 batch layer by layer, yielding ``(layer, codes,
        stored_scales or None, residual)``; the residual is what layers after ``layer`` still
        have to represent (it is updated in place: copy it to keep it)."""
        self._require_fitted()
        residual = x.copy()
        for layer in range(self.config.layers):
            codes, stored = self._quantise_layer(layer, residual)
            yield layer, codes, stored, residual

    def _quantise_layer(
        self, layer: int, residual: np.ndarray, fit_codec: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        # The one residual-quantiser step of both variants, shared by fit and encode: best
        # centroid, scale (1 for Euclidean), stored scale, and the residual left for the next
        # layer, computed from the stored scale and updated in place. ``fit_codec`` first fits
        # this layer's scale quantiser to the scales it is about to store.
        centroids = self.centroids[layer]
        codes = nearest(self._geometry, residual, centroids)
        chosen = centroids[codes]
        scale = self._geometry.scale(residual, chosen)
        stored = None
        if self.config.has_scales:
            if fit_codec:
                self._codecs.append(ScaleCodec.fitted(self.config.scale_dtype, scale))
            stored = self._codecs[layer].encode(scale)
            scale = self._codecs[layer].decode(stored)
        residual -= scale[:, None] * chosen
        return codes, stored

    def _encode(
        self, embeddings: Any, batch_size: int | None, progress: bool, track: bool, world: World = WORLD_OF_ONE
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        self._require_fitted()
        cfg = self.config
        shape = getattr(embeddings, "shape", None) or np.shape(embeddings)
        if len(shape) != 2:
            raise CodebookError(f"embeddings must be a 2-D array [items, dim], got shape {shape}")
        n = shape[0]
        codes = np.empty((n, cfg.layers), dtype=cfg.code_dtype)
        scales = None
        if cfg.has_scales:
            columns = stored_columns(cfg.scale_dtype, cfg.layers)
            scales = np.empty((n, columns), dtype=storage_dtype(cfg.scale_dtype))
        cosines = np.empty((n, cfg.layers), dtype=np.float32) if track else None
        step = batch_size or cfg.batch_size
        span = world.share(n, step)  # all of them outside torchrun
        batches = range(span.start, span.stop, step)
        for start in tqdm(batches, desc="codebook encode", unit="batch", disable=not progress or not world.main):
            stop = min(start + step, n)
            x = check_embeddings(embeddings[start:stop], self.dim, offset=start)
            per_layer = []
            for layer, layer_codes, stored, residual in self.encode_layers(x):
                codes[start:stop, layer] = layer_codes
                per_layer.append(stored)
                if cosines is not None:
                    cosines[start:stop, layer] = _cosine(x, x - residual)
            if scales is not None:
                scales[start:stop] = pack(np.column_stack(per_layer), cfg.scale_dtype)
        if world.distributed:
            codes, scales, cosines = (None if a is None else world.gather_array(a[span.start: span.stop], n)
                                      for a in (codes, scales, cosines))
        return codes, scales, cosines

    def encode(
        self, embeddings: Any, *, batch_size: int | None = None, progress: bool = False, world: World = WORLD_OF_ONE
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Encode ``[n, d]`` embeddings in batches -> ``(codes [n, L], scales [n, L])``.

        Codes use the narrowest unsigned integer type that holds ``k``; scales use
        ``scale_dtype`` (``uint4``: ``[n, ceil(L / 2)]`` bytes, two layers each) and are ``None``
        for the Euclidean variant, which stores none. Under torchrun (``world``) each rank encodes
        its share of whole batches and every rank gets all of them, exactly as one process
        encodes them (rows are encoded independently)."""
        codes, scales, _ = self._encode(embeddings, batch_size, progress, False, world)
        return codes, scales

    def encode_with_quality(
        self, embeddings: Any, *, batch_size: int | None = None, progress: bool = False, world: World = WORLD_OF_ONE
    ) -> EncodedItems:
        """``encode`` that also measures, in the same pass, each item's reconstruction cosine
        after every layer."""
        codes, scales, cosines = self._encode(embeddings, batch_size, progress, True, world)
        return EncodedItems(codes, scales, cosines)

    def decode(self, codes: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
        """Reconstruct ``[n, d]`` float32 embeddings: ``sum_l scale_l * centroid_l[code_l]``."""
        columns, weights = self.decoding_terms(codes, scales)
        n, layers = columns.shape
        matrix = sp.csr_matrix(
            (weights.ravel(), columns.ravel(), np.arange(0, n * layers + 1, layers)),
            shape=(n, len(self._stacked)),
        )
        return np.asarray(matrix @ self._stacked, dtype=np.float32)

    def decoding_terms(self, codes: np.ndarray, scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """What ``decode`` sums, for a decoder that gathers on its own (a model decoding histories
        on demand): ``(rows, weights)``, both ``[n, L]``; item ``i`` decodes to
        ``sum_l weights[i, l] * stacked_centroids[rows[i, l]]``."""
        self._require_fitted()
        cfg = self.config
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != cfg.layers:
            raise CodebookError(f"codes must have shape [n, {cfg.layers}], got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise CodebookError(f"codes must be integers, got dtype {codes.dtype}")
        if len(codes) and (codes.min() < 0 or np.any(codes.max(axis=0) >= np.array(cfg.ks))):
            raise CodebookError(f"codes out of range for k={cfg.ks}")
        if cfg.has_scales:
            expected = (len(codes), stored_columns(cfg.scale_dtype, cfg.layers))
            if scales is None or np.shape(scales) != expected:
                raise CodebookError(
                    f"the cosine codebook needs scales of shape {expected}, got "
                    f"{None if scales is None else np.shape(scales)}"
                )
            values = unpack(np.asarray(scales), cfg.scale_dtype, cfg.layers)
            weights = np.column_stack(
                [codec.decode(values[:, i]) for i, codec in enumerate(self._codecs)]
            )
        else:
            if scales is not None:
                raise CodebookError("the Euclidean codebook stores no scales; pass scales=None")
            weights = np.ones(codes.shape, dtype=np.float32)
        return codes.astype(np.int64) + self._offsets, weights.astype(np.float32)

    @property
    def stacked_centroids(self) -> np.ndarray:
        """Every layer's centroids, stacked ``[sum(k), d]`` (the rows ``decoding_terms`` index)."""
        self._require_fitted()
        return self._stacked

    # ------------------------------------------------------- incremental update
    def add(
        self, new_embeddings: Any, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Encode new items against the existing codebook (no refitting) and record their
        reconstruction cosine in the drift window; returns ``(codes, scales)`` as ``encode``."""
        codes, scales, cosines = self._encode(new_embeddings, batch_size, False, track=True)
        tail = cosines[-len(self._recent) :, -1]
        positions = (self._recent_pos + np.arange(len(tail))) % len(self._recent)
        self._recent[positions] = tail
        self._recent_pos = int((self._recent_pos + len(tail)) % len(self._recent))
        self._n_recent = min(self._n_recent + len(tail), len(self._recent))
        return codes, scales

    def drift(self, threshold: float | None = None) -> DriftStatus:
        """How well recently added items are reconstructed compared with the fit-time basepool.
        ``needs_refresh`` when their mean cosine is below ``threshold`` (default: the baseline
        minus ``drift_tolerance``)."""
        self._require_fitted()
        baseline = self._fit.baseline_cosine
        limit = baseline - self.config.drift_tolerance if threshold is None else threshold
        recent = float(self._recent[: self._n_recent].mean()) if self._n_recent else None
        return DriftStatus(
            recent_cosine=recent,
            n_recent=self._n_recent,
            baseline_cosine=baseline,
            threshold=limit,
            needs_refresh=recent is not None and recent < limit,
        )

    def refresh(
        self, basepool: Any, *, threshold: float | None = None, force: bool = False
    ) -> bool:
        """Refit on ``basepool`` (e.g. a sample of old and new items) when ``drift`` says the
        recent items are reconstructed worse than ``threshold`` allows, or when ``force``.
        Returns whether it refitted; after a refit every stored code must be re-encoded."""
        if not (force or self.drift(threshold).needs_refresh):
            return False
        self.fit(basepool)
        return True

    # ------------------------------------------------------------------- stats
    def stats(self) -> CodebookStats:
        """Bytes per item, compression ratios, and the fit-time per-layer numbers."""
        self._require_fitted()
        cfg = self.config
        return CodebookStats(
            variant=cfg.variant,
            dim=self.dim,
            layers=cfg.layers,
            ks=cfg.ks,
            code_dtype=str(cfg.code_dtype),
            scale_dtype=cfg.scale_dtype if cfg.has_scales else None,
            bytes_per_item=cfg.bytes_per_item,
            compression_ratio=4 * self.dim / cfg.bytes_per_item,
            compression_ratio_2048=4 * REFERENCE_DIM / cfg.bytes_per_item,
            codebook_bytes=int(self._stacked.nbytes),
            basepool_size=self._fit.basepool_size,
            fit_seconds=self._fit.fit_seconds,
            layer_stats=self._fit.layer_stats,
            drift=self.drift(),
        )

    # --------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the codebook to one safetensors file; settings and fit summary go in its header."""
        self._require_fitted()
        tensors = {f"centroids.{i}": c for i, c in enumerate(self.centroids)}
        tensors["recent_cosines"] = np.roll(self._recent, -self._recent_pos)[
            len(self._recent) - self._n_recent :
        ]
        if self.config.has_scales and self._codecs[0].levels is not None:
            tensors["scale_levels"] = np.stack([c.levels for c in self._codecs])
        header = {
            "config": self.config.to_dict(),
            "dim": self.dim,
            "fit": {
                "basepool_size": self._fit.basepool_size,
                "fit_seconds": self._fit.fit_seconds,
                "layer_stats": [asdict(s) for s in self._fit.layer_stats],
            },
        }
        return write_codebook(path, header, tensors)

    @classmethod
    def load(cls, path: str | Path, expect: CodebookConfig | None = None) -> ResidualCodebook:
        """Read a codebook written by ``save``. With ``expect``, a file written with other
        settings is refused, naming each setting that differs."""
        header, tensors = read_codebook(path)
        try:
            config = CodebookConfig.from_dict(header["config"])
        except (KeyError, ValueError) as exc:
            raise CodebookError(f"{path}: invalid codebook settings in header: {exc}") from exc
        if expect is not None and expect != config:
            diff = {
                key: (value, getattr(expect, key))
                for key, value in config.to_dict().items()
                if getattr(expect, key) != value
            }
            described = ", ".join(f"{k}={a!r} (expected {b!r})" for k, (a, b) in diff.items())
            raise CodebookError(f"{path} was written with other settings: {described}")
        book = cls(config)
        book.dim = int(header["dim"])
        centroids = [tensors.get(f"centroids.{i}") for i in range(config.layers)]
        for i, (k, c) in enumerate(zip(config.ks, centroids)):
            if c is None or c.shape != (k, book.dim):
                raise CodebookError(
                    f"{path}: centroids.{i} has shape {None if c is None else c.shape}, "
                    f"the header says ({k}, {book.dim})"
                )
        book.centroids = [np.asarray(c, dtype=np.float32) for c in centroids]
        if config.has_scales:
            levels = tensors.get("scale_levels")
            book._codecs = [
                ScaleCodec(config.scale_dtype, None if levels is None else levels[i])
                for i in range(config.layers)
            ]
        fit = header["fit"]
        book._fit = _FitState(
            basepool_size=fit["basepool_size"],
            fit_seconds=fit["fit_seconds"],
            layer_stats=[LayerStats(**s) for s in fit["layer_stats"]],
        )
        book._build_tables()
        recent = tensors["recent_cosines"][-config.drift_window :]
        book._recent[: len(recent)] = recent
        book._n_recent = len(recent)
        book._recent_pos = len(recent) % config.drift_window
        return book


def fit(basepool: Any, config: CodebookConfig | None = None, *, progress: bool = False) -> ResidualCodebook:
    """Fit a ``ResidualCodebook`` with ``config`` (defaults: the paper's cosine, 3 x 256) on
    ``basepool``."""
    return ResidualCodebook(config).fit(basepool, progress=progress)


def load(path: str | Path, expect: CodebookConfig | None = None) -> ResidualCodebook:
    """Read a codebook file (see ``ResidualCodebook.load``)."""
    return ResidualCodebook.load(path, expect)

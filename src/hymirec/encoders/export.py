"""Item embeddings on disk: the export that the codebook compresses and later stages read.

An export is one safetensors file: ``embeddings`` ``[n_items, D]`` float32 (row ``i`` is canonical
item ``i + 1``), ``item_ids`` ``[n_items]`` (those canonical ids), and metadata holding the raw
item ids (the id map back to the source files, as JSON) and what produced the vectors. Exports
are cached under ``<data dir>/embeddings/`` by a hash of everything that determines them (the
backbone settings, the text template, pooling, the item texts themselves, and the weights of a
trained checkpoint when there is one), so asking twice for the same vectors encodes once.
Randomly initialised backbones are never cached: their weights are not determined by settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from hymirec.data.dataset import InteractionDataset
from hymirec.data.paths import data_dir
from hymirec.encoders.config import ItemTextConfig
from hymirec.encoders.errors import BackboneError
from hymirec.encoders.load import RANDOM_SOURCES, load_backbone
from hymirec.encoders.text import ItemTextEncoder, render_item_texts
from hymirec.io import atomic_write, read_safetensors

log = logging.getLogger(__name__)
FORMAT = "hymirec-item-embeddings-1"


def cache_key(parts: dict[str, Any]) -> str:
    """SHA-256 of ``parts`` as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a checkpoint's identity in a cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_path(key: str, root: str | Path | None = None) -> Path:
    """Where the export with cache key ``key`` lives in the data directory."""
    return data_dir(root) / "embeddings" / f"{key[:24]}.safetensors"


def write_embeddings(
    path: str | Path, vectors: torch.Tensor, dataset: InteractionDataset, source: dict[str, Any]
) -> Path:
    """Write ``vectors`` ``[n_items + 1, D]`` (row 0, padding, is dropped) as an export."""
    if vectors.shape[0] != dataset.n_items + 1:
        raise ValueError(f"{vectors.shape[0]} rows for {dataset.n_items} items (+ padding)")
    if not torch.isfinite(vectors).all():
        raise ValueError("item embeddings contain NaN or inf; nothing was written")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        "embeddings": vectors[1:].float().contiguous(),
        "item_ids": torch.arange(1, dataset.n_items + 1, dtype=torch.int64),
    }
    meta = {
        "format": FORMAT,
        "dataset": dataset.name,
        "raw_ids": json.dumps([str(r) for r in dataset.items["raw_id"]]),
        "source": json.dumps(source, sort_keys=True, default=str),
    }
    # atomic_write's temporary name is this process's own: two runs may fill one cache entry at once.
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_embeddings(path: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """An export as ``[n_items + 1, D]`` (row 0 zero, so canonical ids index it) and its metadata
    (``raw_ids`` and ``source`` decoded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"item embeddings not found: {path}")
    meta, tensors = read_safetensors(
        path, framework="pt", error=BackboneError, what="an item-embeddings export", keys=["embeddings"]
    )
    vectors = tensors["embeddings"]
    if meta.get("format") != FORMAT:
        raise BackboneError(f"{path}: not an item-embeddings export (format {meta.get('format')!r})")
    meta["raw_ids"] = json.loads(meta["raw_ids"])
    meta["source"] = json.loads(meta["source"])
    return torch.cat([vectors.new_zeros(1, vectors.shape[1]), vectors]), meta


def exported_vectors(path: str | Path, dataset: InteractionDataset) -> torch.Tensor:
    """``[n_items + 1, D]`` vectors of an export made for ``dataset``: an export of another
    dataset, or of another catalogue of the same name, is an error naming both."""
    vectors, meta = read_embeddings(Path(path).expanduser())
    raw_ids = [str(r) for r in dataset.items["raw_id"]]
    if meta["dataset"] != dataset.name or meta["raw_ids"] != raw_ids:
        raise BackboneError(
            f"{path}: exported for dataset {meta['dataset']!r} ({len(meta['raw_ids'])} items), "
            f"not for {dataset.name!r} ({len(raw_ids)} items)"
        )
    return vectors


def _encode(settings: ItemTextConfig, texts: list[str], progress: bool) -> torch.Tensor:
    model = ItemTextEncoder(load_backbone(settings.encoder, "encoder"), texts, settings.pooling, settings.max_tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.precision == "bf16"):
        return model.encode_all(settings.batch_size, progress).cpu()


def export_pretrained_embeddings(
    dataset: InteractionDataset, settings: ItemTextConfig, progress: bool = True
) -> tuple[Path, bool]:
    """Encode every item's text with a pretrained encoder into the cache; returns the file and
    whether it was already there."""
    texts = render_item_texts(dataset, settings.template)
    if settings.encoder.source in RANDOM_SOURCES:
        raise BackboneError(f"{settings.encoder.source} has random weights: there is nothing to export or cache")
    source = {
        "backbone": asdict(settings.encoder),
        "template": settings.template,
        "pooling": settings.pooling,
        "max_tokens": settings.max_tokens,
        "precision": settings.precision,
        "texts": cache_key({"texts": texts}),
    }
    path = cache_path(cache_key(source))
    if path.is_file():
        return path, True
    return write_embeddings(path, _encode(settings, texts, progress), dataset, source), False


def pretrained_item_vectors(dataset: InteractionDataset, settings: ItemTextConfig, progress: bool = True) -> torch.Tensor:
    """``[n_items + 1, D]`` item vectors from a (frozen) encoder, through the cache unless the
    encoder is random."""
    if settings.encoder.source in RANDOM_SOURCES:
        return _encode(settings, render_item_texts(dataset, settings.template), progress)
    path, cached = export_pretrained_embeddings(dataset, settings, progress)
    log.info("item embeddings %s: %s", "from the cache" if cached else "cached", path)
    return read_embeddings(path)[0]

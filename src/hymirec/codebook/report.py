"""The report of a fitted codebook folder: per-layer quality and balance, bytes, a plot.

A folder written by ``hymirec codebook fit`` holds ``codebook.safetensors``, ``codes.safetensors``
(the encoded items) and ``fit_summary.json`` (the per-layer reconstruction cosine of every
encoded item, measured while encoding). The report reads them, or re-measures quality on
embeddings the user passes, and writes ``report.json``, ``report.md`` and
``error_per_layer.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hymirec.codebook.codebook import ResidualCodebook
from hymirec.codebook.io import load_codes
from hymirec.codebook.quality import LayerQuality, balance, summarise
from hymirec.io import write_text_atomic

CODEBOOK_FILE = "codebook.safetensors"
CODES_FILE = "codes.safetensors"
SUMMARY_FILE = "fit_summary.json"


def build_report(directory: str | Path, embeddings: np.ndarray | None = None) -> dict[str, Any]:
    """Gather the report of the codebook folder ``directory``.

    Per layer: reconstruction cosine on the basepool (fit time) and on the items (``embeddings``
    if given, else the encoded items of the folder), cluster-size balance of the balanced fit and
    of the items' codes. Overall: bytes per item and compression ratios."""
    directory = Path(directory)
    book = ResidualCodebook.load(directory / CODEBOOK_FILE)
    stats = book.stats()
    items: LayerQuality | None = None
    source = None
    if embeddings is not None:
        items = summarise(book.encode_with_quality(embeddings), book.config.ks)
        source = "embeddings given to report"
    elif (directory / SUMMARY_FILE).is_file():
        summary = json.loads((directory / SUMMARY_FILE).read_text())
        items = LayerQuality(**summary["items"])
        source = summary["embeddings"]
    elif (directory / CODES_FILE).is_file():
        # Without the original vectors only the balance of the stored codes can be reported.
        codes, _ = load_codes(directory / CODES_FILE)
        items = LayerQuality(
            n_items=len(codes),
            reconstruction_cosine=None,
            code_sizes=[
                np.bincount(codes[:, i], minlength=k).tolist() for i, k in enumerate(book.config.ks)
            ],
        )
        source = CODES_FILE
    layers = []
    for i, layer in enumerate(stats.layer_stats):
        row: dict[str, Any] = {
            "layer": i + 1,
            "k": layer.k,
            "basepool_cosine": layer.reconstruction_cosine,
            "basepool_relative_error": layer.relative_error,
            "fit_balance": balance(layer.fit_sizes),
            "fit_capacity": layer.capacity,
            "fit_max_size": int(max(layer.fit_sizes)),
            "items_cosine": None,
            "items_balance": None,
        }
        if items is not None:
            if items.reconstruction_cosine is not None:
                row["items_cosine"] = items.reconstruction_cosine[i]
            row["items_balance"] = balance(items.code_sizes[i])
        layers.append(row)
    return {
        "directory": str(directory),
        "variant": stats.variant,
        "dim": stats.dim,
        "layers": stats.layers,
        "ks": stats.ks,
        "code_dtype": stats.code_dtype,
        "scale_dtype": stats.scale_dtype,
        "bytes_per_item": stats.bytes_per_item,
        "compression_ratio": stats.compression_ratio,
        "compression_ratio_2048": stats.compression_ratio_2048,
        "basepool_size": stats.basepool_size,
        "fit_seconds": stats.fit_seconds,
        "n_items": None if items is None else items.n_items,
        "items_source": source,
        "per_layer": layers,
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown section (headline numbers, then one table row per layer)."""
    scales = report["scale_dtype"] or "none"
    lines = [
        f"## Codebook report: {report['directory']}",
        "",
        f"- variant **{report['variant']}**, {report['layers']} layers, k = {report['ks']}, "
        f"dim {report['dim']}",
        f"- **{report['bytes_per_item']} bytes/item** (codes {report['code_dtype']}, scales "
        f"{scales}); compression vs fp32: {report['compression_ratio']:.1f}x at this dim, "
        f"{report['compression_ratio_2048']:.1f}x for a 2048-d embedding",
        f"- fitted on {report['basepool_size']:,} basepool vectors in {report['fit_seconds']:.1f} s"
        + (f"; items: {report['n_items']:,} ({report['items_source']})" if report["n_items"] else ""),
        "",
        "| layer | k | recon. cos (basepool) | recon. cos (items) | fit max size / cap "
        "| items max/mean size | items empty | items entropy ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["per_layer"]:
        items = row["items_balance"]
        cap = row["fit_capacity"]
        lines.append(
            f"| {row['layer']} | {row['k']} | {row['basepool_cosine']:.4f} | "
            f"{_num(row['items_cosine'])} | {row['fit_max_size']} / {cap if cap else 'none'} | "
            f"{_num(items and items['max_over_mean'], 2)} | {items['empty'] if items else '-'} | "
            f"{_num(items and items['entropy_ratio'], 3)} |"
        )
    return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plot_error_per_layer(report: dict[str, Any], path: str | Path) -> Path:
    """PNG of reconstruction error (1 - cosine) after each layer, basepool and items."""
    # A Figure of its own rather than pyplot: no global backend or figure state is touched, so
    # this works beside any other matplotlib user (and importing this module has no side effect).
    from matplotlib.figure import Figure

    rows = report["per_layer"]
    x = [row["layer"] for row in rows]
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.plot(x, [1 - row["basepool_cosine"] for row in rows], "o-", label="basepool (fit)")
    item_cos = [row["items_cosine"] for row in rows]
    if None not in item_cos:
        ax.plot(x, [1 - c for c in item_cos], "s--", label="items")
    ax.set_xlabel("layers used")
    ax.set_ylabel("1 - reconstruction cosine")
    ax.set_xticks(x)
    ax.set_title(f"{report['variant']} codebook, {report['bytes_per_item']} B/item")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``error_per_layer.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "plot": out_dir / "error_per_layer.png",
    }
    write_text_atomic(paths["json"], json.dumps(report, indent=2) + "\n")
    write_text_atomic(paths["markdown"], render_markdown(report))
    plot_error_per_layer(report, paths["plot"])
    return paths

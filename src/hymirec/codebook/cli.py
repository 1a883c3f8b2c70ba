"""``hymirec codebook fit`` and ``hymirec codebook report``."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from hymirec.codebook.codebook import ResidualCodebook
from hymirec.codebook.config import CodebookConfig
from hymirec.codebook.errors import CodebookError
from hymirec.codebook.io import load_embeddings, save_codes
from hymirec.codebook.quality import summarise
from hymirec.codebook.report import (
    CODEBOOK_FILE,
    CODES_FILE,
    SUMMARY_FILE,
    build_report,
    render_markdown,
    write_report,
)
from hymirec.config import load_yaml
from hymirec.distributed import join_world
from hymirec.io import write_text_atomic


def _k_list(text: str) -> int | list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--k must be an integer or a comma list, got {text!r}") from exc
    return values[0] if len(values) == 1 else values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``codebook fit`` and ``codebook report`` to the ``hymirec`` command."""
    parser = subparsers.add_parser(
        "codebook",
        help="compress item embeddings with a residual codebook",
        description="Fit a cosine (or Euclidean) residual codebook and report on it.",
    )
    sub = parser.add_subparsers(dest="codebook_command", required=True, metavar="ACTION")

    fit = sub.add_parser(
        "fit",
        help="fit a codebook on item embeddings and encode them",
        description="Fit on a basepool sample of --embeddings, encode every row, and write "
        f"{CODEBOOK_FILE}, {CODES_FILE} and {SUMMARY_FILE} into --out.",
    )
    fit.add_argument("--embeddings", required=True, type=Path, help=".npy or .safetensors [items, dim]")
    fit.add_argument("--key", help="tensor name in a .safetensors file with several tensors")
    fit.add_argument("--config", type=Path, help="YAML/JSON file of CodebookConfig settings")
    fit.add_argument("--variant", choices=["cosine", "euclidean"])
    fit.add_argument("--layers", type=int)
    fit.add_argument("--k", type=_k_list, help="centroids per layer: 256, or 256,256,1024")
    fit.add_argument("--scale-dtype", choices=["float16", "float32", "uint8", "uint4"])
    fit.add_argument("--basepool-size", type=int)
    fit.add_argument("--balance-slack", type=float)
    fit.add_argument("--no-balance", action="store_true", help="plain (unbalanced) k-means")
    fit.add_argument("--seed", type=int)
    fit.add_argument("--out", required=True, type=Path, help="output folder")
    fit.set_defaults(func=run_fit)

    report = sub.add_parser(
        "report",
        help="per-layer quality, balance, bytes/item and a plot of a fitted codebook",
        description="Write report.json, report.md and error_per_layer.png for a folder made by "
        "`hymirec codebook fit`.",
    )
    report.add_argument("directory", type=Path, help="folder written by `codebook fit`")
    report.add_argument("--embeddings", type=Path, help="re-measure quality on these embeddings")
    report.add_argument("--key", help="tensor name in a .safetensors file with several tensors")
    report.add_argument("--out", type=Path, help="where to write the report (default: the folder)")
    report.set_defaults(func=run_report)


def config_from_args(args: argparse.Namespace) -> CodebookConfig:
    """Settings from ``--config`` (if any), overridden by the flags given on the command line."""
    data = load_yaml(args.config) if args.config else {}
    flags = {
        "variant": args.variant,
        "layers": args.layers,
        "k": args.k,
        "scale_dtype": args.scale_dtype,
        "basepool_size": args.basepool_size,
        "balance_slack": args.balance_slack,
        "seed": args.seed,
    }
    data.update({key: value for key, value in flags.items() if value is not None})
    if args.no_balance:
        data["balanced"] = False
    return CodebookConfig.from_dict(data)


def run_fit(args: argparse.Namespace) -> int:
    """Fit, save the codebook, encode every item, save codes and a summary; print the stats."""
    config = config_from_args(args)
    embeddings = load_embeddings(args.embeddings, args.key)
    if args.out.exists() and not args.out.is_dir():
        raise CodebookError(f"--out {args.out} exists and is not a folder")
    # Under torchrun every rank fits the same codebook (seeded), encodes its share of the items
    # and gets all codes; rank 0 writes.
    world = join_world("gloo", torch.device("cpu"))
    book = ResidualCodebook(config).fit(embeddings, progress=world.main)
    start = time.perf_counter()
    encoded = book.encode_with_quality(embeddings, progress=True, world=world)
    encode_seconds = time.perf_counter() - start
    if not world.main:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    book.save(args.out / CODEBOOK_FILE)
    save_codes(args.out / CODES_FILE, encoded.codes, encoded.scales)
    stats = book.stats()
    summary = {
        "embeddings": str(args.embeddings),
        "fit_seconds": stats.fit_seconds,
        "encode_seconds": encode_seconds,
        "items": asdict(summarise(encoded, config.ks)),
    }
    write_text_atomic(args.out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    cosines = ", ".join(f"{c:.4f}" for c in summary["items"]["reconstruction_cosine"])
    print(
        f"fitted {config.variant} codebook ({config.layers} layers, k={config.ks}) on "
        f"{stats.basepool_size:,} vectors in {stats.fit_seconds:.1f} s; encoded "
        f"{len(encoded.codes):,} items in {encode_seconds:.1f} s\n"
        f"{stats.bytes_per_item} bytes/item, {stats.compression_ratio:.1f}x vs fp32 "
        f"({stats.compression_ratio_2048:.1f}x for 2048-d); reconstruction cosine per layer: "
        f"{cosines}\nwrote {args.out}"
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Build the report of a fitted folder, write it, and print its Markdown."""
    embeddings = load_embeddings(args.embeddings, args.key) if args.embeddings else None
    report = build_report(args.directory, embeddings)
    paths = write_report(report, args.out or args.directory)
    print(render_markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0

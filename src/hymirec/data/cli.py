"""``hymirec data``: fetch, load, generate and inspect datasets.

    hymirec data fetch movielens-100k
    hymirec data fetch movielens-small
    hymirec data load movielens-1m --path ~/ml-1m --name ml1m
    hymirec data load movielens-small --path ~/ml-latest-small
    hymirec data load hllm-csv --interactions Pixel200K.csv --items items.csv --name pixel200k
    hymirec data load recbole --path dataset/ml-100k/ml-100k --name ml100k-recbole
    hymirec data synthetic --name syn --users 10000 --items 100000 --clusters 50 --seed 0
    hymirec data stats movielens-100k ml1m [--json]

Every sub-command accepts ``--data-dir`` (default ``$HYMIREC_DATA_DIR`` or ``~/.cache/hymirec``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hymirec.data import paths
from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.fetch import FETCHERS, fetch, load_dataset, save_dataset
from hymirec.data.loaders import (
    LoadOptions,
    load_hllm_csv,
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
    load_recbole,
)
from hymirec.data.stats import dataset_stats, format_stats
from hymirec.data.synthetic import generate_synthetic

# FORMAT: its loader, called as loader(path, name=..., options=...) (hllm-csv takes two files).
PATH_LOADERS = {
    "movielens-100k": load_movielens_100k,
    "movielens-1m": load_movielens_1m,
    "movielens-small": load_movielens_latest,  # any ml-latest(-small) release
    "recbole": load_recbole,
}
FORMATS = (*PATH_LOADERS, "hllm-csv")
# Formats whose dataset name defaults to the format's (one MovieLens release is one dataset).
NAMED_LIKE_FORMAT = ("movielens-100k", "movielens-1m", "movielens-small")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its sub-commands to the root CLI's ``subparsers``."""
    data = subparsers.add_parser(
        "data",
        help="fetch, load, generate and inspect datasets",
        description="Datasets in the canonical form (parquet under the data directory).",
    )
    sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"data directory (default: ${paths.DATA_DIR_ENV} or {paths.DEFAULT_DATA_DIR})",
    )

    p = sub.add_parser("fetch", parents=[common], help="download a known dataset and convert it")
    p.add_argument("name", choices=sorted(FETCHERS), metavar="NAME", help=f"one of {sorted(FETCHERS)}")
    p.add_argument("--force", action="store_true", help="download again even if the cache verifies")
    p.add_argument("--url", default=None,
                   help="primary download URL (also file://; default: the dataset's GroupLens archive)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds before the primary source counts as unreachable")
    p.set_defaults(func=_fetch)

    p = sub.add_parser("load", parents=[common], help="convert files in a supported format")
    p.add_argument("format", choices=FORMATS, metavar="FORMAT", help=f"one of {list(FORMATS)}")
    p.add_argument("--name", help="dataset name in the data directory (default for the MovieLens "
                   "formats: the FORMAT; required for the others)")
    p.add_argument("--path", type=Path, help="folder (MovieLens; movielens-small: ratings.csv + "
                   "movies.csv of any ml-latest release, plain or .gz) or DIR/prefix (RecBole)")
    p.add_argument("--interactions", type=Path,
                   help="hllm-csv: interactions CSV (item_id,user_id,timestamp)")
    p.add_argument("--items", type=Path, help="hllm-csv: items CSV (item_id + text columns)")
    p.add_argument("--text-fields", type=lambda v: [f.strip() for f in v.split(",") if f.strip()],
                   metavar="A,B", help="hllm-csv: item columns used as text (default: whichever of "
                   "title,tag,description the items file has)")
    p.add_argument("--on-unknown-item", choices=("error", "drop"), default="error",
                   help="interactions whose item is not in the item file (default: error)")
    p.add_argument("--on-duplicate", choices=("drop", "error"), default="drop",
                   help="rows repeating user, item and timestamp (default: drop, counted)")
    p.add_argument("--on-missing-text", choices=("keep", "error"), default="keep",
                   help="items with all text fields empty (default: keep, counted)")
    p.set_defaults(func=_load)

    p = sub.add_parser("synthetic", parents=[common], help="generate users with known latent interests")
    p.add_argument("--name", default="synthetic", help="dataset name (default: synthetic)")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--items", type=int, default=5000)
    p.add_argument("--clusters", type=int, default=20, help="latent interest clusters")
    p.add_argument("--interests", type=int, nargs=2, default=(2, 4), metavar=("MIN", "MAX"),
                   help="interests per user, inclusive range (default: 2 4)")
    p.add_argument("--mean-seq-len", type=float, default=50.0)
    p.add_argument("--min-seq-len", type=int, default=5)
    p.add_argument("--max-seq-len", type=int, default=1000)
    p.add_argument("--switch-prob", type=float, default=0.2,
                   help="chance per step to re-draw the active interest")
    p.add_argument("--noise", type=float, default=0.05, help="share of interactions with a random item")
    p.add_argument("--popularity-skew", type=float, default=2.0, help=">= 1; 1 is uniform within a cluster")
    p.add_argument("--repeats", action="store_true", help="allow a user to interact with an item twice")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_synthetic)

    p = sub.add_parser("stats", parents=[common], help="print dataset statistics")
    p.add_argument("datasets", nargs="+", metavar="NAME_OR_PATH", help="dataset names or folders")
    p.add_argument("--json", action="store_true",
                   help="JSON instead of a table (a list for several datasets)")
    p.set_defaults(func=_stats)


def _fetch(args: argparse.Namespace) -> int:
    dataset = fetch(args.name, args.data_dir, url=args.url, timeout=args.timeout, force=args.force)
    return _report(dataset, paths.dataset_path(args.name, args.data_dir))


def _load(args: argparse.Namespace) -> int:
    options = LoadOptions(args.on_unknown_item, args.on_duplicate, args.on_missing_text)
    name = args.name or (args.format if args.format in NAMED_LIKE_FORMAT else None)
    if name is None:
        raise DataError(f"load {args.format} needs --name")
    if args.format == "hllm-csv":
        if args.interactions is None or args.items is None:
            raise DataError("load hllm-csv needs --interactions FILE and --items FILE")
        dataset = load_hllm_csv(
            args.interactions, args.items, name=name, text_fields=args.text_fields, options=options
        )
    else:
        if args.path is None:
            raise DataError(f"load {args.format} needs --path")
        dataset = PATH_LOADERS[args.format](args.path, name=name, options=options)
    return _report(dataset, save_dataset(dataset, paths.dataset_path(name, args.data_dir)))


def _synthetic(args: argparse.Namespace) -> int:
    dataset = generate_synthetic(
        args.users,
        args.items,
        args.clusters,
        interests=tuple(args.interests),
        mean_seq_len=args.mean_seq_len,
        min_seq_len=args.min_seq_len,
        max_seq_len=args.max_seq_len,
        switch_prob=args.switch_prob,
        noise=args.noise,
        popularity_skew=args.popularity_skew,
        repeats=args.repeats,
        seed=args.seed,
        name=args.name,
    )
    return _report(dataset, save_dataset(dataset, paths.dataset_path(args.name, args.data_dir)))


def _stats(args: argparse.Namespace) -> int:
    stats = [dataset_stats(load_dataset(d, args.data_dir)) for d in args.datasets]
    if args.json:
        print(json.dumps(stats[0] if len(stats) == 1 else stats, indent=2))
    else:
        print(format_stats(stats))
    return 0


def _report(dataset: InteractionDataset, folder: Path) -> int:
    print(f"saved {dataset.name} to {folder}")
    print(format_stats([dataset_stats(dataset)]))
    return 0

"""The ``hymirec`` command: one sub-command per part of the system."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hymirec import __version__


def build_parser() -> argparse.ArgumentParser:
    from hymirec.codebook.cli import register as register_codebook
    from hymirec.data.cli import register as register_data
    from hymirec.encoders.cli import register as register_embed
    from hymirec.pipeline.cli import register as register_pipeline
    from hymirec.serving.cli import register as register_serve
    from hymirec.training.cli import register as register_training

    parser = argparse.ArgumentParser(
        prog="hymirec",
        description="Hybrid multi-interest sequential recommendation: data, training, "
        "evaluation, item embeddings, the residual codebook, the whole pipeline and serving.",
    )
    parser.add_argument("--version", action="version", version=f"hymirec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_data(sub)
    register_training(sub)
    register_embed(sub)
    register_codebook(sub)
    register_pipeline(sub)
    register_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; each sub-command stores its handler as ``args.func`` and returns an exit code."""
    # Idle OpenMP threads spin-wait by default; with two jobs on few cores the spinning threads
    # take the cores the other job's threads are waiting for (measured on 2 cores: two trainings
    # took 4.4x their solo time, 1.4x with passive waiting; benchmarks/contention.py). OpenMP
    # reads this once, when torch loads it, so it is set here, before any sub-command imports
    # torch; a value the user exported wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Weights come from local folders, GGUF files and packages only: never ask a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        # Library errors (DataError, ConfigError, CodebookError, ...) are ValueErrors whose
        # message is written for the user: print it instead of a traceback.
        print(f"hymirec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

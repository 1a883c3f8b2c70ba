"""``hymirec serve``: the HTTP recommender over a finished run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hymirec.serving.config import INDEXES, LOOPBACK, ServeConfig

# The API key comes from the environment: a command-line argument is visible to every local user.
API_KEY_ENV = "HYMIREC_API_KEY"


def _serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from hymirec.runs.restored import RestoredRun, run_folder
    from hymirec.serving.app import create_app

    # Refused before the server starts, naming the folder (not a run, or of another version) or
    # the setting.
    run_dir = run_folder(args.run)
    config = ServeConfig(store=args.store or f"sqlite:{run_dir / 'serve.sqlite'}", host=args.host, port=args.port,
                         api_key=os.environ.get(API_KEY_ENV) or None, max_k=args.max_k,
                         refresh_events=args.refresh_events, refresh_seconds=args.refresh_seconds,
                         import_history=not args.no_import, index=args.index, threads=args.threads)
    if config.threads:
        torch.set_num_threads(config.threads)
    run = RestoredRun.load(run_dir, device=args.device)
    uvicorn.run(create_app(run, config), host=config.host, port=config.port, log_level="info")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    serve = subparsers.add_parser(
        "serve", help="serve a finished run over HTTP (events in, recommendations out)",
        description=f"Serve a run folder of 'hymirec run' or 'hymirec train' (FastAPI + uvicorn; OpenAPI at "
        f"/docs). Set {API_KEY_ENV} to require that key in an X-API-Key header.",
    )
    serve.add_argument("--run", required=True, type=Path, help="folder of 'hymirec run' or 'hymirec train'")
    serve.add_argument("--host", default=LOOPBACK, help=f"address to listen on (default {LOOPBACK}: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--store", help="sqlite:PATH or redis://HOST:PORT/DB (default: sqlite:<run folder>/serve.sqlite)")
    serve.add_argument("--device", help="cpu, cuda, cuda:N (default: the run's train.device)")
    serve.add_argument("--max-k", type=int, default=ServeConfig.max_k, help="the longest list a request may ask for")
    serve.add_argument("--refresh-events", type=int, default=ServeConfig.refresh_events,
                       help="recompute a user's coarse interests once they are this many events behind")
    serve.add_argument("--refresh-seconds", type=float, default=ServeConfig.refresh_seconds,
                       help="... or once they are this old with any new event")
    serve.add_argument("--index", choices=INDEXES, default="exact",
                       help="candidate retrieval: exact inner product (default) or a faiss HNSW graph")
    serve.add_argument("--threads", type=int, default=ServeConfig.threads,
                       help="PyTorch intra-op threads (default 1; 0: one per core)")
    serve.add_argument("--no-import", action="store_true",
                       help="do not load the run's dataset histories into the store at start")
    serve.set_defaults(func=_serve)

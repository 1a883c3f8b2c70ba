"""``hymirec run`` (the whole job, resumable) and ``hymirec recommend`` (one user's top-k)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hymirec.config import ConfigError
from hymirec.distributed import launched_rank


def _run(args: argparse.Namespace) -> int:
    from hymirec.evaluation.report import metrics_table
    from hymirec.pipeline.config import load_pipeline
    from hymirec.pipeline.report import REPORT, load_baselines, result_ks
    from hymirec.pipeline.stages import RESULTS, run_pipeline
    from hymirec.training.cli import RESULT_ROWS

    config = load_pipeline(args.preset, args.config, args.set, args.dataset)
    # Read before any work: a malformed baselines file should not wait for the report stage.
    baselines = load_baselines(args.baselines, config.dataset)
    out = Path(args.out or Path("runs") / config.name)
    try:
        run_pipeline(config, out, fresh=args.fresh, baselines=baselines)
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command (without --fresh) to continue {out} "
              "from its last finished stage and checkpoint", file=sys.stderr)
        return 130
    if launched_rank() != 0:  # under torchrun one rank prints
        return 0
    results = json.loads((out / RESULTS).read_text())
    rows = {label: results[key] for key, label in RESULT_ROWS.items()}
    print(f"\n{config.name}: {results['model']}\n{metrics_table(rows, result_ks(results))}\n\nreport: {out / REPORT}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from hymirec.data.fetch import load_dataset
    from hymirec.runs.recommend import find_user, recommend_for_user, recommendations_table
    from hymirec.runs.restored import RestoredRun, run_folder
    from hymirec.training.config import load_experiment

    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    if args.all != bool(args.out):
        raise ConfigError("--all writes every user's list to --out FILE.parquet: give both, or --user alone")
    if args.all == bool(args.user):
        raise ConfigError("give --user RAW_ID for one user or --all --out FILE.parquet for every user")
    run_dir = run_folder(args.run)
    if args.all:
        from hymirec.runs.batch import recommend_all

        run = RestoredRun.load(run_dir)
        rows = recommend_all(run, args.k, args.out, args.keep_history, args.merge)
        print(f"{rows} recommendations for {run.split.dataset.n_users} users written to {args.out}")
        return 0
    config = load_experiment(run_dir / "config.yaml")
    # The user is checked before the model is built: a typo should not cost a model load.
    user = find_user(load_dataset(config.data.dataset, config.data.data_dir), args.user)
    run = RestoredRun.load(run_dir)
    recommendations = recommend_for_user(run, user, args.k, args.keep_history, args.merge)
    seen = len(run.split.sequences.user(user)[0])
    print(f"user {args.user}: {seen} items seen ({'kept' if args.keep_history else 'masked'}); "
          f"{config.model_name} from {run_dir}\n")
    print(recommendations_table(run.split.dataset, recommendations))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``recommend`` commands."""
    run = subparsers.add_parser(
        "run", help="the whole job: data, stage 1, codebook, stage 2, evaluation, report (resumable)",
        description="Run the pipeline's six stages into --out; a finished stage is reused, an "
        "interrupted one continues from its last checkpoint.",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a preset shipped with hymirec (default: 'default')")
    source.add_argument("--config", type=Path, help="a pipeline YAML file")
    run.add_argument("--dataset", help="dataset name or folder, for the pipeline and both stages")
    run.add_argument("--out", type=Path, help="run folder (default: runs/<preset name>)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting, e.g. --set stage2.train.lr=1e-4 (repeatable)")
    run.add_argument("--fresh", action="store_true", help="delete the run folder first")
    run.add_argument("--baselines", type=Path,
                     help="table-2 JSON shown beside the run in the report "
                     "(default: benchmarks/results/table2_<dataset>.json when it exists)")
    run.set_defaults(func=_run)

    rec = subparsers.add_parser("recommend", help="a user's top-k from a finished run, with their interests "
                                "(or every user's, into a parquet file)")
    rec.add_argument("--run", required=True, type=Path, help="folder of 'hymirec run' or 'hymirec train'")
    rec.add_argument("--user", help="the user's raw id (as in the source data)")
    rec.add_argument("--all", action="store_true", help="every user of the run's dataset, in chunks, to --out")
    rec.add_argument("--out", type=Path, help="with --all: the parquet file (user, rank, item, score, interest)")
    rec.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    rec.add_argument("--keep-history", action="store_true", help="do not mask the items the user has seen")
    rec.add_argument("--merge", choices=["max", "round_robin"],
                     help="how several interests make one list (default: the run's eval.merge, max)")
    rec.set_defaults(func=_recommend)

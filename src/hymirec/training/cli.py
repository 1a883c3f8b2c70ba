"""``hymirec train`` and ``hymirec evaluate``."""

from __future__ import annotations

import argparse

from hymirec.distributed import launched_rank
from hymirec.evaluation.report import metrics_table

RESULT_ROWS = {"valid": "valid", "test_masked": "test (history masked)", "test_unmasked": "test (unmasked)"}


def _print_results(name: str, results: dict, ks: list[int]) -> None:
    rows = {label: results[key] for key, label in RESULT_ROWS.items()}
    print(f"\n{name}: {results.get('model', '')}")
    print(metrics_table(rows, ks))
    if results.get("test_by_history_length"):
        print("\ntest (history masked) by history length")
        print(metrics_table({f"{g['history']} items ({g['users']} users)": g
                             for g in results["test_by_history_length"]}, ks))
    if "epochs" in results and results.get("best_epoch"):
        print(
            f"\nepochs {results['epochs']} (best {results['best_epoch']}), "
            f"training {results['train_seconds']:.1f} s, {results['positions_per_s']:.0f} positions/s, "
            f"peak RSS {results['peak_rss_mb']:.0f} MiB"
        )


def _train(args: argparse.Namespace) -> int:
    from hymirec.training.config import load_experiment
    from hymirec.training.run import run_experiment

    overrides = list(args.set)
    if args.out:
        overrides.append(f"out_dir={args.out}")
    config = load_experiment(args.config, overrides)
    results = run_experiment(config, resume=args.resume, overwrite=args.overwrite)
    if launched_rank() == 0:  # under torchrun every rank holds the results; one prints them
        _print_results(config.name, results, config.eval.ks)
        print(f"\nrun folder: {config.run_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hymirec.config import ConfigError
    from hymirec.runs.restored import evaluate_run, update_results

    if args.update and args.set:
        raise ConfigError("evaluate --update writes the run's own evaluation into its results.json; "
                          "drop --set (the file would no longer match the run's settings)")
    config, results = evaluate_run(args.run, args.set)
    if launched_rank() == 0:
        _print_results(config.name, results, config.eval.ks)
        if args.update:
            print(f"\nupdated {update_results(args.run, results)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``evaluate`` commands."""
    train = subparsers.add_parser("train", help="train and evaluate a model from a YAML experiment file")
    train.add_argument("--config", help="experiment YAML (see configs/); defaults apply without one")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. --set train.lr=1e-3 (repeatable)")
    train.add_argument("--out", help="parent folder of the run folder (overrides out_dir)")
    group = train.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    group.add_argument("--overwrite", action="store_true", help="delete an existing run folder first")
    train.set_defaults(func=_train)

    evaluate = subparsers.add_parser("evaluate", help="re-evaluate the best checkpoint of a run folder")
    evaluate.add_argument("--run", required=True, help="run folder written by 'hymirec train'")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override an eval setting, e.g. --set eval.mask_history=false")
    evaluate.add_argument("--update", action="store_true",
                          help="write the metrics into the run's results.json, its training records kept "
                               "(for a run evaluated before the evaluator reported what it reports now)")
    evaluate.set_defaults(func=_evaluate)

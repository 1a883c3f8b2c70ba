"""Train and evaluate one RecBole 1.2.1 sequential model on MovieLens-100K, then rank every test
target ourselves. Runs with the peer virtual environment's Python (RecBole + its pinned
dependencies), never with hymirec's: it does not import hymirec, so the two stacks cannot leak
into each other. ``benchmarks/peer_recbole.py`` creates that environment and calls this script:

    ~/.cache/hymirec/peer/recbole-venv/bin/python benchmarks/peer/recbole_runner.py \
        --model sasrec --seed 2020 --threads 1 --data-path ~/.cache/hymirec/peer/recbole-data \
        --work-dir /tmp/recbole-work --out result.json [--epochs 2] [--train-batch-size 256]

RecBole's ``quick_start`` is not used because it imports ``ray`` (not installed); the same steps
(Config, create_dataset, data_preparation, get_model, Trainer.fit, Trainer.evaluate) are driven
directly. ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` must be set because RecBole pickles its whole
config into its checkpoints and PyTorch >= 2.6 refuses to unpickle that by default.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

# Set before torch is imported, so that Trainer.evaluate(load_best_model=True) can read RecBole's
# pickled checkpoint even when this script is started by hand.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

MODELS = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}
# The training and evaluation settings RecBole uses besides the model's own yaml (reported in the
# results so that the table states every setting of this side).
TRAIN_KEYS = [
    "epochs", "stopping_step", "train_batch_size", "learner", "learning_rate", "weight_decay",
    "clip_grad_norm", "loss_type", "train_neg_sample_args", "MAX_ITEM_LIST_LENGTH", "eval_args",
    "metrics", "topk", "valid_metric", "eval_step", "eval_batch_size", "metric_decimal_place",
    "seed", "reproducibility", "worker", "device", "load_col", "user_inter_num_interval",
    "item_inter_num_interval", "rm_dup_inter", "normalize_all",
]


def plain(value):
    """Make a RecBole config value JSON-serialisable (devices, enums, numpy scalars)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def sequence_digest(tokens: list[str]) -> str:
    """A short fingerprint of a sequence of raw item ids, so that the main script can check that
    RecBole's test history equals ours without shipping whole sequences around."""
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--seed", type=int, default=2020, help="RecBole's default seed is 2020")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--epochs", type=int, default=None, help="override RecBole's 300 (development only)")
    parser.add_argument("--train-batch-size", type=int, default=None,
                        help="override RecBole's train_batch_size (its default: 2048)")
    parser.add_argument("--data-path", required=True, help="folder holding ml-100k/ml-100k.inter")
    parser.add_argument("--work-dir", required=True, help="RecBole's checkpoints, ./log and ./log_tensorboard")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--progress-bars", action="store_true", help="RecBole's tqdm bars per epoch")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run whose checkpoints are in --work-dir (if any) instead of starting over")
    args = parser.parse_args()
    # RecBole's Config also parses sys.argv (as --key=value overrides); it must see none of ours.
    sys.argv = sys.argv[:1]

    start = time.perf_counter()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import get_model, init_logger, init_seed
    from logging import getLogger

    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # RecBole writes ./log/ and ./log_tensorboard/ relative to the working directory.
    os.chdir(work)
    config_dict = {
        "data_path": str(Path(args.data_path).resolve()),
        "checkpoint_dir": str(work / "saved"),
        "use_gpu": False,
        "seed": args.seed,
        "worker": 0,
        # Full-softmax cross-entropy over all items (no negative sampling).
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "MAX_ITEM_LIST_LENGTH": 50,
        # Leave-one-out per user in time order: the same split as hymirec's LeaveOneOutSplit.
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 50, 200],
        "valid_metric": "NDCG@10",
        "show_progress": args.progress_bars,
    }
    if args.epochs is not None:
        config_dict["epochs"] = args.epochs
    if args.train_batch_size is not None:
        config_dict["train_batch_size"] = args.train_batch_size
    config = Config(model=MODELS[args.model], dataset="ml-100k", config_dict=config_dict)
    # For the dataset name "ml-100k" RecBole ignores data_path and reads the copy bundled inside
    # its package; point it back at the file given (the dataset's own yaml settings still apply).
    data_file = Path(args.data_path).resolve() / "ml-100k" / "ml-100k.inter"
    config["data_path"] = str(data_file.parent)
    data_sha256 = hashlib.sha256(data_file.read_bytes()).hexdigest()
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    uid, iid = dataset.uid_field, dataset.iid_field
    sequences = recbole_sequences(train_data._dataset.inter_feat, uid, iid, dataset.item_id_list_field)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = Trainer(config, model)
    progress = fit_resumable(trainer, train_data, valid_data, work, args.resume, config, logger, start)
    best_valid_score, best_valid_result = progress["best_valid_score"], progress["best_valid_result"]
    # Loads the best checkpoint into `model` and reports RecBole's own (unmasked) test metrics.
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    logger.info(f"test result: {test_result}")
    best_epoch = int(torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)["epoch"])

    # Our own ranking of every test target with the best model: rank = 1 + the number of OTHER
    # items scoring at least as high (ties count against the model); padding item 0 never ranked.
    valid_inter = valid_data._dataset.inter_feat
    valid_by_user = dict(zip(valid_inter[uid].tolist(), valid_inter[iid].tolist()))
    model.eval()
    users, targets, rank_unmasked, rank_masked, ties, hist_len, hist_digest = [], [], [], [], [], [], []
    with torch.no_grad():
        for interaction, _history, _pos_u, pos_i in test_data:
            scores = model.full_sort_predict(interaction.to(config["device"])).view(len(pos_i), -1).float()
            if torch.isnan(scores).any():
                raise SystemExit("RecBole model produced NaN scores")
            scores[:, 0] = -torch.inf
            rows = torch.arange(len(pos_i))
            target_scores = scores[rows, pos_i]
            rank_unmasked += ((scores >= target_scores[:, None]).sum(1)).tolist()
            ties += ((scores == target_scores[:, None]).sum(1) - 1).tolist()
            batch_users = interaction[uid].tolist()
            item_lists = interaction[dataset.item_id_list_field]
            item_lens = interaction[dataset.item_list_length_field].tolist()
            for r, (u, t) in enumerate(zip(batch_users, pos_i.tolist())):
                # The user's whole history before the test target, in RecBole's order: the
                # training targets, then the validation target.
                history = torch.from_numpy(np.append(sequences[u], valid_by_user[u]))
                # Check the reconstruction against the (at most 50) items RecBole itself feeds
                # the model for this test target.
                fed = item_lists[r, : item_lens[r]]
                if not torch.equal(history[-len(fed):], fed):
                    raise SystemExit(f"user {u}: reconstructed history does not end with RecBole's test input")
                row = scores[r].clone()
                # Mask everything the user consumed before the test target, except the target
                # itself if it was consumed before (it must stay rankable).
                row[history] = -torch.inf
                row[t] = target_scores[r]
                rank_masked.append(int((row >= target_scores[r]).sum()))
                hist_len.append(len(history))
                hist_digest.append(sequence_digest(dataset.id2token(iid, history.numpy()).tolist()))
            users += batch_users
            targets += pos_i.tolist()

    model_keys = sorted(
        k for k in config.final_config_dict
        if k in _model_yaml_keys(MODELS[args.model])
    )
    out = {
        "model": MODELS[args.model],
        "seed": args.seed,
        "threads": args.threads,
        "recbole_model_defaults": {k: plain(config[k]) for k in model_keys},
        "recbole_settings": {k: plain(config[k]) for k in TRAIN_KEYS if k in config.final_config_dict},
        "best_valid_score": float(best_valid_score),
        "best_valid_result": plain(dict(best_valid_result or {})),
        "test_result": plain(dict(test_result)),
        "best_epoch": best_epoch + 1,  # 1-based, as hymirec counts epochs (RecBole logs 0-based)
        "epochs_run": progress["epochs_run"],
        "resumed_from_epoch": progress["resumed_from_epoch"],
        "train_seconds": progress["train_seconds"],
        # Replaced by benchmarks/peer_recbole.py with the whole subprocess' wall time (plus the
        # earlier processes' of a resumed run); this in-process figure stays when the runner is
        # used on its own.
        "wall_seconds": time.perf_counter() - start + progress["earlier_wall_seconds"],
        "earlier_wall_seconds": progress["earlier_wall_seconds"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_items_with_padding": int(dataset.item_num),
        "epochs_override": args.epochs,
        "train_batch_size": args.train_batch_size,
        "data_file": str(data_file.resolve()),
        "data_sha256": data_sha256,
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        # Per test user, column-wise to keep the file small; raw (file) ids.
        "users": dataset.id2token(uid, users).tolist(),
        "valid_targets": [str(dataset.id2token(iid, valid_by_user[u])) for u in users],
        "test_targets": dataset.id2token(iid, targets).tolist(),
        "rank_unmasked": rank_unmasked,
        "rank_masked": rank_masked,
        "ties_unmasked": ties,
        "test_history_len": hist_len,
        "test_history_sha1": hist_digest,
    }
    Path(args.out).write_text(json.dumps(out))
    logger.info(f"wrote {args.out}")
    return 0


# A run is continued only with the settings it was started with.
RESUME_KEYS = ["model", "seed", "train_batch_size", "learning_rate", "stopping_step", "MAX_ITEM_LIST_LENGTH"]


def fit_resumable(trainer, train_data, valid_data, work: Path, resume: bool, config, logger,
                  process_start: float) -> dict:
    """``Trainer.fit`` that leaves a checkpoint after every epoch and, with ``resume``, continues
    from it, so that a run killed midway (RecBole's SASRec takes hours on two CPU cores) loses at
    most one epoch.

    The best model goes to ``saved/best.pth`` (RecBole's own file, written when validation
    improves) and the last epoch to ``saved/last.pth`` (same format, plus ``progress.json`` with
    the training and wall seconds spent so far, wall from ``process_start``). A resumed run
    restores the model, the optimizer and the early-stopping state, not the random state: from
    the resumed epoch on it samples differently from an uninterrupted run with the same seed. A
    run killed before its first ``last.pth`` but after a best one (a runner without this
    function) resumes from the best epoch, training the epochs after it again.
    """
    import torch

    saved = work / "saved"
    best, last, progress_file = saved / "best.pth", saved / "last.pth", work / "progress.json"
    earlier = {"train_seconds": 0.0, "wall_seconds": 0.0}
    resumed_from = None
    older_best = sorted(p for p in saved.glob("*.pth") if p not in (best, last)) if resume else []
    if resume and (last.exists() or older_best):
        checkpoint = last if last.exists() else older_best[-1]
        made_with = torch.load(checkpoint, map_location="cpu", weights_only=False)["config"]
        changed = [k for k in RESUME_KEYS if made_with[k] != config[k]]
        if changed:
            raise SystemExit(f"{checkpoint} was made with other settings ({', '.join(changed)}); "
                             "run without --reuse to start over")
        trainer.resume_checkpoint(checkpoint)
        resumed_from = trainer.start_epoch
        if progress_file.exists() and last.exists():
            earlier = json.loads(progress_file.read_text())
        if older_best and not best.exists():
            older_best[-1].rename(best)
    trainer.saved_model_file = str(best)
    fit_start = time.perf_counter()

    def after_epoch(epoch_idx: int, _valid_score: float) -> None:
        # RecBole's own checkpoint writer, so that resume_checkpoint reads it back; written aside
        # and renamed, so that a kill while writing leaves the previous epoch's whole.
        trainer._save_checkpoint(epoch_idx, verbose=False, saved_model_file=str(last) + ".part")
        os.replace(str(last) + ".part", last)
        now = time.perf_counter()
        progress_file.write_text(json.dumps({
            "epoch": epoch_idx, "train_seconds": earlier["train_seconds"] + now - fit_start,
            "wall_seconds": earlier["wall_seconds"] + now - process_start}))

    # Killed after its last epoch was saved (fit would then overwrite best.pth with an "epoch -1").
    stopped = trainer.cur_step > config["stopping_step"] or trainer.start_epoch >= trainer.epochs
    if not stopped:
        trainer.fit(train_data, valid_data, saved=True, show_progress=config["show_progress"], callback_fn=after_epoch)
    train_seconds = earlier["train_seconds"] + time.perf_counter() - fit_start
    result = trainer.best_valid_result
    if result is None:  # no better epoch after the resume: read the best one's validation again
        result = trainer.evaluate(valid_data, load_best_model=True, show_progress=False)
        logger.info(f"validation of the best checkpoint (epoch before the resume): {result}")
    epochs = trainer.train_loss_dict
    return {
        "best_valid_score": float(trainer.best_valid_score),
        "best_valid_result": result,
        "epochs_run": max(epochs) + 1 if epochs else trainer.start_epoch,
        "resumed_from_epoch": None if resumed_from is None else resumed_from + 1,  # 1-based
        "train_seconds": train_seconds,
        "earlier_wall_seconds": earlier["wall_seconds"],
    }


def recbole_sequences(train_inter, uid: str, iid: str, item_list_field: str) -> dict:
    """Every user's training sequence (internal item ids) in RecBole's own order.

    RecBole orders a user's interactions by a float32 copy of the min-max normalised timestamp,
    so interactions about a second apart can tie and fall back to file order; rebuilding the
    sequence from RecBole's training samples (first sample's one-item input, then every sample's
    target, in the built dataset's order) reproduces exactly what RecBole trained and evaluated on.
    """
    import numpy as np

    users = train_inter[uid].numpy()
    targets = train_inter[iid].numpy()
    first_items = train_inter[item_list_field][:, 0].numpy()
    out: dict[int, list[int]] = {}
    for u, t, first in zip(users.tolist(), targets.tolist(), first_items.tolist()):
        if u not in out:
            out[u] = [first]
        out[u].append(t)
    return {u: np.asarray(seq, dtype=np.int64) for u, seq in out.items()}


def _model_yaml_keys(name: str) -> set[str]:
    """The keys of RecBole's own default yaml for the model (its 'model defaults')."""
    import recbole
    import yaml

    path = Path(recbole.__file__).parent / "properties" / "model" / f"{name}.yaml"
    return set(yaml.safe_load(path.read_text()) or {})


if __name__ == "__main__":
    raise SystemExit(main())

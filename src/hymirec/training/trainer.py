"""The one training loop every trainable model shares.

AdamW on the configured next-item loss (``train.loss``: full or sampled softmax) over every
next-item position of the training windows; after each epoch the model is evaluated on the
validation targets, the best model by the validation ``train.selection_metric`` (NDCG@10 by
default) is kept, and training stops after ``patience`` epochs without improvement. Each epoch ends with a
checkpoint (model, loss, optimizer, RNG, bookkeeping) from which ``resume=True`` continues a killed
run exactly: a run killed after epoch 1 and resumed ends with the same metrics as one that was not.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from hymirec.data.split import LeaveOneOutSplit, pad_right, training_windows
from hymirec.evaluation.evaluator import Evaluator
from hymirec.models.base import SequentialRecommender
from hymirec.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hymirec.training.config import ExperimentConfig, dump_experiment
from hymirec.training.inference import evaluate_model
from hymirec.training.losses import build_loss, loss_config, resolve_loss_name
from hymirec.training.plots import plot_training_curves

log = logging.getLogger(__name__)

LAST = "last.safetensors"
BEST = "best.safetensors"
# Settings that may differ between a killed run and its resumption.
RESUMABLE_CHANGES = {("train", "epochs"), ("train", "progress"), ("train", "patience")}

EpochCallback = Callable[[int, dict[str, Any]], None]


def write_run_config(run_dir: Path, config: ExperimentConfig) -> None:
    """The resolved settings of a run, which ``hymirec evaluate`` rebuilds the model from."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(dump_experiment(config), sort_keys=False))


def write_results(run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Add this process's peak memory to ``results`` and write them as ``results.json``."""
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _config_diff(a: dict, b: dict, prefix: tuple = ()) -> list[tuple]:
    keys = set(a) | set(b)
    diffs = []
    for k in sorted(keys):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += _config_diff(va, vb, prefix + (k,))
        elif va != vb:
            diffs.append(prefix + (k,))
    return diffs


class Trainer:
    """Trains ``model`` on ``split`` as ``config`` says, writing everything under ``run_dir``."""

    def __init__(
        self,
        config: ExperimentConfig,
        model: SequentialRecommender,
        split: LeaveOneOutSplit,
        run_dir: str | Path,
        callbacks: list[EpochCallback] | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.split = split
        self.run_dir = Path(run_dir)
        self.callbacks = callbacks or []
        tc = config.train
        self.loss = build_loss(tc.loss, split.n_items)
        self.parameters = list(model.parameters()) + list(self.loss.parameters())
        self.optimizer = torch.optim.AdamW(self.parameters, lr=tc.lr, weight_decay=tc.weight_decay)
        self.normalize = scores_are_cosine(config)
        self.generator = torch.Generator().manual_seed(tc.seed)
        self.windows = training_windows(split.train_sequences(), config.data.max_len)
        self.evaluator = Evaluator(config.eval.ks, config.eval.mask_history, config.eval.batch_size)
        self.valid = split.examples("valid")
        self.history: list[dict[str, Any]] = []
        self.state = {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "stopped": False}

    # -- checkpoints ---------------------------------------------------------------------------
    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model, "loss": self.loss}

    def _save(self) -> None:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        state = {**self.state, "history": self.history, "config": dump_experiment(self.config)}
        save_checkpoint(self.run_dir / LAST, self._modules(), self.optimizer, rng, state)

    def _restore(self) -> None:
        rng, state = load_checkpoint(self.run_dir / LAST, self._modules(), self.optimizer)
        diffs = [d for d in _config_diff(state["config"], dump_experiment(self.config)) if d not in RESUMABLE_CHANGES]
        if diffs:
            names = ", ".join(".".join(d) for d in diffs)
            raise CheckpointError(
                f"{self.run_dir / LAST} was written with different settings ({names}); "
                "resume with the same configuration or start a new run"
            )
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        self.history = state.pop("history")
        state.pop("config")
        self.state = state
        log.info("resumed from epoch %d", self.state["epoch"])

    # -- training ------------------------------------------------------------------------------
    def _batches(self):
        order = torch.randperm(len(self.windows), generator=self.generator).tolist()
        bs = self.config.train.batch_size
        for lo in range(0, len(order), bs):
            chunk = [self.windows[i] for i in order[lo : lo + bs]]
            yield (pad_right([w[0] for w in chunk]), pad_right([w[1] for w in chunk]), pad_right([w[2] for w in chunk]))

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        total, positions, start = 0.0, 0, time.perf_counter()
        n_batches = -(-len(self.windows) // self.config.train.batch_size)
        bar = tqdm(
            self._batches(), total=n_batches, desc=f"epoch {epoch}", leave=False,
            disable=not self.config.train.progress,
        )
        for items, times, targets in bar:
            hidden = self.model(items, times)
            mask = targets > 0
            loss = self.loss(hidden[mask], self.model.item_embeddings(), targets[mask], self.generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}: loss became {loss.item()}; lower train.lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.parameters, self.config.train.grad_clip)
            self.optimizer.step()
            n = int(mask.sum())
            total += loss.item() * n
            positions += n
            bar.set_postfix(loss=f"{loss.item():.4f}")
        seconds = time.perf_counter() - start
        return {"loss": total / max(positions, 1), "train_seconds": seconds, "positions_per_s": positions / seconds}

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until ``train.epochs`` or early stopping; return the final results."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._restore()
        elif (self.run_dir / LAST).exists():
            raise CheckpointError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or --overwrite to start over"
            )
        write_run_config(self.run_dir, self.config)
        tc = self.config.train
        while not self.state["stopped"] and self.state["epoch"] < tc.epochs:
            epoch = self.state["epoch"] + 1
            record = {"epoch": epoch, **self._train_epoch(epoch)}
            valid = evaluate_model(self.model, self.valid, self.evaluator, self.config.data.max_len, self.normalize)
            record["valid"] = valid.metrics
            score = valid.metrics[tc.selection_metric]
            if score > self.state["best_score"]:
                self.state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
                save_checkpoint(self.run_dir / BEST, self._modules(), None, {}, {"epoch": epoch})
            else:
                self.state["bad_epochs"] += 1
            self.state["epoch"] = epoch
            self.state["stopped"] = self.state["bad_epochs"] >= tc.patience
            self.history.append(record)
            self._write_history()
            self._save()
            log.info("epoch %d loss %.4f valid %s %.4f (best %.4f @ %d)", epoch, record["loss"], tc.selection_metric,
                     score, self.state["best_score"], self.state["best_epoch"])
            for callback in self.callbacks:
                callback(epoch, record)
        return self.finish()

    def _write_history(self) -> None:
        lines = "".join(json.dumps(r) + "\n" for r in self.history)
        (self.run_dir / "metrics.jsonl").write_text(lines)

    def finish(self) -> dict[str, Any]:
        """Load the best checkpoint, evaluate on test (history masked and unmasked), write results."""
        load_checkpoint(self.run_dir / BEST, self._modules())
        results = evaluate_splits(self.model, self.split, self.config)
        train_seconds = sum(r["train_seconds"] for r in self.history)
        positions = sum(r["positions_per_s"] * r["train_seconds"] for r in self.history)
        results.update(
            model=self.config.model_name,
            loss=resolve_loss_name(self.config.train.loss["name"], self.split.n_items),
            selection_metric=self.config.train.selection_metric,
            epochs=self.state["epoch"],
            best_epoch=self.state["best_epoch"],
            train_seconds=train_seconds,
            positions_per_s=positions / train_seconds if train_seconds else 0.0,
        )
        write_results(self.run_dir, results)
        plot_training_curves(self.history, self.run_dir / "training_curves.png")
        return results


def scores_are_cosine(config: ExperimentConfig) -> bool:
    """Whether the run scores items by cosine (the loss's similarity, which evaluation follows)."""
    return loss_config(config.train.loss)[1].similarity == "cosine"


def evaluate_splits(model, split: LeaveOneOutSplit, config: ExperimentConfig) -> dict[str, Any]:
    """Validation (configured masking) and test metrics under both history conventions."""
    ec, max_len, normalize = config.eval, config.data.max_len, scores_are_cosine(config)
    out = {
        "valid": evaluate_model(
            model, split.examples("valid"), Evaluator(ec.ks, ec.mask_history, ec.batch_size), max_len, normalize
        ).metrics
    }
    test = split.examples("test")
    for masked in (True, False):
        key = "test_masked" if masked else "test_unmasked"
        out[key] = evaluate_model(model, test, Evaluator(ec.ks, masked, ec.batch_size), max_len, normalize).metrics
    return out

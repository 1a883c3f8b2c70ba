"""The one training loop every model shares.

AdamW on the model's training loss (by default the configured next-item loss, ``train.loss``, at
every position of the training windows), with parameter groups that have their own learning rates
or are frozen (``train.param_groups``), gradient accumulation, bf16 autocast and a device setting.
After each epoch the model is evaluated on the validation targets, the best model by the
validation ``train.selection_metric`` (NDCG@10 by default) is kept, and training stops after
``patience`` epochs without improvement. Each epoch ends with a checkpoint of the trainable state
(trainable weights, optimizer, RNG, bookkeeping; frozen weights only as a fingerprint) from which
``resume=True`` continues a killed run exactly: a run killed after epoch 1 and resumed ends with
the same metrics as one that was not. With ``train.ema_decay`` the validation, the best checkpoint
and the test read an exponential moving average of the weights (``training/averaging.py``), which
the last checkpoint carries beside the trained weights. ``train.init_from`` starts a run from another run's best
weights (the second stage of a two-stage model). A model with nothing to train (MostPop) is
evaluated as it is built.

Under ``torchrun`` the run is data-parallel (``hymirec.distributed``): every rank draws the same
batch order and trains its contiguous share of each global batch (``train.batch_size`` is the
global batch), ``DistributedDataParallel`` averages the gradients, and each rank's loss is weighted
by its share of the batch's positions, so an optimizer step follows the gradient one process
computes on the whole batch. Dropout and negative sampling draw from per-rank streams seeded by
(seed, epoch, rank), which is what lets a run resume under another world size. Evaluation is
sharded and exact; rank 0 writes every file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm.auto import tqdm

from hymirec.data.batching import pad_right, training_windows
from hymirec.config import ConfigError
from hymirec.data.split import ChronologicalSplit
from hymirec.distributed import World, join_world, launched_processes, rank_device
from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.inference import evaluate_model, evaluate_splits
from hymirec.io import write_text_atomic
from hymirec.models.base import SequentialRecommender
from hymirec.training.averaging import WeightAverage
from hymirec.training.checkpoint import (
    CheckpointError,
    fingerprint,
    frozen_names,
    load_weights,
    read_checkpoint,
    save_checkpoint,
    trainable_state,
)
from hymirec.training.config import ExperimentConfig, dump_experiment, experiment_defaults
from hymirec.training.losses import build_loss, resolve_loss_name
from hymirec.training.params import configure_parameters, named_parameters, resolve_device
from hymirec.training.plots import plot_training_curves

log = logging.getLogger(__name__)

LAST = "last.safetensors"
BEST = "best.safetensors"
METRICS = "metrics.jsonl"  # one JSON line per finished epoch, rewritten with each checkpoint
AVERAGE = "average"  # the checkpoint prefix of the weight average's tensors
# Settings that may differ between a killed run and its resumption: none changes what is trained
# (threads change only the order of float sums, as another world size does).
RESUMABLE_CHANGES = {("train", "epochs"), ("train", "progress"), ("train", "patience"), ("train", "device"),
                     ("train", "backend"), ("train", "threads")}

EpochCallback = Callable[[int, dict[str, Any]], None]


def write_run_config(run_dir: Path, config: ExperimentConfig) -> None:
    """The resolved settings of a run, which ``hymirec evaluate`` rebuilds the model from."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(dump_experiment(config), sort_keys=False))


def write_results(run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Add this process's peak memory to ``results`` and write them as ``results.json``."""
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_text_atomic(run_dir / "results.json", json.dumps(results, indent=2))
    return results


def config_diff(a: dict, b: dict, prefix: tuple = (), defaults: dict | None = None) -> list[tuple]:
    """The key paths (tuples) at which two nested settings mappings differ. With ``defaults``
    (settings of the same shape at their defaults), a key that ``a`` lacks and ``b`` holds at its
    default is no difference: a setting added to hymirec after ``a`` was written, left off."""
    keys = set(a) | set(b)
    diffs = []
    for k in sorted(keys):
        va, vb = a.get(k), b.get(k)
        default = defaults.get(k) if isinstance(defaults, dict) else None
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += config_diff(va, vb, prefix + (k,), default)
        elif k not in a and isinstance(defaults, dict) and k in defaults and vb == default:
            continue
        elif va != vb:
            diffs.append(prefix + (k,))
    return diffs


class _TrainingStep(nn.Module):
    """A model and its loss as one module whose forward is a training step: what
    ``DistributedDataParallel`` wraps, since it averages gradients through hooks on forward."""

    def __init__(self, model: SequentialRecommender, loss: nn.Module) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, items, times, targets, generator) -> tuple[torch.Tensor, int]:
        return self.model.training_loss(items, times, targets, self.loss, generator)


def join_training_world(config: ExperimentConfig) -> tuple[World, torch.device]:
    """The run's process group and this process's device; settings that cannot work under the
    launched world are refused first (before any training)."""
    tc = config.train
    processes = launched_processes()
    if tc.batch_size % processes:
        raise ConfigError(
            f"train.batch_size {tc.batch_size} is the global batch and must split evenly over the "
            f"{processes} processes torchrun started; use a multiple of {processes}"
        )
    device = rank_device(resolve_device(tc.device))
    return join_world(tc.backend, device), device


class Trainer:
    """Trains ``model`` on ``split`` as ``config`` says, writing everything under ``run_dir``."""

    def __init__(
        self,
        config: ExperimentConfig,
        model: SequentialRecommender,
        split: ChronologicalSplit,
        run_dir: str | Path,
        callbacks: list[EpochCallback] | None = None,
    ) -> None:
        self.config = config
        self.split = split
        self.run_dir = Path(run_dir)
        self.callbacks = callbacks or []
        tc = config.train
        self.world, self.device = join_training_world(config)
        self.model = model.to(self.device)
        self.loss = build_loss(tc.loss, split.n_items).to(self.device)
        if tc.gather_negatives:
            self.loss.world = self.world
        if tc.init_from:
            init_from(self.model, tc.init_from, tc.init_modules)
        groups = configure_parameters(self._modules(), tc)
        self.parameters = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=tc.lr, weight_decay=tc.weight_decay) if groups else None
        for group in self.optimizer.param_groups if self.optimizer else []:
            group["base_lr"] = group["lr"]
        trained = [(name, p) for name, p in named_parameters(self._modules()) if p.requires_grad]
        self.average = WeightAverage(trained, tc.ema_decay) if tc.ema_decay and trained else None
        self.frozen = frozen_names(self._modules())
        self.frozen_fingerprint = fingerprint(self._modules(), self.frozen) if self.frozen else None
        self.cosine = scores_are_cosine(config, model)
        self.generator = torch.Generator().manual_seed(tc.seed)
        # Negatives are drawn where the vectors live; in one CPU process from the same stream as
        # the order, under torchrun from each rank's own (the order stream is every rank's).
        separate = self.device.type != "cpu" or self.world.distributed
        self.sample_generator = torch.Generator(self.device).manual_seed(tc.seed) if separate else self.generator
        self.step = _TrainingStep(self.model, self.loss)
        if self.world.distributed and self.optimizer is not None:
            # Unused parameters are looked for: some steps leave a branch out (HyMiRec's long
            # history for windows that start at 0).
            self.step = nn.parallel.DistributedDataParallel(
                self.step, device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.sequences = split.train_sequences()
        self.windows = self._rows()
        self.evaluator = Evaluator.from_config(config.eval)
        self.valid = split.examples("valid")
        self.history: list[dict[str, Any]] = []
        self.state = {"epoch": 0, "step": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "stopped": False}

    # -- checkpoints ---------------------------------------------------------------------------
    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model, "loss": self.loss}

    def _rng(self) -> dict[str, torch.Tensor]:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
            rng["sample_generator"] = self.sample_generator.get_state()
        return rng

    def _checkpoint(
        self, path: Path, optimizer: torch.optim.Optimizer | None, state: dict[str, Any], averaged: bool = False
    ) -> None:
        if not self.world.main:  # rank 0 writes; the others would only gather what it writes
            return
        weights = trainable_state(self._modules())
        if averaged:
            # Under a prefix no module has, so loading the trained weights passes over it.
            weights.update({f"{AVERAGE}.{k}": v for k, v in self.average.state().items()})
        state = {**state, "frozen_fingerprint": self.frozen_fingerprint}
        save_checkpoint(path, weights, optimizer, self._rng() if optimizer else {}, state)

    def _save(self) -> None:
        state = {**self.state, "history": self.history, "config": dump_experiment(self.config)}
        self._checkpoint(self.run_dir / LAST, self.optimizer, state, averaged=self.average is not None)

    def evaluated_weights(self):
        """The weights validation and test read: the moving average when there is one."""
        return self.average.applied() if self.average is not None else contextlib.nullcontext()

    def _restore(self) -> None:
        checkpoint = read_checkpoint(self.run_dir / LAST)
        state = checkpoint.state
        current, defaults = dump_experiment(self.config), experiment_defaults(self.config)
        diffs = [d for d in config_diff(state["config"], current, defaults=defaults) if d not in RESUMABLE_CHANGES]
        if diffs:
            names = ", ".join(".".join(d) for d in diffs)
            raise CheckpointError(
                f"{self.run_dir / LAST} was written with different settings ({names}); "
                "resume with the same configuration or start a new run"
            )
        load_weights(checkpoint, self._modules(), self.frozen, self.frozen_fingerprint)
        if self.average is not None:
            prefix = AVERAGE + "."
            self.average.load({k[len(prefix):]: v for k, v in checkpoint.weights.items() if k.startswith(prefix)})
        if self.optimizer is not None:
            self.optimizer.load_state_dict(checkpoint.optimizer)
        rng = checkpoint.rng
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
            self.sample_generator.set_state(rng["sample_generator"])
        self.history = state.pop("history")
        for key in ("config", "frozen_fingerprint"):
            state.pop(key)
        state.setdefault("step", 0)  # checkpoints written before the schedule counted steps
        self.state = state
        log.info("resumed from epoch %d", self.state["epoch"])

    def load_best(self) -> None:
        """Put the best epoch's weights into the model."""
        load_weights(read_checkpoint(self.run_dir / BEST), self._modules(), self.frozen, self.frozen_fingerprint)

    # -- training ------------------------------------------------------------------------------
    def autocast(self) -> torch.autocast:
        """bf16 autocast when ``train.precision`` asks for it (a no-op context otherwise)."""
        bf16 = self.config.train.precision == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)

    def _rows(self, phases: np.ndarray | None = None) -> list:
        """The training sequences cut into rows by the ``data`` settings (``phases``: see
        ``training_windows``)."""
        data = self.config.data
        return training_windows(self.sequences, data.max_len, phases, data.window_context, data.window_whole_prefix)

    def _cut_rows(self) -> None:
        """This epoch's training rows: with ``data.window_phase: random``, cut anew with phases
        drawn from the run's generator (so a resumed run draws the same ones)."""
        data = self.config.data
        if data.window_phase == "random":
            phases = torch.randint(0, data.max_len - data.window_context, (len(self.sequences),),
                                   generator=self.generator).numpy()
            self.windows = self._rows(phases)

    def _reseed(self, epoch: int) -> None:
        """Under torchrun, this rank's dropout and negative-sampling streams for ``epoch``: drawn
        from (seed, epoch, rank) alone, so a run resumed under another world size draws what an
        uninterrupted run of that size draws."""
        if self.world.distributed:
            seed = (self.config.train.seed * 1_000_003 + epoch) * 1009 + self.world.rank
            torch.manual_seed(seed)
            self.sample_generator.manual_seed(seed + 1)

    def _batches(self):
        """``(items, times, targets, weighted)``: this rank's share of each global batch (all of
        it in one process). A rank left without a row of a short last batch trains a copy of its
        first row with no weight, since every rank must take part in every step."""
        order = torch.randperm(len(self.windows), generator=self.generator).tolist()
        bs = self.config.train.batch_size
        for lo in range(0, len(order), bs):
            batch = order[lo : lo + bs]
            share = self.world.share(len(batch))
            rows = batch[share.start: share.stop] or batch[:1]
            chunk = [self.windows[i] for i in rows]
            yield *(pad_right([w[k] for w in chunk]).to(self.device) for k in range(3)), bool(share)

    def _global_loss(self, loss: torch.Tensor, n: int) -> tuple[torch.Tensor, float, int]:
        """``(what to backpropagate, the batch's mean loss, its positions)``. Under torchrun each
        rank's mean is weighted by its share of the global batch's positions times the world size:
        ``DistributedDataParallel`` divides the summed gradients by the world size, which leaves
        the gradient of the global batch's mean loss."""
        if not self.world.distributed:
            return loss, loss.item(), n
        positions, total = self.world.all_sum(torch.tensor([n, loss.item() * n])).tolist()
        return loss * (n * self.world.size / positions), total / positions, int(positions)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        tc = self.config.train
        total, positions, start = 0.0, 0, time.perf_counter()
        self._cut_rows()
        n_batches = -(-len(self.windows) // tc.batch_size)
        # The schedule's length: with window_phase random an epoch's row count moves a little.
        total_steps = tc.epochs * -(-n_batches // tc.grad_accumulation)
        self._reseed(epoch)
        bar = tqdm(self._batches(), total=n_batches, desc=f"epoch {epoch}", leave=False,
                   disable=not tc.progress or not self.world.main)
        self.optimizer.zero_grad(set_to_none=True)
        for step, (items, times, targets, weighted) in enumerate(bar, start=1):
            with self.autocast():
                loss, n = self.step(items, times, targets, self.sample_generator)
            loss, value, n = self._global_loss(loss, n if weighted else 0)
            if not math.isfinite(value):
                raise FloatingPointError(f"epoch {epoch}: loss became {value}; lower train.lr")
            (loss / tc.grad_accumulation).backward()
            if step % tc.grad_accumulation == 0 or step == n_batches:
                if tc.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.parameters, tc.grad_clip)
                factor = tc.lr_factor(self.state["step"], total_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                self.optimizer.step()
                if self.average is not None:
                    self.average.update()
                self.state["step"] += 1
                self.optimizer.zero_grad(set_to_none=True)
            total += value * n
            positions += n
            bar.set_postfix(loss=f"{value:.4f}")
        seconds = time.perf_counter() - start
        return {"loss": total / max(positions, 1), "train_seconds": seconds, "positions_per_s": positions / seconds,
                "steps": n_batches}

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until ``train.epochs`` or early stopping; return the final results."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._restore()
        elif (self.run_dir / LAST).exists():
            raise CheckpointError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or --overwrite to start over"
            )
        if self.world.main:
            write_run_config(self.run_dir, self.config)
        tc = self.config.train
        if self.optimizer is None:
            # Nothing to train (MostPop): the model as built is the best one.
            self._checkpoint(self.run_dir / BEST, None, {"epoch": 0})
            self.state["stopped"] = True
        while not self.state["stopped"] and self.state["epoch"] < tc.epochs:
            epoch = self.state["epoch"] + 1
            record = {"epoch": epoch, **self._train_epoch(epoch)}
            with self.evaluated_weights():
                with self.autocast():
                    valid = evaluate_model(self.model, self.valid, self.evaluator, self.config.data.max_len,
                                           self.cosine, world=self.world)
                record["valid"] = valid.metrics
                score = valid.metrics[tc.selection_metric]
                improved = score > self.state["best_score"]
                if improved:  # saved while the evaluated weights are in the model
                    self._checkpoint(self.run_dir / BEST, None, {"epoch": epoch})
            if improved:
                self.state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
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
        if self.world.main:
            lines = "".join(json.dumps(r) + "\n" for r in self.history)
            write_text_atomic(self.run_dir / METRICS, lines)

    def finish(self) -> dict[str, Any]:
        """Load the best checkpoint, evaluate on test (history masked and unmasked), write results."""
        self.world.barrier()  # rank 0's best checkpoint is on disk
        self.load_best()
        with self.autocast():
            results = evaluate_splits(self.model, self.split, self.config.eval, self.config.data.max_len,
                                      self.cosine, self.world)
        train_seconds = sum(r["train_seconds"] for r in self.history)
        positions = sum(r["positions_per_s"] * r["train_seconds"] for r in self.history)
        # Epochs recorded before batches were counted (a run resumed across versions) have no "steps".
        steps = [r.get("steps") for r in self.history]
        results.update(
            model=self.config.model_name,
            loss=resolve_loss_name(self.config.train.loss.name, self.split.n_items),
            selection_metric=self.config.train.selection_metric,
            epochs=self.state["epoch"],
            best_epoch=self.state["best_epoch"],
            train_seconds=train_seconds,
            positions_per_s=positions / train_seconds if train_seconds else 0.0,
            seconds_per_step=train_seconds / sum(steps) if steps and None not in steps else None,
        )
        if self.device.type == "cuda":
            results["peak_gpu_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            results["gpu"] = torch.cuda.get_device_name(self.device)  # tables name the machine of each run
        if self.world.distributed:
            results["world_size"] = self.world.size
        if not self.world.main:
            return results
        write_results(self.run_dir, results)
        if self.history:
            plot_training_curves(self.history, self.run_dir / "training_curves.png", self.config.train.selection_metric)
        return results


def scores_are_cosine(config: ExperimentConfig, model: SequentialRecommender | None = None) -> bool:
    """Whether the run scores items by cosine: the model's fixed similarity when it has one,
    else the loss's (evaluation follows what training optimised)."""
    similarity = getattr(model, "similarity", None) or config.train.loss.similarity
    return similarity == "cosine"


def init_from(model: SequentialRecommender, source: str | Path, modules: list[str] | None = None) -> None:
    """Load the weights of another run's best checkpoint (a run folder or a checkpoint file)
    that this model has under the same names -- only those under the ``modules`` name prefixes
    when given; the rest keeps its initialisation.

    A weight of the same name but another shape, or no shared weight at all, is an error.
    """
    path = Path(source).expanduser()
    checkpoint = read_checkpoint(path / BEST if path.is_dir() else path)
    own = model.state_dict()
    shared = {k[len("model.") :]: v for k, v in checkpoint.weights.items() if k[len("model.") :] in own}
    if modules is not None:
        shared = {k: v for k, v in shared.items() if any(k == m or k.startswith(m + ".") for m in modules)}
    if not shared:
        raise CheckpointError(f"train.init_from: {checkpoint.path} holds no weight this model has")
    wrong = [k for k, v in shared.items() if v.shape != own[k].shape]
    if wrong:
        raise CheckpointError(
            f"train.init_from: {checkpoint.path} has other shapes for {wrong[:5]}; built with other sizes?"
        )
    model.load_state_dict(shared, strict=False)
    log.info("initialised %d of %d tensors from %s", len(shared), len(own), checkpoint.path)


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epochs a run folder's ``metrics.jsonl`` records, in order (one dict per epoch)."""
    return [json.loads(line) for line in (Path(run_dir) / METRICS).read_text().splitlines() if line.strip()]

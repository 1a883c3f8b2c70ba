import json

import numpy as np
import pytest
import torch

from hymirec.config import ConfigError
from hymirec.data.split import ChronologicalSplit
from hymirec.models import MODELS, ModelInputs, build_model
from hymirec.training.averaging import WeightAverage
from hymirec.training.checkpoint import CheckpointError, read_checkpoint
from hymirec.training.config import dump_experiment, load_experiment
from hymirec.training.losses import DMILConfig, LossConfig, SampledSoftmaxConfig, loss_config
from hymirec.training.trainer import Trainer
from helpers import make_dataset


def _toy_split(seed=0, n_users=60, n_items=40):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        # Each user walks a cycle through the catalogue with a user-specific stride: learnable.
        start, stride = int(rng.integers(1, n_items + 1)), int(rng.integers(1, 3))
        for t in range(int(rng.integers(6, 15))):
            rows.append((u, (start + stride * t - 1) % n_items + 1, 100 * t))
    return ChronologicalSplit(make_dataset(rows, n_items=n_items))


def _config(tmp_path, *extra, **train):
    overrides = [
        "model.name=sasrec", "model.dim=16", "model.num_layers=1", "data.max_len=8",
        "train.batch_size=16", "train.progress=false", "eval.ks=[10, 20]",
        f"out_dir={tmp_path}", *extra,
    ] + [f"train.{k}={v}" for k, v in train.items()]
    return load_experiment(None, overrides)


def _trainer(config, split, callbacks=None):
    torch.manual_seed(config.train.seed)
    inputs = ModelInputs(split.n_items, config.data.max_len, split.dataset, split.train_sequences())
    model = build_model(config.model_name, config.model_config, inputs)
    return Trainer(config, model, split, config.run_dir, callbacks)


def test_training_learns_and_writes_its_files(tmp_path):
    split = _toy_split()
    config = _config(tmp_path, epochs=8, lr=0.01)
    results = _trainer(config, split).fit()
    run = config.run_dir
    for name in ("last.safetensors", "best.safetensors", "metrics.jsonl", "results.json",
                 "config.yaml", "training_curves.png"):
        assert (run / name).is_file(), name
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert history[-1]["loss"] < history[0]["loss"]
    # Step times: the epochs' seconds over their optimiser steps (the GPU benchmarks quote them).
    steps = sum(h["steps"] for h in history)
    assert steps >= 8 and results["seconds_per_step"] == pytest.approx(results["train_seconds"] / steps)
    assert "gpu" not in results
    # Far better than chance (R@10 = 10/40 at random) on a deterministic-cycle dataset.
    assert results["test_masked"]["recall@10"] > 0.5
    assert results["test_masked"]["recall@10"] >= results["test_unmasked"]["recall@10"] - 1e-9


@pytest.mark.parametrize("extra", [(), ("data.window_phase=random", "data.max_len=4", "data.window_context=2",
                                         "train.schedule=cosine", "train.warmup_steps=3"), ("train.ema_decay=0.9",)])
def test_killed_run_resumes_to_identical_results(tmp_path, extra):
    split = _toy_split()
    full = _trainer(_config(tmp_path / "a", *extra, epochs=3, lr=0.01), split).fit()

    def kill_after_first_epoch(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    config_b = _config(tmp_path / "b", *extra, epochs=3, lr=0.01)
    with pytest.raises(KeyboardInterrupt):
        _trainer(config_b, split, [kill_after_first_epoch]).fit()
    # A fresh process would start from different global RNG state; resume must not care.
    torch.manual_seed(1234)
    resumed = _trainer(config_b, split).fit(resume=True)
    assert resumed["test_masked"] == full["test_masked"]
    assert resumed["valid"] == full["valid"]
    assert resumed["epochs"] == full["epochs"] == 3


def test_same_seed_same_results_and_existing_run_is_protected(tmp_path):
    split = _toy_split()
    a = _trainer(_config(tmp_path / "a", epochs=2), split).fit()
    b = _trainer(_config(tmp_path / "b", epochs=2), split).fit()
    assert a["test_masked"] == b["test_masked"]
    with pytest.raises(CheckpointError, match="--resume"):
        _trainer(_config(tmp_path / "a", epochs=2), split).fit()


def test_resume_refuses_a_different_configuration(tmp_path):
    split = _toy_split()
    _trainer(_config(tmp_path, epochs=1), split).fit()
    with pytest.raises(CheckpointError, match="train.lr"):
        _trainer(_config(tmp_path, epochs=2, lr=0.5), split).fit(resume=True)


def test_resume_accepts_settings_that_do_not_change_what_is_trained(tmp_path):
    # Resuming a torchrun run in one process gives that process more threads and another backend.
    split = _toy_split()
    _trainer(_config(tmp_path, "train.threads=1", epochs=1), split).fit()
    resumed = _trainer(_config(tmp_path, "train.threads=2", "train.backend=gloo", epochs=2), split).fit(resume=True)
    assert resumed["epochs"] == 2


def test_early_stopping_stops_after_patience(tmp_path):
    split = _toy_split()
    # lr 0 -> validation never improves after epoch 1 -> stop after 1 + patience epochs.
    results = _trainer(_config(tmp_path, epochs=20, lr=1e-12, patience=2), split).fit()
    assert results["epochs"] == 3 and results["best_epoch"] == 1


# Every registered model with every loss (and both similarities): one epoch end to end on tiny data.
LOSS_SETTINGS = {
    "full_cosine": {"name": "full_softmax"},
    "full_dot": {"name": "full_softmax", "similarity": "dot", "temperature": 1.0},
    "sampled_per_position": {"name": "sampled_softmax", "num_negatives": 8},
    "sampled_shared_in_batch": {"name": "sampled_softmax", "num_negatives": 8, "per_position": False,
                                "in_batch": True, "learnable_temperature": True},
}


# Tiny random backbones for the text models (a BERT-like item encoder, a Llama-like user LM).
TINY_BACKBONE = "{source: random-%s, hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32}"
MODEL_SETTINGS = {
    "morec": ["model.dim=8", f"model.items={{encoder: {TINY_BACKBONE % 'bert'}, item_ids: true}}"],
    "hllm": [f"model.items={{encoder: {TINY_BACKBONE % 'bert'}, trainable: true}}",
             f"model.user_model={TINY_BACKBONE % 'llama'}"],
    # Single interest: these losses train the next item (DMIL has its own tests).
    "hymirec": [f"model.items={{encoder: {TINY_BACKBONE % 'bert'}, item_ids: true}}", "model.history.k=4",
                "model.lightweight={dim: 8, num_layers: 1, num_heads: 2, ffn_dim: 16}",
                f"model.llm={{backbone: {TINY_BACKBONE % 'llama'}, recent: 3, interests: 1}}"],
    "patchrec": [f"model.items={{encoder: {TINY_BACKBONE % 'bert'}}}",
                 f"model.llm={{backbone: {TINY_BACKBONE % 'llama'}, recent: 3}}", "model.patch_size=2"],
}


@pytest.mark.parametrize("loss", sorted(LOSS_SETTINGS))
@pytest.mark.parametrize("model", sorted(set(MODELS) - {"mostpop"}))
def test_every_model_trains_with_every_loss(tmp_path, model, loss):
    split = _toy_split(n_users=20)
    config = load_experiment(None, [
        f"model.name={model}", "data.max_len=8", "train.batch_size=8", "train.epochs=1", "train.progress=false",
        "train.grad_clip=1.0", "eval.ks=[10]", f"out_dir={tmp_path}", *MODEL_SETTINGS.get(model, []),
    ])
    config.train.loss = loss_config(LOSS_SETTINGS[loss])
    trainer = _trainer(config, split)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    results = trainer.fit()
    assert results["epochs"] == 1 and results["loss"] == LOSS_SETTINGS[loss]["name"]
    assert np.isfinite(json.loads((config.run_dir / "metrics.jsonl").read_text())["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert 0.0 <= results["test_masked"]["ndcg@10"] <= 1.0


def test_gradient_clipping_covers_the_learnable_temperature(tmp_path, monkeypatch):
    split = _toy_split(n_users=10)
    config = _config(tmp_path, epochs=1, grad_clip=1.0)
    config.train.loss = loss_config({"name": "full_softmax", "learnable_temperature": True, "temperature": 0.5})
    trainer = _trainer(config, split)
    clipped = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, c: clipped.append(list(params)) or real(params, c))
    trainer.fit()
    assert clipped and any(p is trainer.loss.log_scale for p in clipped[0])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.loss.name=nope", r"train\.loss\.name 'nope' is unknown; choose one of \['auto', 'full_softmax', 'sampled_softmax', 'dmil'\]"),
        ("train.loss.temperature=0", "temperature must be > 0"),
        ("train.selection_metric=mrr@10", "selection_metric must look like ndcg@K or recall@K"),
        ("train.selection_metric=ndcg@20", r"needs 20 in eval.ks"),
        ("train.threads=-1", "train.threads must be >= 0"),
    ],
)
def test_bad_training_settings_fail_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(None, [override])


def test_negatives_as_many_as_the_catalogue_fail_before_training(tmp_path):
    split = _toy_split()  # 40 items
    config = _config(tmp_path)
    config.train.loss = loss_config({"name": "sampled_softmax", "num_negatives": 40})
    with pytest.raises(ConfigError, match=r"train\.loss \(sampled_softmax\): num_negatives \(40\) must be smaller"):
        _trainer(config, split)
    assert not (config.run_dir / "last.safetensors").exists()


def test_loss_given_by_name_only_and_settings_without_name(tmp_path):
    assert load_experiment(None, ["train.loss=sampled_softmax"]).train.loss == SampledSoftmaxConfig()
    assert load_experiment(None, ["train.loss.temperature=0.1"]).train.loss == LossConfig(name="auto", temperature=0.1)


def test_loss_settings_are_typed_once_and_round_trip():
    config = load_experiment(None, ["train.loss={name: dmil, window: 3}"])
    assert isinstance(config.train.loss, DMILConfig) and config.train.loss.window == 3
    again = load_experiment(None, [f"train.loss={json.dumps(dump_experiment(config)['train']['loss'])}"])
    assert again.train.loss == config.train.loss
    config.train.validate()  # validation reads the typed config and leaves it as it is
    assert isinstance(config.train.loss, DMILConfig)


def test_selection_metric_picks_the_best_epoch(tmp_path):
    split = _toy_split()
    results = _trainer(_config(tmp_path, epochs=4, lr=0.01, selection_metric="recall@20"), split).fit()
    history = [json.loads(line) for line in (tmp_path / "experiment" / "metrics.jsonl").read_text().splitlines()]
    best = max(range(4), key=lambda i: (history[i]["valid"]["recall@20"], -i))
    assert results["best_epoch"] == best + 1 and results["selection_metric"] == "recall@20"


def test_dot_product_runs_are_evaluated_by_dot_product():
    # Item 2 is closer in angle to the user, item 1 has the larger dot product.
    from hymirec.evaluation.inference import evaluate_splits
    from hymirec.models.base import SequentialRecommender
    from hymirec.training.trainer import scores_are_cosine

    class Fixed(SequentialRecommender):
        def user_embeddings(self, items, times, lengths):
            return torch.tensor([[[1.0, 0.0]]]).expand(len(items), 1, 2)

        def embed_items(self, ids):
            return torch.tensor([[0.0, 0.0], [3.0, 3.0], [1.0, 0.1], [-1.0, 0.0]])[ids]

    split = ChronologicalSplit(make_dataset([(1, 3, 0), (1, 1, 1), (1, 2, 2)], n_items=3))
    cosine = load_experiment(None, ["eval.ks=[1]", "train.selection_metric=ndcg@1"])
    dot = load_experiment(None, ["eval.ks=[1]", "train.selection_metric=ndcg@1", "train.loss.similarity=dot"])
    assert scores_are_cosine(cosine) and not scores_are_cosine(dot)
    # Test target is item 2 (history 3, 1 unmasked): cosine ranks it first, dot ranks item 1 first.
    fixed = Fixed(ModelInputs(3, 5))
    assert evaluate_splits(fixed, split, cosine.eval, 5, scores_are_cosine(cosine))["test_unmasked"]["recall@1"] == 1.0
    assert evaluate_splits(fixed, split, dot.eval, 5, scores_are_cosine(dot))["test_unmasked"]["recall@1"] == 0.0


def test_learning_rate_schedules_known_answers():
    from hymirec.training.config import TrainConfig

    assert [TrainConfig().lr_factor(s, 10) for s in (0, 9)] == [1.0, 1.0]
    warm = TrainConfig(warmup_steps=4)
    assert [warm.lr_factor(s, 10) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = TrainConfig(schedule="cosine", warmup_steps=2)
    assert cosine.lr_factor(0, 12) == 0.5 and cosine.lr_factor(2, 12) == 1.0
    assert abs(cosine.lr_factor(7, 12) - 0.5) < 1e-9 and cosine.lr_factor(12, 12) == 0.0
    linear = TrainConfig(schedule="linear")
    assert linear.lr_factor(5, 10) == 0.5
    with pytest.raises(ValueError, match="train.warmup_steps"):
        TrainConfig(warmup_steps=-1).validate()


def test_weight_average_known_answer_and_applied_restores_the_trained_weights():
    param = torch.nn.Parameter(torch.zeros(2))
    average = WeightAverage([("w", param)], decay=0.5)
    with torch.no_grad():
        param.fill_(1.0)
    average.update()  # decay warms up: min(0.5, 1 / 10) = 0.1 -> 0.9 of the way
    assert torch.allclose(average.shadow[0], torch.full((2,), 0.9))
    with torch.no_grad():
        param.fill_(2.0)
    average.update()  # min(0.5, 2 / 11) -> 0.9 + (2 - 0.9) * (1 - 2 / 11)
    assert torch.allclose(average.shadow[0], torch.full((2,), 0.9 + 1.1 * 9 / 11))
    with average.applied():
        assert torch.allclose(param, average.shadow[0])
    assert torch.equal(param.detach(), torch.full((2,), 2.0))


def test_ema_run_keeps_the_average_as_its_best_weights(tmp_path):
    split = _toy_split()
    config = _config(tmp_path, "train.ema_decay=0.95", epochs=1, lr=0.01)
    trainer = _trainer(config, split)
    trainer.fit()
    best = read_checkpoint(config.run_dir / "best.safetensors").weights
    last = read_checkpoint(config.run_dir / "last.safetensors").weights
    for name, shadow in zip(trainer.average.names, trainer.average.shadow):
        assert torch.equal(best[name], shadow), name
        assert torch.equal(last[f"average.{name}"], shadow), name
    # The trained weights themselves are elsewhere: the average is not a copy of them.
    assert any(not torch.equal(last[name], best[name]) for name in trainer.average.names)


def test_ema_decay_out_of_range_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="train.ema_decay"):
        _config(tmp_path, "train.ema_decay=1.0")


def test_config_diff_passes_over_a_setting_added_since_at_its_default():
    from hymirec.training.trainer import config_diff

    old = {"train": {"lr": 0.001}}
    defaults = {"train": {"lr": 0.001, "ema_decay": 0.0}}
    assert config_diff(old, {"train": {"lr": 0.001, "ema_decay": 0.0}}, defaults=defaults) == []
    assert config_diff(old, {"train": {"lr": 0.001, "ema_decay": 0.9}}, defaults=defaults) == [("train", "ema_decay")]
    assert config_diff(old, {"train": {"lr": 0.001, "ema_decay": 0.0}}) == [("train", "ema_decay")]

"""The trainer's features for LLM models: frozen / per-group learning rates, checkpoints of the
trainable state only, two-stage runs (``init_from``), gradient accumulation, bf16, device."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open

from hymirec.config import ConfigError
from hymirec.training.checkpoint import CheckpointError
from hymirec.training.config import load_experiment
from hymirec.training.run import build
from hymirec.training.trainer import BEST, LAST, Trainer
from test_trainer import _toy_split

os.environ["HF_HUB_OFFLINE"] = "1"
BERT = "{source: random-bert, hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32}"
LLAMA = "{source: random-llama, hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64}"


def hllm_config(run_dir, *extra, epochs=2):
    """A tiny HLLM: a trainable BERT-like item encoder and a Llama-like user LM."""
    return load_experiment(None, [
        "model.name=hllm", f"model.items={{encoder: {BERT}, trainable: true}}", f"model.user_model={LLAMA}",
        "data.max_len=8", "train.batch_size=16", f"train.epochs={epochs}", "train.progress=false",
        "train.lr=0.01", "eval.ks=[10]", f"out_dir={run_dir.parent}", f"name={run_dir.name}", *extra,
    ])


def trainer(config, split, callbacks=None):
    torch.manual_seed(config.train.seed)
    return Trainer(config, build(config, split), split, config.run_dir, callbacks)


def stored_names(path):
    with safe_open(str(path), framework="pt") as f:
        return [k for k in f.keys() if k.startswith("weights.")]


def test_frozen_group_does_not_change_and_is_not_checkpointed(tmp_path):
    split = _toy_split(n_users=20)
    groups = "train.param_groups={user_model.layers.0: {frozen: true}, items: {lr: 0.001}}"
    config = hllm_config(tmp_path / "run", groups)
    t = trainer(config, split)
    frozen_before = {n: p.detach().clone() for n, p in t.model.named_parameters() if n.startswith("user_model.layers.0.")}
    items_before = {n: p.detach().clone() for n, p in t.model.named_parameters() if n.startswith("items")}
    t.fit()
    for name, param in t.model.named_parameters():
        if name in frozen_before:
            assert torch.equal(param, frozen_before[name]), name
    assert any(not torch.equal(p, items_before[n]) for n, p in t.model.named_parameters() if n in items_before)
    # The item group has its own learning rate.
    assert sorted(g["lr"] for g in t.optimizer.param_groups) == [0.001, 0.01]
    names = stored_names(config.run_dir / LAST)
    assert names and not any(n.startswith("weights.model.user_model.layers.0.") for n in names)
    assert any(n.startswith("weights.model.user_model.layers.1.") for n in names)
    assert any(n.startswith("weights.model.items.") for n in names)


def test_frozen_lm_checkpoint_is_far_smaller_than_the_lm(tmp_path):
    split = _toy_split(n_users=20)
    big = "{source: random-llama, hidden_size: 64, num_layers: 4, num_heads: 2, intermediate_size: 256}"
    config = hllm_config(tmp_path / "run", f"model.user_model={big}", "model.user_model_trainable=false",
                         "model.items={encoder: " + BERT + "}", epochs=1)
    t = trainer(config, split)
    t.fit()
    lm_bytes = sum(p.numel() * p.element_size() for p in t.model.user_model.parameters())
    assert (config.run_dir / BEST).stat().st_size * 10 < lm_bytes
    assert (config.run_dir / LAST).stat().st_size * 10 < lm_bytes


def test_checkpoint_refuses_other_frozen_weights(tmp_path):
    split = _toy_split(n_users=20)
    config = hllm_config(tmp_path / "run", "model.user_model_trainable=false", epochs=1)
    trainer(config, split).fit()
    # Another seed builds another random (frozen) user LM: the checkpoint must not silently load.
    config.train.seed = 7
    with pytest.raises(CheckpointError, match="frozen weights of this model differ"):
        trainer(config, split).load_best()


def test_two_stage_run_resumes_to_the_uninterrupted_metrics(tmp_path):
    split = _toy_split(n_users=20)
    stage1 = hllm_config(tmp_path / "stage1")
    trainer(stage1, split).fit()
    stage2_settings = [f"train.init_from={stage1.run_dir}", "train.param_groups={items: {frozen: true}}"]
    full = trainer(hllm_config(tmp_path / "a", *stage2_settings, epochs=3), split).fit()

    def kill_after_first_epoch(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    killed = hllm_config(tmp_path / "b", *stage2_settings, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        trainer(killed, split, [kill_after_first_epoch]).fit()
    torch.manual_seed(1234)
    resumed = trainer(killed, split).fit(resume=True)
    assert resumed["test_masked"] == full["test_masked"] and resumed["valid"] == full["valid"]
    # Stage 2 starts from stage 1's item encoder, not from a fresh one.
    fresh = build(hllm_config(tmp_path / "c"), split)
    staged = trainer(hllm_config(tmp_path / "d", *stage2_settings), split).model
    name = "items.encoder.model.embeddings.word_embeddings.weight"
    stage1_weights = trainer(stage1, split)
    stage1_weights.load_best()
    assert torch.equal(staged.state_dict()[name], stage1_weights.model.state_dict()[name])
    assert not torch.equal(fresh.state_dict()[name], staged.state_dict()[name])
    # A finished stage-2 run re-evaluates to the same numbers.
    torch.manual_seed(99)
    again = trainer(killed, split).finish()
    assert again["test_masked"] == resumed["test_masked"]


def test_init_from_errors(tmp_path):
    split = _toy_split(n_users=20)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        trainer(hllm_config(tmp_path / "x", f"train.init_from={tmp_path / 'nothing'}"), split)
    sasrec = load_experiment(None, ["model.name=sasrec", "model.dim=8", "data.max_len=8", "train.epochs=1",
                                    "train.progress=false", "eval.ks=[10]", f"out_dir={tmp_path}", "name=s"])
    trainer(sasrec, split).fit()
    with pytest.raises(CheckpointError, match="holds no weight this model has"):
        trainer(hllm_config(tmp_path / "y", f"train.init_from={sasrec.run_dir}"), split)
    # A stage-2 model with another user LM takes only the item encoder from stage 1.
    stage1 = hllm_config(tmp_path / "stage1", epochs=1)
    trainer(stage1, split).fit()
    other_user = "{source: random-llama, hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32}"
    with pytest.raises(CheckpointError, match="other shapes"):
        trainer(hllm_config(tmp_path / "z", f"train.init_from={stage1.run_dir}", f"model.user_model={other_user}"), split)
    staged = trainer(hllm_config(tmp_path / "z", f"train.init_from={stage1.run_dir}", "train.init_modules=[items]",
                                 f"model.user_model={other_user}"), split)
    name = "items.encoder.model.embeddings.word_embeddings.weight"
    done = trainer(stage1, split)
    done.load_best()
    assert torch.equal(staged.model.state_dict()[name], done.model.state_dict()[name])


def test_gradient_accumulation_steps_once_per_group_of_batches(tmp_path, monkeypatch):
    split = _toy_split(n_users=20)
    config = hllm_config(tmp_path / "run", "train.grad_accumulation=3", epochs=1)
    t = trainer(config, split)
    steps = []
    original = t.optimizer.step
    monkeypatch.setattr(t.optimizer, "step", lambda *a, **k: steps.append(1) or original(*a, **k))
    t._train_epoch(1)
    n_batches = -(-len(t.windows) // config.train.batch_size)
    assert len(steps) == -(-n_batches // 3)


def test_bf16_autocast_trains_to_finite_metrics(tmp_path):
    split = _toy_split(n_users=20)
    results = trainer(hllm_config(tmp_path / "run", "train.precision=bf16", epochs=1), split).fit()
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert torch.isfinite(torch.tensor(record["loss"]))
    assert 0.0 <= results["test_masked"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.param_groups={user_modle: {frozen: true}}", r"param_groups\.user_modle matches no parameter.*items"),
        ("train.param_groups={items: {lr: -1}}", r"param_groups\.items.*lr must be > 0"),
        ("train.grad_accumulation=0", "grad_accumulation must be >= 1"),
        ("train.precision=fp16", r"precision: 'fp16' is not one of \['fp32', 'bf16'\]"),
        ("train.device=tpu", "train.device must be cpu, cuda"),
    ],
)
def test_bad_trainer_settings_are_clear_errors(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        trainer(hllm_config(tmp_path / "run", override), _toy_split(n_users=10))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(ConfigError, match="no CUDA device is available"):
        trainer(hllm_config(tmp_path / "run", "train.device=cuda"), _toy_split(n_users=10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_the_cpu_contract(tmp_path):
    split = _toy_split(n_users=20)
    results = trainer(hllm_config(tmp_path / "run", "train.device=cuda", "train.precision=bf16"), split).fit()
    assert 0.0 <= results["test_masked"]["ndcg@10"] <= 1.0
    config = hllm_config(tmp_path / "run", "train.device=cpu", "train.precision=bf16")
    again = trainer(config, split).finish()
    assert again["test_masked"]["ndcg@10"] == pytest.approx(results["test_masked"]["ndcg@10"], abs=0.05)

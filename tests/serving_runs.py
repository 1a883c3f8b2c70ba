"""Tiny finished runs for the serving tests: a HyMiRec run (long history, two interests), a
SASRec run and an HLLM run, trained for one epoch on the toy dataset, offline."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from test_cli_train import _toy_dataset_dir

from hymirec.cli import main
from hymirec.encoders import BackboneConfig, load_backbone

BERT = {"source": "random-bert", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}
LLAMA = {"source": "random-llama", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}

MODELS = {
    # Long history (max_len 6) before a recent window of 3: the near-line summary has work to do.
    "hymirec": {"name": "hymirec", "items": {"encoder": BERT, "item_ids": True}, "history": {"codebook": "cosine", "layers": 2, "k": 4},
                "lightweight": {"dim": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 16},
                "llm": {"backbone": LLAMA, "recent": 3, "interests": 2}},
    "sasrec": {"name": "sasrec", "dim": 8, "num_layers": 1, "ffn_dim": 8},
    "hllm": {"name": "hllm", "items": {"encoder": BERT}, "user_model": LLAMA},
}
LOSSES = {"hymirec": {"name": "dmil", "window": 2}, "sasrec": {"name": "full_softmax"},
          "hllm": {"name": "full_softmax"}}


def pretrained_encoder(root: Path) -> Path:
    """A tiny BERT saved to a folder: a "pretrained" encoder that loads with the same weights
    every time (random sources are drawn anew)."""
    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig(**BERT), "encoder")
    folder = root / "tiny-bert"
    backbone.model.save_pretrained(folder)
    backbone.tokenizer.save_pretrained(folder)
    return folder


def train_run(root: Path, model: str, **changes) -> Path:
    """Train ``model`` (its settings updated with ``changes``) for one epoch on the toy dataset
    under ``root``; its run folder."""
    data = _toy_dataset_dir(root)
    config = {"name": model, "out_dir": str(root / "runs"), "data": {"dataset": str(data), "max_len": 6},
              "model": {**MODELS[model], **changes}, "eval": {"ks": [10]},
              "train": {"epochs": 1, "progress": False, "loss": LOSSES[model]}}
    path = root / f"{model}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(path)]) == 0
    return root / "runs" / model

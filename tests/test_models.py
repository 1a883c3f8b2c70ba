"""Contract tests for every trainable sequential recommender: the ID models (SASRec, GRU4Rec,
HSTU) and the text models (MoRec, HLLM) on tiny random backbones."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from hymirec.config import ConfigError
from hymirec.models import MODELS, HSTUConfig, ModelInputs, SASRecConfig, build_model
from helpers import make_dataset

N_ITEMS = 30
MAX_LEN = 12
os.environ["HF_HUB_OFFLINE"] = "1"
INPUTS = ModelInputs(N_ITEMS, MAX_LEN, make_dataset([(1, i, i) for i in range(1, N_ITEMS + 1)]), [])
# Tiny random backbones: a BERT-like item encoder and a Llama-like user model.
BERT = {"source": "random-bert", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}
LLAMA = {"source": "random-llama", "hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32}

# Tiny settings so that the whole file runs in seconds; "model-variant" keys are the same model
# with a structural setting changed, and go through every contract test too.
TINY = {
    "sasrec": {"dim": 8, "num_layers": 2, "num_heads": 2, "ffn_dim": 16},
    "sasrec-pre": {"dim": 8, "num_layers": 2, "num_heads": 2, "ffn_dim": 16, "layer_norm": "pre"},
    "sasrec-post": {"dim": 8, "num_layers": 2, "num_heads": 2, "ffn_dim": 16, "layer_norm": "post",
                    "activation": "gelu"},
    "gru4rec": {"dim": 8, "hidden_size": 12, "num_layers": 2},
    "gru4rec-bias": {"dim": 8, "hidden_size": 12, "num_layers": 1, "bias": True},
    "hstu": {"dim": 8, "num_layers": 2, "num_heads": 2, "linear_dim": 4, "attention_dim": 4},
    "morec": {"dim": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 16,
              "items": {"encoder": BERT, "template": "Title: {title}"}},
    "morec-trained-ids": {"dim": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 16,
                          "items": {"encoder": BERT, "trainable": True, "item_ids": True}},
    "hllm": {"items": {"encoder": BERT, "trainable": True, "pooling": "first"}, "user_model": LLAMA},
    "hllm-frozen-ids": {"items": {"encoder": BERT, "item_ids": True}, "user_model": LLAMA},
    "hllm-item-token": {"items": {"encoder": LLAMA, "trainable": True, "pooling": "item_token"},
                        "user_model": {**LLAMA, "hidden_size": 8, "num_heads": 1}},
    "hllm-shared": {"items": {"trainable": True, "pooling": "last"}, "user_model": LLAMA, "shared": True},
}


def dim_of(name: str) -> int:
    settings = TINY[name]
    return settings["dim"] if "dim" in settings else settings["user_model"]["hidden_size"]


def make(name: str, **overrides):
    torch.manual_seed(0)
    model_name = name.split("-")[0]
    # Only the settings this model has (HLLM's dropout lives inside its language models).
    fields = {f.name for f in dataclasses.fields(MODELS[model_name][0])}
    settings = {**TINY[name], **{k: v for k, v in overrides.items() if k in fields}}
    model = build_model(model_name, settings, INPUTS)
    return model.eval()


def batch(lengths: list[int], length: int | None = None, seed: int = 1):
    """Right-padded random items and increasing timestamps for sequences of ``lengths``."""
    gen = torch.Generator().manual_seed(seed)
    length = length or max(lengths)
    items = torch.zeros(len(lengths), length, dtype=torch.long)
    stamps = torch.zeros(len(lengths), length, dtype=torch.long)
    for row, n in enumerate(lengths):
        items[row, :n] = torch.randint(1, N_ITEMS + 1, (n,), generator=gen)
        gaps = torch.randint(1, 10**6, (n,), generator=gen)
        stamps[row, :n] = 10**9 + torch.cumsum(gaps, 0)
    return items, stamps, torch.tensor(lengths)


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_and_item_table_shapes(name):
    model = make(name)
    items, stamps, _ = batch([5, 9, 3])
    dim = dim_of(name)
    assert model(items, stamps).shape == (3, 9, dim)
    assert model.embed_items(torch.arange(N_ITEMS + 1)).shape == (N_ITEMS + 1, dim)
    assert model.embed_items(torch.ones(2, 3, dtype=torch.long)).shape == (2, 3, dim)


@pytest.mark.parametrize("name", sorted(TINY))
def test_causal_in_items_and_timestamps(name):
    model = make(name)
    items, stamps, _ = batch([MAX_LEN, MAX_LEN])
    base = model(items, stamps)
    for t in range(MAX_LEN):
        changed_items = items.clone()
        changed_items[:, t] = changed_items[:, t] % N_ITEMS + 1
        changed_stamps = stamps.clone()
        changed_stamps[:, t:] += 7 * 86400 * (t + 1)
        for args in ((changed_items, stamps), (items, changed_stamps)):
            out = model(*args)
            torch.testing.assert_close(out[:, :t], base[:, :t], atol=1e-6, rtol=0)
        # The changed position itself must see the change (guards against a vacuous test).
        assert not torch.allclose(model(changed_items, stamps)[:, t], base[:, t])


@pytest.mark.parametrize("name", sorted(TINY))
def test_padding_invariance(name):
    model = make(name)
    items, stamps, lengths = batch([7, 4])
    alone = model(items, stamps)
    longer_items, longer_stamps, _ = batch([7, 4], length=MAX_LEN)
    assert torch.equal(longer_items[:, :7], items)
    padded = model(longer_items, longer_stamps)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(padded[row, :n], alone[row, :n], atol=1e-6, rtol=1e-5)
    # A sequence gives the same outputs whatever its batch companions are.
    solo = model(items[1:, :4], stamps[1:, :4])
    torch.testing.assert_close(solo[0], alone[1, :4], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(TINY))
def test_empty_sequence_gives_finite_gradients(name):
    model = make(name).train()
    items, stamps, _ = batch([5, 1], length=6)
    items[1] = 0
    stamps[1] = 0
    out = model(items, stamps)
    out[0, :5].sum().backward()
    for param in model.parameters():
        assert param.grad is None or torch.isfinite(param.grad).all()


@pytest.mark.parametrize("name", sorted(TINY))
def test_gradients_reach_every_parameter(name):
    model = make(name, dropout=0.1).train()
    items, stamps, lengths = batch([MAX_LEN, 6, 9])
    hidden = model(items, stamps)
    logits = hidden @ model.embed_items(torch.arange(N_ITEMS + 1)).T
    targets = torch.roll(items, -1, dims=1)
    valid = torch.arange(items.shape[1])[None, :] < (lengths[:, None] - 1)
    loss = torch.nn.functional.cross_entropy(logits[valid], targets[valid])
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for pname, param in trainable:
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(TINY))
def test_user_embeddings_take_last_real_position(name):
    model = make(name)
    items, stamps, lengths = batch([5, 9, 1])
    hidden = model(items, stamps)
    users = model.user_embeddings(items, stamps, lengths)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(users[row, 0], hidden[row, n - 1])
    assert users.shape == (3, 1, dim_of(name))


def test_attention_mask_is_causal_and_skips_padding_keys():
    from hymirec.models.layers import attention_mask

    mask = attention_mask(torch.tensor([[4, 2, 0, 0], [0, 0, 0, 0]]))
    assert mask.shape == (2, 1, 4, 4)
    assert mask[0, 0].tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],  # a padded query reads the real keys and itself only
        [True, True, False, True],
    ]
    # An all-padding row still has one readable key per query, so a softmax stays finite.
    assert torch.equal(mask[1, 0], torch.eye(4, dtype=torch.bool))


def test_causal_attention_mask_is_dropped_only_without_padding_before_a_real_item():
    from hymirec.models.layers import attention_mask, causal_attention_mask

    for right_padded in ([[4, 2, 0, 0], [0, 0, 0, 0]], [[4, 2, 1, 3], [5, 1, 2, 0]], [[1, 2, 3, 4]]):
        assert causal_attention_mask(torch.tensor(right_padded)) is None
    for gap in ([[0, 0, 4, 2]], [[4, 2, 1, 3], [5, 0, 2, 0]], [[1, 2, 3, 4], [0, 0, 0, 1]]):
        items = torch.tensor(gap)
        assert torch.equal(causal_attention_mask(items), attention_mask(items))


def _sdpa_calls(monkeypatch):
    """Record the mask and ``is_causal`` of every attention call SASRec's blocks make."""
    import hymirec.models.sasrec as sasrec

    calls, sdpa = [], sasrec.F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append((kwargs.get("attn_mask"), kwargs.get("is_causal", False)))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(sasrec.F, "scaled_dot_product_attention", spy)
    return calls


@pytest.mark.parametrize("name", ["sasrec", "sasrec-pre", "sasrec-post", "morec"])
def test_fast_causal_path_is_taken_only_for_right_padded_rows(name, monkeypatch):
    model = make(name)
    calls = _sdpa_calls(monkeypatch)
    for lengths in ([MAX_LEN, MAX_LEN], [MAX_LEN, 5, 1]):
        calls.clear()
        model(*batch(lengths)[:2])
        assert calls and all(mask is None and causal for mask, causal in calls)
    items, stamps, _ = batch([MAX_LEN, 5])
    calls.clear()
    model(items.roll(3, dims=1), stamps.roll(3, dims=1))  # row 1 now has padding before real items
    assert calls and all(mask is not None and not causal for mask, causal in calls)


@pytest.mark.parametrize("name", ["sasrec", "sasrec-pre", "sasrec-post", "morec"])
@pytest.mark.parametrize("train", [False, True])
def test_fast_causal_path_matches_the_masked_path(name, train, monkeypatch):
    """``is_causal`` without a mask gives the masked path's outputs at every real position (all
    positions without padding) and the same gradients from a loss on real positions."""
    import hymirec.models.sasrec as sasrec
    from hymirec.models.layers import attention_mask

    model = make(name, dropout=0.0, attention_dropout=0.0).train(train)
    for lengths in ([MAX_LEN, MAX_LEN], [MAX_LEN, 7, 1, 0]):
        items, stamps, _ = batch(lengths)
        real = items != 0
        results = []
        for masked in (False, True):
            if masked:
                monkeypatch.setattr(sasrec, "causal_attention_mask", attention_mask)
            model.zero_grad()
            hidden = model(items, stamps)
            hidden[real].square().sum().backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            results.append((hidden.detach(), grads))
            monkeypatch.undo()
        (fast, fast_grads), (slow, slow_grads) = results
        if real.all():
            torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(fast[real], slow[real], atol=1e-6, rtol=1e-6)
        assert fast_grads.keys() == slow_grads.keys() and fast_grads
        for pname in fast_grads:
            torch.testing.assert_close(fast_grads[pname], slow_grads[pname], atol=1e-5, rtol=1e-5)


def test_block_without_mask_matches_the_mask_of_right_padded_rows():
    """The lightweight recommender's blocks: real positions agree, so ``CoarseQueries`` (which
    reads positions before a cut, cut <= length) sees the same hidden states either way."""
    from hymirec.models.layers import attention_mask
    from hymirec.models.sasrec import Block

    torch.manual_seed(0)
    block = Block(SASRecConfig(dim=8, num_heads=2, ffn_dim=16)).eval()
    items, _, _ = batch([MAX_LEN, 6, 1])
    x = torch.randn(*items.shape, 8) * (items != 0).unsqueeze(-1)
    real = items != 0
    torch.testing.assert_close(block(x, None)[real], block(x, attention_mask(items))[real], atol=1e-6, rtol=1e-6)


def test_sequences_longer_than_max_len_are_refused():
    model = make("sasrec")
    items = torch.ones(1, MAX_LEN + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="max_len"):
        model(items, items)


def test_hstu_uses_timestamps():
    model = make("hstu")
    items, stamps, _ = batch([MAX_LEN])
    base = model(items, stamps)
    # Stretch every gap: only the relative time bias can see this.
    stretched = stamps[0, 0] + (stamps - stamps[0, 0]) * 50
    assert not torch.allclose(model(items, stretched), base, atol=1e-5)
    # A uniform shift leaves all gaps, and so the outputs, unchanged.
    torch.testing.assert_close(model(items, stamps + 12345), base)


def test_hstu_relative_bias_is_applied():
    model = make("hstu")
    items, stamps, _ = batch([MAX_LEN, 8])
    base = model(items, stamps)
    for param_name in ("position", "time"):
        zeroed = make("hstu")
        with torch.no_grad():
            for layer in zeroed.layers:
                getattr(layer.rab, param_name).zero_()
        assert not torch.allclose(zeroed(items, stamps), base, atol=1e-5), param_name


def test_hstu_without_relative_bias_ignores_timestamps():
    model = make("hstu", relative_attention_bias=False)
    assert all(layer.rab is None for layer in model.layers)
    items, stamps, _ = batch([MAX_LEN])
    torch.testing.assert_close(model(items, stamps * 3), model(items, stamps))


def test_time_buckets_are_logarithmic_and_clipped():
    from hymirec.models.hstu import time_buckets

    stamps = torch.tensor([[0, 1, 2, 100, 10**6, 10**18]])
    buckets = time_buckets(stamps, num_buckets=100)
    assert buckets[0, 0].tolist() == [0, 0, 2, 15, 45, 100]
    assert torch.equal(buckets, buckets.transpose(1, 2))


def test_build_model_rejects_unknown_names_and_keys():
    with pytest.raises(ValueError, match=r"unknown model 'bert4rec'.*gru4rec.*hstu.*mostpop.*sasrec"):
        build_model("bert4rec", {}, INPUTS)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dimm'\].*allowed keys"):
        build_model("sasrec", {"dimm": 8}, INPUTS)
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        build_model("sasrec", {"dim": 10, "num_heads": 3}, INPUTS)
    with pytest.raises(ConfigError, match="dropout"):
        build_model("gru4rec", {"dropout": 1.5}, INPUTS)
    with pytest.raises(ConfigError, match="expected an integer"):
        build_model("hstu", {"dim": "big"}, INPUTS)
    with pytest.raises(ConfigError, match="takes a HSTUConfig"):
        build_model("hstu", SASRecConfig(), INPUTS)


def test_build_model_accepts_defaults_and_dataclasses():
    for name, (config_cls, model_cls) in MODELS.items():
        if name not in TINY:
            continue
        assert isinstance(build_model(name, {}, INPUTS), model_cls)
        model = build_model(name, config_cls(), INPUTS)
        assert model.config == config_cls()
    assert build_model("hstu", HSTUConfig(num_heads=2), INPUTS).config.num_heads == 2


def test_gru4rec_has_recboles_bias_free_gru_unless_asked():
    assert not any("bias" in n for n, _ in make("gru4rec").gru.named_parameters())
    assert any("bias" in n for n, _ in make("gru4rec-bias").gru.named_parameters())
    assert torch.count_nonzero(make("gru4rec").items.weight[0]) == 0


def test_sasrec_block_arrangements_are_different_functions():
    query, pre = make("sasrec"), make("sasrec-pre")
    pre.load_state_dict(query.state_dict())  # same weights, only the arrangement differs
    items, stamps, _ = batch([5, 3])
    assert not torch.allclose(query(items, stamps), pre(items, stamps))


def test_post_ln_sasrec_normalises_its_input_and_every_block_output():
    """RecBole's arrangement: LN(items + positions), LN after each residual, no final LN; the
    hidden states are LayerNorm outputs (mean 0, variance 1 with the initial affine)."""
    model = make("sasrec-post")
    assert isinstance(model.ln_final, torch.nn.Identity)
    assert isinstance(model.blocks[0].ffn[1], torch.nn.GELU)
    items, stamps, _ = batch([5, 3])
    real = items != 0
    for states in (model.embed_inputs(items), model(items, stamps)):
        states = states[real]
        assert torch.allclose(states.mean(-1), torch.zeros(len(states)), atol=1e-5)
        assert torch.allclose(states.var(-1, unbiased=False), torch.ones(len(states)), atol=1e-3)
    assert torch.count_nonzero(model.embed_inputs(items)[~real]) == 0


@pytest.mark.parametrize("name", ["hllm", "morec-trained-ids"])
def test_a_training_step_encodes_each_distinct_item_once(name):
    from hymirec.training.losses import build_loss

    model = make(name).train()
    encoded = []
    model.items.encoder.model.register_forward_hook(
        lambda module, args, kwargs, out: encoded.append(
            (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]).shape[0]),
        with_kwargs=True)
    calls = []
    real_encode = model.items.encoder.forward
    model.items.encoder.forward = lambda ids: calls.append(ids.clone()) or real_encode(ids)
    items, stamps, lengths = batch([MAX_LEN, 6, 9])
    targets = torch.roll(items, -1, dims=1) * (torch.arange(MAX_LEN)[None, :] < (lengths[:, None] - 1))
    loss = build_loss({"name": "sampled_softmax", "num_negatives": 8}, N_ITEMS)
    value, n = model.training_loss(items, stamps, targets, loss, torch.Generator().manual_seed(0))
    value.backward()
    asked = torch.cat([c.reshape(-1) for c in calls])
    assert len(asked) == len(torch.unique(asked))  # no item encoded twice in the step
    assert sum(encoded) == int((asked != 0).sum())  # padding never reaches the backbone
    # Outside a training step nothing is remembered between calls.
    model.eval()
    first = model.embed_items(torch.tensor([1, 2]))
    assert model.items._memo is None and torch.equal(first, model.embed_items(torch.tensor([1, 2])))

"""HyMiRec and PatchRec: shapes, no leak from after the cut, padding, gradients, the ablation
switches (each reaches the model and changes nothing else), the compressed history, the cut-point
helpers, and errors for bad settings."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from hymirec.codebook import CodebookConfig, fit
from hymirec.config import ConfigError
from hymirec.data.batching import pad_right, training_windows
from hymirec.data.split import ChronologicalSplit
from hymirec.models import ModelInputs, build_model
from hymirec.models.hymirec.cuts import gather_positions, sample_windows, tile_windows, window_targets
from hymirec.models.patchrec import patch_bounds
from hymirec.training.losses import build_loss
from helpers import make_dataset

os.environ["HF_HUB_OFFLINE"] = "1"
N_ITEMS = 30
MAX_LEN = 16
INPUTS = ModelInputs(N_ITEMS, MAX_LEN, make_dataset([(1, i, i) for i in range(1, N_ITEMS + 1)]), [])
BERT = {"source": "random-bert", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}
LLAMA = {"source": "random-llama", "hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32}
HYMIREC = {
    "items": {"encoder": BERT, "item_ids": True},
    "history": {"codebook": "cosine", "layers": 2, "k": 4},
    "lightweight": {"dim": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 16, "coarse_queries": 2, "dropout": 0.0},
    "llm": {"backbone": LLAMA, "recent": 4, "interests": 3},
}
PATCHREC = {"items": {"encoder": BERT}, "llm": {"backbone": LLAMA, "recent": 3}, "patch_size": 2, "patches": 3}


def make(name: str = "hymirec", **changes):
    """A tiny model; ``changes`` maps a section to settings merged into it (or a top-level key)."""
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (HYMIREC if name == "hymirec" else PATCHREC).items()}
    for key, value in changes.items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    torch.manual_seed(0)
    return build_model(name, settings, INPUTS).eval()


class SpyLoss(torch.nn.Module):
    """A loss that records the targets (or positives) it is given and returns 0."""

    def __init__(self, window: int, multi_interest: bool, seen: list) -> None:
        super().__init__()
        self.window, self.multi_interest, self.seen = window, multi_interest, seen

    def forward(self, queries, targets, embed_items, generator):
        self.seen.append(targets)
        return queries.sum() * 0


def batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    items = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        items[row, :n] = torch.randint(1, N_ITEMS + 1, (n,), generator=gen)
    return items, torch.tensor(lengths)


@pytest.mark.parametrize("name,interests", [("hymirec", 3), ("patchrec", 1)])
def test_user_embeddings_have_one_vector_per_interest(name, interests):
    items, lengths = batch([5, 16, 1])
    users = make(name).user_embeddings(items, items, lengths)
    assert users.shape == (3, interests, 16)
    assert torch.isfinite(users).all()


@pytest.mark.parametrize("name", ["hymirec", "patchrec"])
def test_interests_after_an_item_never_read_later_items(name):
    model = make(name)
    recent = model.recent
    items, _ = batch([16, 12])
    starts = torch.tensor([[0, 5, 12], [1, 6, 9]])
    before = model.window_states(items, starts).interests
    assert before.shape[:3] == (2, 3, recent)
    for row in range(2):
        for j, start in enumerate(starts[row].tolist()):
            for slot in range(recent):
                cut = start + slot + 1
                changed = items.clone()
                changed[row, cut:] = torch.randint(1, N_ITEMS + 1, (items.shape[1] - cut,))
                after = model.window_states(changed, starts).interests
                torch.testing.assert_close(after[row, j, slot], before[row, j, slot])


@pytest.mark.parametrize("name", ["hymirec", "patchrec"])
def test_a_window_state_equals_the_state_read_alone(name):
    """The n user states of a window share one LLM pass; each must equal the user vector of the
    history that ends at its item, read on its own."""
    model = make(name)
    items, _ = batch([14])
    n = model.recent
    first = model.window_states(items, torch.tensor([[0]])).interests[0, 0]  # histories shorter than n: all start at 0
    for slot in range(n):
        alone = model.user_embeddings(items[:, : slot + 1], items, torch.tensor([slot + 1]))
        torch.testing.assert_close(first[slot], alone[0])
    later = model.window_states(items, torch.tensor([[6]])).interests[0, 0, -1]  # a full window with a long history
    torch.testing.assert_close(later, model.user_embeddings(items[:, : 6 + n], items, torch.tensor([6 + n]))[0])


@pytest.mark.parametrize("name,changes", [
    ("hymirec", {"llm": {"interests": 2, "query_offset": False}}),
    ("hymirec", {"llm": {"interests": 2, "query_offset": True}}),
    ("hymirec", {"llm": {"interests": 2, "query_offset": True, "indicator": False}}),
    ("hymirec", {"llm": {"interests": 1, "readout": "item"}}),
    ("hymirec", {"lightweight": {"item_ids": "shared"}}),
    ("hymirec", {"llm": {"interests": 1, "readout": "item"}, "lightweight": {"enabled": False}}),
    ("patchrec", {}),
    ("patchrec", {"llm": {"query_offset": True}}),
])
def test_inference_reads_only_the_last_state_and_gets_the_training_layouts_answer(name, changes):
    """``user_embeddings`` reads ``[prefix ; I ; x_1 .. x_n ; Q]`` (``last_only``); it must equal
    the last state of the dense training layout, for users longer and shorter than n, batched
    together (their queries sit at different positions) or alone."""
    model = make(name, **changes)
    items, lengths = batch([16, 9, 4, 1, 2])
    assert model.recent in (3, 4)
    starts = (lengths - model.recent).clamp(min=0)
    dense = model.window_states(items, starts[:, None]).interests[:, 0]
    expected = dense[torch.arange(len(lengths)), lengths - starts - 1]
    assert model.window_states(items, starts[:, None], last_only=True).interests.shape == (5, 1, 1, *expected.shape[1:])
    torch.testing.assert_close(model.user_embeddings(items, items, lengths), expected, atol=1e-5, rtol=1e-5)
    for row, length in enumerate(lengths.tolist()):
        alone = model.user_embeddings(items[row:row + 1, :length], items, lengths[row:row + 1])
        torch.testing.assert_close(alone[0], expected[row], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["hymirec", "patchrec"])
def test_right_padding_changes_nothing(name):
    model = make(name)
    items, lengths = batch([7, 4])
    padded = torch.cat([items, torch.zeros(2, 5, dtype=torch.long)], 1)
    torch.testing.assert_close(model.user_embeddings(padded, padded, lengths),
                               model.user_embeddings(items, items, lengths))


@pytest.mark.parametrize("name,loss", [("hymirec", {"name": "dmil", "window": 3}),
                                       ("patchrec", {"name": "full_softmax"})])
def test_gradients_reach_every_trainable_parameter(name, loss):
    model = make(name).train()
    items, _ = batch([16, 10, 6, 16], seed=3)
    targets = torch.roll(items, -1, 1) * (items != 0)
    value, count = model.training_loss(items, items, targets, build_loss(loss, N_ITEMS), torch.Generator().manual_seed(0))
    value.backward()
    assert count > 0 and torch.isfinite(value)
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    # DMIL leaves an interest untrained only when a window has fewer distinct targets than s.
    assert dead == [] or (name == "hymirec" and dead == ["llm.queries"]), dead


def test_next_item_loss_needs_a_single_interest():
    model = make().train()
    items, _ = batch([8, 8])
    with pytest.raises(ConfigError, match="llm.interests: 1"):
        model.training_loss(items, items, items, build_loss({"name": "full_softmax"}, N_ITEMS), None)
    single = make(llm={"interests": 1}).train()
    value, _ = single.training_loss(items, items, torch.roll(items, -1, 1), build_loss({"name": "full_softmax"}, N_ITEMS),
                                    torch.Generator().manual_seed(0))
    assert torch.isfinite(value)


def names(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_each_ablation_switch_reaches_the_model_and_changes_nothing_else():
    full = names(make())
    without_light = names(make(lightweight={"enabled": False}))
    assert not any(n.startswith(("lightweight.", "coarse_proj.")) for n in without_light)
    assert without_light == {n for n in full if not n.startswith(("lightweight.", "coarse_proj."))}
    assert names(make(llm={"indicator": False})) == full - {"llm.indicator"}
    assert names(make(items={"item_ids": False})) == full - {"items.ids.weight"}
    assert make().history.raw is None
    raw = make(history={"codebook": "none"})
    assert names(raw) == full and raw.history.raw is not None and raw.history_bytes_per_item == 4 * 16
    euclid = make(history={"codebook": "euclidean"})
    assert names(euclid) == full and euclid.history_bytes_per_item == 2  # two uint8 codes, no scales
    assert make().history_bytes_per_item == 2 + 2 * 2  # + two float16 scales
    assert make(llm={"interests": 1}).llm.queries.shape == (1, 16)
    assert make(lightweight={"coarse_queries": 5}).lightweight.readout.queries.shape == (5, 8)


def test_the_history_is_decoded_from_codes_as_the_codebook_decodes():
    model = make()
    vectors = model.items.text[1:].numpy()
    book = fit(vectors, CodebookConfig(variant="cosine", layers=2, k=4, seed=0))
    expected = book.decode(*book.encode(vectors))
    decoded = model.history(torch.arange(1, N_ITEMS + 1))
    np.testing.assert_allclose(decoded.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not model.history(torch.tensor([0])).any()
    raw = make(history={"codebook": "none"})
    torch.testing.assert_close(raw.history(torch.arange(N_ITEMS + 1)), raw.items.text)


def test_a_saved_codebook_is_read_and_checked(tmp_path):
    model = make()
    vectors = model.items.text[1:].numpy()
    fit(vectors, CodebookConfig(variant="cosine", layers=2, k=4, seed=0)).save(tmp_path / "book")
    loaded = make(history={"codebook_path": str(tmp_path / "book")})
    torch.testing.assert_close(loaded.history(torch.arange(N_ITEMS + 1)), model.history(torch.arange(N_ITEMS + 1)))
    fit(np.random.default_rng(0).normal(size=(40, 7)), CodebookConfig(layers=1, k=4)).save(tmp_path / "other")
    with pytest.raises(ValueError, match="dimension 7, the item embeddings have 16"):
        make(history={"codebook_path": str(tmp_path / "other")})
    with pytest.raises(ValueError, match="cosine codebook, history.codebook says euclidean"):
        make(history={"codebook_path": str(tmp_path / "book"), "codebook": "euclidean"})


@pytest.mark.parametrize("section,settings,message", [
    ("llm", {"interests": 0}, "llm.interests"),
    ("llm", {"recent": 0}, "llm.recent"),
    ("lightweight", {"coarse_queries": 0}, "coarse_queries"),
    ("history", {"codebook": "pq"}, "codebook"),
    ("history", {"k": 1}, "k must be"),
    ("items", {"trainable": True}, "items.trainable"),
    ("train_windows", 0, "train_windows"),
    ("windows", "random", "windows: 'random' is not one of"),
    ("llm", {"readout": "item"}, "llm.readout: item reads one interest"),
    ("llm", {"next_item_weight": -0.1}, "llm.next_item_weight"),
    ("lightweight", {"next_item_weight": -1.0}, "lightweight.next_item_weight"),
    ("lightweight", {"item_ids": "both"}, "item_ids: 'both' is not one of"),
    ("llm", {"query_scale": 0.0}, "llm.query_scale"),
    ("llm", {"dropout": 1.0}, "llm.dropout"),
    ("items", {"id_dropout": -0.5}, "items.id_dropout"),
    ("llm", {"queries": 2}, "queries"),
    ("llm", {"context": 4}, "llm.context"),
    ("llm", {"context": -1}, "llm.context"),
])
def test_bad_settings_are_errors_naming_the_setting(section, settings, message):
    with pytest.raises(ValueError, match=message):
        make(**{section: settings})


def test_window_of_zero_is_refused_by_the_loss():
    with pytest.raises(ConfigError, match="window"):
        build_loss({"name": "dmil", "window": 0}, N_ITEMS)


def test_cut_helpers_known_answers():
    items = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]])
    targets = torch.tensor([[6, 7, 8, 4, 0], [10, 11, 0, 0, 0]])
    starts = torch.tensor([[0, 3], [1, 0]])
    assert gather_positions(items, starts, 2).tolist() == [[[5, 6], [8, 0]], [[10, 0], [9, 10]]]
    assert window_targets(targets, starts, 2, 3).tolist() == [
        [[[6, 7, 8], [7, 8, 4]], [[4, 0, 0], [0, 0, 0]]],
        [[[11, 0, 0], [0, 0, 0]], [[10, 11, 0], [11, 0, 0]]],
    ]
    drawn = sample_windows(torch.tensor([4, 1, 7]), 300, 3, torch.Generator().manual_seed(0))
    # Window ends are uniform over 1..length; a window is the 3 items up to its end.
    assert set(drawn[0].tolist()) == {0, 1} and set(drawn[1].tolist()) == {0}
    assert set(drawn[2].tolist()) == {0, 1, 2, 3, 4}


def test_patches_grow_older_and_cover_the_history_once():
    start, stop = patch_bounds(torch.tensor([0, 3, 100]), 2, 2, 3)
    assert start.tolist() == [[0, 0, 0], [0, 0, 1], [0, 94, 98]]
    assert stop.tolist() == [[0, 0, 0], [0, 1, 3], [94, 98, 100]]


def test_window_targets_never_come_from_validation_or_test_positions():
    # Items 31..36 appear only as each user's last two items (the validation and test targets).
    rows = []
    for user in range(1, 4):
        seq = [((user * 7 + i) % 30) + 1 for i in range(12)] + [30 + 2 * user - 1, 30 + 2 * user]
        rows += [(user, item, t) for t, item in enumerate(seq)]
    split = ChronologicalSplit(make_dataset(rows, n_items=36))
    inputs = ModelInputs(36, MAX_LEN, split.dataset, split.train_sequences())
    torch.manual_seed(0)
    model = build_model("hymirec", {**HYMIREC, "windows": "sample", "train_windows": 12}, inputs).train()
    seen = []
    windows = training_windows(split.train_sequences(), MAX_LEN)
    items, _, targets = (pad_right([w[k] for w in windows]) for k in range(3))
    for seed in range(5):
        model.training_loss(items, items, targets, SpyLoss(8, True, seen), torch.Generator().manual_seed(seed))
    drawn = torch.cat(seen).unique().tolist()
    assert not set(drawn) & set(range(31, 37))
    assert set(drawn) - {0} <= set(range(1, 31))


def test_dmil_on_a_one_vector_model_is_a_clear_error():
    sasrec = build_model("sasrec", {"dim": 8, "num_heads": 2, "ffn_dim": 8}, INPUTS)
    items, _ = batch([5])
    with pytest.raises(ConfigError, match="several interests per user state; SASRec has one vector per position"):
        sasrec.training_loss(items, items, items, build_loss({"name": "dmil"}, N_ITEMS), None)


def test_tiling_trains_every_position_once_and_the_last_one_always():
    lengths = torch.tensor([1, 3, 4, 5, 9, 16, 33, 64])
    size = 4
    phases = set()
    for seed in range(40):
        starts, spans = tile_windows(lengths, size, torch.Generator().manual_seed(seed))
        for row, length in enumerate(lengths.tolist()):
            covered = torch.zeros(length, dtype=torch.long)
            for start, span in zip(starts[row].tolist(), spans[row].tolist()):
                assert 0 <= span <= size
                covered[start:start + span] += 1
                if span == 0:
                    assert start == length  # an unused window reads only padding
            assert covered.tolist() == [1] * length
            # The last n items are one window: the state evaluation asks for is trained every epoch.
            assert (max(length - size, 0), min(length, size)) in zip(starts[row].tolist(), spans[row].tolist())
            if length > size + 1:
                inner = [span for span in spans[row].tolist()[1:] if 0 < span < size]
                phases.update(inner)
    assert phases == {1, 2, 3}  # the boundaries move between epochs


def test_tiling_from_a_begin_leaves_the_context_before_it_out():
    lengths, begins = torch.tensor([9, 16, 33, 5]), torch.tensor([6, 0, 20, 5])
    for seed in range(10):
        starts, spans = tile_windows(lengths, 4, torch.Generator().manual_seed(seed), begins)
        for row, (length, begin) in enumerate(zip(lengths.tolist(), begins.tolist())):
            covered = torch.zeros(length, dtype=torch.long)
            for start, span in zip(starts[row].tolist(), spans[row].tolist()):
                covered[start:start + span] += 1
            assert covered.tolist() == [0] * begin + [1] * (length - begin)


WITHOUT_LONG_HISTORY = {"lightweight": {"enabled": False}, "llm": {"indicator": False}}


@pytest.mark.parametrize("name,context,changes", [("hymirec", 0, {}), ("patchrec", 0, {}), ("hymirec", 2, {}),
                                                  ("patchrec", 2, {}), ("hymirec", 2, WITHOUT_LONG_HISTORY)])
def test_a_tiled_training_step_trains_each_cut_with_a_next_item_exactly_once(name, context, changes):
    llm = {**changes.get("llm", {}), "context": context, **({"interests": 1} if name == "hymirec" else {})}
    model = make(name, **{**changes, "llm": llm}).train()
    items, _ = batch([16, 11, 3, 1], seed=4)
    targets = torch.roll(items, -1, 1) * (items != 0)
    targets[:, -1] = 0
    seen = []
    for seed in range(3):
        seen.clear()
        _, count = model.training_loss(items, items, targets, SpyLoss(1, False, seen), torch.Generator().manual_seed(seed))
        assert count == int((targets > 0).sum())
        assert sorted(seen[0].tolist()) == sorted(targets[targets > 0].tolist())
    # A row's leading positions without a target (data.window_context) are long history, not states.
    context = targets.clone()
    context[0, :9] = 0
    seen.clear()
    _, count = model.training_loss(items, items, context, SpyLoss(1, False, seen), torch.Generator().manual_seed(0))
    assert count == int((context > 0).sum())
    assert sorted(seen[0].tolist()) == sorted(context[context > 0].tolist())


class QuerySpy(SpyLoss):
    """A next-item spy that also records the user states it is given."""

    def forward(self, queries, targets, embed_items, generator):
        self.seen.append((queries.detach(), targets))
        return queries.sum() * 0


@pytest.mark.parametrize("windows", ["tile", "sample"])
def test_with_a_context_of_n_minus_one_each_trained_state_is_the_state_evaluation_reads(windows):
    # llm.context = n - 1: every trained state reads the last n items up to it (fewer only at a
    # row's start) and the long history before them, exactly what evaluation reads for that prefix.
    model = make(llm={"context": 3, "interests": 1}, windows=windows, train_windows=6)
    items, lengths = batch([16, 11, 3], seed=5)
    # Each cut's target names it: 32 * row + the number of items up to it.
    cut_ids = 32 * torch.arange(3)[:, None] + torch.arange(1, items.shape[1] + 1)
    targets = cut_ids * (torch.roll(items, -1, 1) != 0) * (items != 0)
    targets[:, -1] = 0
    seen = []
    model.training_loss(items, items, targets, QuerySpy(1, False, seen), torch.Generator().manual_seed(0))
    (states, cuts), = seen
    if windows == "tile":
        assert sorted(cuts.tolist()) == sorted(targets[targets > 0].tolist())
    for state, cut in zip(states, cuts.tolist()):
        row, prefix = divmod(cut, 32)
        expected = model.user_embeddings(items[row:row + 1, :prefix], items[row:row + 1, :prefix],
                                         torch.tensor([prefix]))[0, 0]
        assert torch.allclose(state, expected, atol=1e-5), (row, prefix)


def test_a_windows_coarse_tokens_never_read_its_own_items_or_later_ones():
    model = make()
    items, _ = batch([16, 12], seed=5)
    starts = torch.tensor([[0, 5, 12], [1, 6, 9]])
    _, before = model.lightweight(items, model.history(items), starts)
    for row in range(2):
        for j, start in enumerate(starts[row].tolist()):
            changed = items.clone()
            changed[row, start:] = torch.randint(1, N_ITEMS + 1, (items.shape[1] - start,))
            changed[row, items[row] == 0] = 0
            _, after = model.lightweight(changed, model.history(changed), starts)
            if start > 0:
                torch.testing.assert_close(after[row, j], before[row, j])


def test_auxiliary_losses_add_to_the_loss_and_weight_zero_is_exactly_without_them():
    items, _ = batch([16, 10, 6], seed=3)
    targets = torch.roll(items, -1, 1) * (items != 0)
    loss = build_loss({"name": "dmil", "window": 2}, N_ITEMS)
    plain = make().train()
    # The same parameters as ``plain`` plus the history head (built last, after the rest).
    aux = make(lightweight={"next_item_weight": 0.5}, llm={"next_item_weight": 0.5}).train()
    base, count = plain.training_loss(items, items, targets, loss, torch.Generator().manual_seed(0))
    more, count_aux = aux.training_loss(items, items, targets, loss, torch.Generator().manual_seed(0))
    assert count == count_aux and more > base
    aux.config.llm.next_item_weight = 0.0
    aux.config.lightweight.next_item_weight = 0.0
    same, _ = aux.training_loss(items, items, targets, loss, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, base, rtol=0, atol=0)


@pytest.mark.parametrize("item_ids", ["own", "shared"])
def test_item_ids_in_the_lightweight_input_get_gradient(item_ids):
    model = make(lightweight={"item_ids": item_ids, "next_item_weight": 1.0}).train()
    items, _ = batch([16, 10], seed=3)
    value, _ = model.training_loss(items, items, torch.roll(items, -1, 1) * (items != 0),
                                   build_loss({"name": "dmil", "window": 2}, N_ITEMS), torch.Generator().manual_seed(0))
    value.backward()
    grads = model.lightweight.ids.weight.grad if item_ids == "own" else model.shared_ids.weight.grad
    assert grads is not None and grads.any()
    assert model.history_head.weight.grad.any()


def test_queries_start_orthogonal_at_the_set_scale():
    queries = make(llm={"interests": 3, "query_scale": 0.5, "query_init": "orthogonal"}).llm.queries.detach()
    gram = queries @ queries.T
    torch.testing.assert_close(gram, torch.eye(3) * 0.25 * 16, atol=1e-5, rtol=1e-5)
    normal = make(llm={"interests": 3, "query_init": "normal", "query_scale": 0.5}).llm.queries.detach()
    assert (normal @ normal.T - torch.diag(torch.diag(normal @ normal.T))).abs().max() > 1e-3


def test_the_head_can_start_as_the_identity():
    """At the first step an identity head leaves the item readout as the LM's last hidden state
    (HLLM's user vector), where the default random head maps it elsewhere."""
    settings = {"readout": "item", "interests": 1}
    model = make(lightweight={"enabled": False}, llm={**settings, "indicator": False, "head_init": "identity"})
    items, _ = batch([16, 10], seed=4)
    lengths = (items != 0).sum(1)
    recent = torch.stack([row[n - 4:n] for row, n in zip(items, lengths)])  # the last n = 4 items
    expected = model.llm.model(inputs_embeds=model.embed_items(recent)).last_hidden_state[:, -1]
    torch.testing.assert_close(model.user_embeddings(items, items, lengths)[:, 0], expected, rtol=1e-4, atol=1e-5)
    random = make(lightweight={"enabled": False}, llm={**settings, "indicator": False})
    assert not torch.allclose(random.user_embeddings(items, items, lengths)[:, 0], expected, atol=1e-3)
    with pytest.raises(ConfigError, match="head_init"):
        make(llm={"head_init": "zeros"})


@pytest.mark.parametrize("name", ["hymirec", "patchrec"])
def test_windows_with_no_item_are_skipped_and_change_nothing(name):
    model = make(name)
    items, _ = batch([16, 9], seed=6)
    with_dead = model.window_states(items, torch.tensor([[2, 16], [5, 9]]))
    alone = model.window_states(items, torch.tensor([[2], [5]]))
    torch.testing.assert_close(with_dead.interests[:, :1], alone.interests)
    assert not with_dead.interests[:, 1].any() and not with_dead.items[:, 1].any()

import math

import pytest
import torch
import torch.nn.functional as F

from hymirec.config import ConfigError
from hymirec.models.layers import lookup
from hymirec.training.losses import (
    FULL_SOFTMAX_MAX_ITEMS,
    LOSSES,
    FullSoftmaxLoss,
    SampledSoftmaxLoss,
    build_loss,
    resolve_loss_name,
)


def rows_of(table):
    """An ``embed_items`` that looks ids up in a fixed table."""
    return lambda ids: lookup(table, ids)


def _fixed_negatives(loss, negatives):
    """Make ``loss`` draw exactly ``negatives`` (so the arithmetic, not the sampler, is tested)."""
    loss.sample = lambda n_positions, generator, device: negatives
    return loss


def test_full_softmax_known_value_cosine_and_dot():
    table = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    q = torch.tensor([[4.0, 0.0]])
    cos = build_loss({"name": "full_softmax", "temperature": 0.5}, n_items=3)
    # cosines 1, 0, -1 at scale 2 -> logits 2, 0, -2; the target is item 1.
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(-2)))
    assert cos(q, torch.tensor([1]), rows_of(table)).item() == pytest.approx(expected, rel=1e-6)
    dot = build_loss({"name": "full_softmax", "similarity": "dot", "temperature": 2.0}, n_items=3)
    # dot products 8, 0, -4 at scale 0.5 -> logits 4, 0, -2; the target is item 2.
    expected = -math.log(math.exp(0) / (math.exp(4) + math.exp(0) + math.exp(-2)))
    assert dot(q, torch.tensor([2]), rows_of(table)).item() == pytest.approx(expected, rel=1e-6)


def test_padding_row_is_never_a_class():
    # A huge padding row would dominate the softmax if row 0 were a class.
    table = torch.tensor([[100.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = build_loss({"name": "full_softmax", "similarity": "dot", "temperature": 1.0}, n_items=2)
    expected = -math.log(math.exp(1) / (math.exp(1) + 1))
    assert loss(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), rows_of(table)).item() == pytest.approx(expected, rel=1e-6)


def test_sampled_softmax_with_one_negative_known_value():
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    loss = build_loss({"name": "sampled_softmax", "num_negatives": 1, "temperature": 0.5}, n_items=3)
    _fixed_negatives(loss, torch.tensor([[2]]))
    # cos(q, pos) = 1, cos(q, item 2) = 0, at scale 2.
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    assert loss(torch.tensor([[3.0, 0.0]]), torch.tensor([1]), rows_of(table)).item() == pytest.approx(expected, rel=1e-6)


def test_negative_equal_to_positive_is_masked():
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    loss = build_loss({"name": "sampled_softmax", "num_negatives": 2}, n_items=3)
    _fixed_negatives(loss, torch.tensor([[1, 1]]))  # both draws are the positive itself
    assert loss(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), rows_of(table)).item() == pytest.approx(0.0, abs=1e-7)


def test_sampled_softmax_over_every_other_item_equals_full_softmax():
    torch.manual_seed(0)
    table, q = torch.randn(8, 5), torch.randn(6, 5)
    positives = torch.tensor([1, 3, 7, 7, 2, 5])
    full = build_loss({"name": "full_softmax"}, n_items=7)
    # Shared negatives = the whole catalogue; the positive's own column is masked, which leaves
    # exactly the full softmax's denominator.
    sampled = build_loss({"name": "sampled_softmax", "num_negatives": 6, "per_position": False}, n_items=7)
    _fixed_negatives(sampled, torch.arange(1, 8).unsqueeze(0))
    assert sampled(q, positives, rows_of(table)).item() == pytest.approx(full(q, positives, rows_of(table)).item(), rel=1e-5)


def test_per_position_and_shared_negatives():
    loss = build_loss({"name": "sampled_softmax", "num_negatives": 16}, n_items=1000)
    g = torch.Generator().manual_seed(0)
    per_position = loss.sample(5, g, torch.device("cpu"))
    assert per_position.shape == (5, 16)
    assert per_position.min() >= 1 and per_position.max() <= 1000
    # Rows are independent draws, not one draw repeated.
    assert len({tuple(r.tolist()) for r in per_position}) == 5
    shared = build_loss({"name": "sampled_softmax", "num_negatives": 16, "per_position": False}, n_items=1000)
    assert shared.sample(5, g, torch.device("cpu")).shape == (1, 16)
    # Same generator state -> same draw (training is reproducible).
    a = loss.sample(3, torch.Generator().manual_seed(7), torch.device("cpu"))
    b = loss.sample(3, torch.Generator().manual_seed(7), torch.device("cpu"))
    assert torch.equal(a, b)


def test_in_batch_negatives_known_value_and_duplicate_positives_masked():
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = build_loss({"name": "sampled_softmax", "num_negatives": 0, "in_batch": True, "temperature": 1.0},
                      n_items=2)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    positives = torch.tensor([1, 2, 1])
    # Row 0: its in-batch negatives are row 1's positive (cos 0) and row 2's (item 1 = its own,
    # masked). Row 1: rows 0 and 2's positive item 1, twice (cos 0 each). Row 2 mirrors row 0.
    l0 = -math.log(math.e / (math.e + 1))
    l1 = -math.log(math.e / (math.e + 2))
    assert loss(q, positives, rows_of(table)).item() == pytest.approx((2 * l0 + l1) / 3, rel=1e-6)


def test_gradient_reaches_the_learnable_temperature_and_it_is_capped():
    loss = build_loss({"name": "full_softmax", "temperature": 0.07, "learnable_temperature": True,
                       "max_scale": 10.0}, n_items=4)
    assert [p for p in loss.parameters()] == [loss.log_scale]
    assert loss.scale.item() == pytest.approx(10.0)
    fixed = build_loss({"name": "full_softmax", "temperature": 0.5, "learnable_temperature": True}, n_items=4)
    fixed(torch.randn(3, 4), torch.tensor([1, 2, 3]), rows_of(torch.randn(5, 4))).backward()
    assert fixed.log_scale.grad is not None and fixed.log_scale.grad != 0
    assert list(build_loss({"name": "full_softmax"}, n_items=4).parameters()) == []


def test_auto_picks_full_softmax_for_small_catalogues():
    assert resolve_loss_name("auto", 1682) == "full_softmax"
    assert resolve_loss_name("auto", FULL_SOFTMAX_MAX_ITEMS + 1) == "sampled_softmax"
    assert isinstance(build_loss({"name": "auto"}, 100), FullSoftmaxLoss)
    assert isinstance(build_loss({"name": "auto", "temperature": 0.1}, FULL_SOFTMAX_MAX_ITEMS + 1), SampledSoftmaxLoss)
    assert set(LOSSES) == {"full_softmax", "sampled_softmax", "dmil"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "softmaxx"}, r"train\.loss\.name 'softmaxx' is unknown; choose one of \['auto', 'full_softmax'"),
        ({"name": "full_softmax", "temperature": 0.0}, r"train\.loss \(full_softmax\): temperature must be > 0"),
        ({"name": "sampled_softmax", "temperature": -1}, "temperature must be > 0"),
        ({"name": "full_softmax", "num_negatives": 5}, r"unknown key\(s\) \['num_negatives'\]; allowed keys"),
        ({"name": "sampled_softmax", "num_negatives": 10}, r"num_negatives \(10\) must be smaller than the catalogue \(10 items\)"),
        ({"name": "sampled_softmax", "num_negatives": 0}, "there would be no negatives"),
        ({"name": "full_softmax", "similarity": "l2"}, r"similarity: 'l2' is not one of \['cosine', 'dot'\]"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(settings, n_items=10)


def test_full_softmax_matches_cross_entropy_over_normalised_scores():
    torch.manual_seed(1)
    table, q, positives = torch.randn(11, 6), torch.randn(4, 6), torch.tensor([1, 5, 10, 3])
    loss = build_loss({"name": "full_softmax", "temperature": 0.2}, n_items=10)
    logits = F.normalize(q, dim=-1) @ F.normalize(table[1:], dim=-1).T / 0.2
    assert loss(q, positives, rows_of(table)).item() == pytest.approx(F.cross_entropy(logits, positives - 1).item(), rel=1e-6)


def test_masked_negatives_leave_the_learnable_temperature_gradient_finite():
    loss = build_loss({"name": "sampled_softmax", "num_negatives": 2, "in_batch": True, "learnable_temperature": True},
                      n_items=3)
    _fixed_negatives(loss, torch.tensor([[1, 2], [2, 2]]))
    q = torch.randn(2, 4, requires_grad=True)
    loss(q, torch.tensor([1, 1]), rows_of(torch.randn(4, 4))).backward()
    assert torch.isfinite(loss.log_scale.grad) and torch.isfinite(q.grad).all()


def test_false_negatives_above_the_threshold_are_masked_but_never_the_positive():
    # Items 1 and 2 are the same direction (a duplicate text), item 3 is orthogonal.
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    q = torch.tensor([[1.0, 0.0]])
    full = build_loss({"name": "full_softmax", "temperature": 1.0, "false_negative_threshold": 0.99}, n_items=3)
    # Item 2 is masked; the positive (item 1, cosine 1 with itself) stays: logits 1 vs item 3's 0.
    expected = -math.log(math.e / (math.e + 1))
    assert full(q, torch.tensor([1]), rows_of(table)).item() == pytest.approx(expected, rel=1e-6)
    plain = build_loss({"name": "full_softmax", "temperature": 1.0}, n_items=3)
    assert plain(q, torch.tensor([1]), rows_of(table)).item() == pytest.approx(
        -math.log(math.e / (2 * math.e + 1)), rel=1e-6)
    for per_position in (True, False):
        sampled = build_loss({"name": "sampled_softmax", "num_negatives": 2, "per_position": per_position,
                              "temperature": 1.0, "false_negative_threshold": 0.99}, n_items=3)
        _fixed_negatives(sampled, torch.tensor([[2, 3]]))
        assert sampled(q, torch.tensor([1]), rows_of(table)).item() == pytest.approx(expected, rel=1e-6)


def test_the_loss_asks_for_item_vectors_once_per_batch():
    calls = []
    table = torch.randn(11, 4)

    def embed(ids):
        calls.append(ids.shape)
        return lookup(table, ids)

    loss = build_loss({"name": "sampled_softmax", "num_negatives": 3}, n_items=10)
    loss(torch.randn(5, 4), torch.tensor([1, 2, 3, 4, 5]), embed, torch.Generator().manual_seed(0))
    assert calls == [torch.Size([5 + 5 * 3])]

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from hymirec.config import ConfigError
from hymirec.models.layers import lookup
from hymirec.training.losses import (
    LOSSES,
    DMILConfig,
    DMILLoss,
    FullSoftmaxLoss,
    build_loss,
)
from hymirec.training.losses.matching import (
    hungarian_match,
    match_targets,
    nearest_interest,
    spherical_kmeans,
)


def rows_of(table):
    """An ``embed_items`` that looks ids up in a fixed table."""
    return lambda ids: lookup(table, ids)


def unit(*components):
    return F.normalize(torch.tensor(components, dtype=torch.float), dim=-1)


# Items 1-3 point roughly along x, items 4-6 along y, item 7 along z, item 8 along -x.
TABLE = torch.stack([
    torch.zeros(3), unit(1.0, 0.1, 0.0), unit(1.0, -0.1, 0.0), unit(1.0, 0.0, 0.1),
    unit(0.1, 1.0, 0.0), unit(-0.1, 1.0, 0.0), unit(0.0, 1.0, 0.1), unit(0.0, 0.0, 1.0), unit(-1.0, 0.0, 0.0),
])
N_ITEMS = len(TABLE) - 1


def test_registered_by_name_with_window_and_multi_interest_flags():
    assert LOSSES["dmil"] == (DMILConfig, DMILLoss)
    loss = build_loss({"name": "dmil", "window": 3}, N_ITEMS)
    assert isinstance(loss, DMILLoss) and loss.window == 3 and loss.multi_interest
    full = build_loss({"name": "full_softmax"}, N_ITEMS)
    assert full.window == 1 and not full.multi_interest
    assert (DMILConfig().similarity, DMILConfig().temperature, DMILConfig().matching) == ("cosine", 0.05, "hungarian")


@pytest.mark.parametrize("s", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hungarian_matching_equals_brute_force(s, seed):
    g = torch.Generator().manual_seed(seed)
    similarity = torch.rand(4, s, s, generator=g) * 2 - 1
    matched = hungarian_match(similarity)
    for row, groups in zip(similarity, matched):
        # matched[g] is group g's interest: the best permutation of interests over groups.
        best = max(itertools.permutations(range(s)), key=lambda perm: sum(row[perm[k], k] for k in range(s)))
        assert groups.tolist() == list(best)


def test_two_obvious_groups_become_two_clusters():
    ids = torch.tensor([[1, 4, 2, 5], [7, 1, 7, 2]])
    labels, centroids = spherical_kmeans(TABLE[ids], ids > 0, n_clusters=2, iters=10)
    first, second = labels.tolist()
    assert first[0] == first[2] != first[1] == first[3]
    # The duplicate item 7 shares a cluster and yields no degenerate centroid.
    assert second[0] == second[2] != second[1] == second[3]
    torch.testing.assert_close(centroids.norm(dim=-1), torch.ones(2, 2))
    torch.testing.assert_close(centroids[0, first[0]], F.normalize(TABLE[1] + TABLE[2], dim=-1))


def test_more_clusters_than_distinct_targets_leaves_the_rest_empty():
    ids = torch.tensor([[1, 4, 4, 1]])
    labels, centroids = spherical_kmeans(TABLE[ids], ids > 0, n_clusters=3, iters=10)
    assert labels.tolist() == [[0, 1, 1, 0]]
    assert centroids[0, 2].abs().sum() == 0 and torch.isfinite(centroids).all()


def test_all_duplicates_fewer_targets_than_interests_and_padding():
    ids = torch.tensor([[3, 3, 3, 3], [5, 0, 0, 0], [0, 0, 0, 0]])
    labels, centroids = spherical_kmeans(TABLE[ids], ids > 0, n_clusters=3, iters=10)
    assert labels.tolist() == [[0, 0, 0, 0], [0, -1, -1, -1], [-1, -1, -1, -1]]
    assert torch.isfinite(centroids).all()
    assert (centroids.norm(dim=-1) > 0).tolist() == [[True, False, False], [True, False, False], [False] * 3]


def _interests():
    # Interest 0 faces the x items, 1 the y items, 2 item 7 (z).
    return torch.stack([unit(1.0, 0.0, 0.0), unit(0.0, 1.0, 0.0), unit(0.0, 0.0, 1.0)]).unsqueeze(0)


def test_gradient_reaches_only_matched_interests():
    interests = (_interests() + 0.1).requires_grad_()
    loss = build_loss({"name": "dmil"}, N_ITEMS)
    # Two distinct targets, each twice: two groups for three interests.
    loss(interests, torch.tensor([[1, 4, 4, 1]]), rows_of(TABLE)).backward()
    assert torch.count_nonzero(interests.grad[0, 2]) == 0
    assert interests.grad[0, 0].abs().sum() > 0 and interests.grad[0, 1].abs().sum() > 0


def test_fewer_targets_than_interests_trains_one_interest():
    interests = torch.randn(1, 3, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = build_loss({"name": "dmil", "window": 1}, N_ITEMS)
    value = loss(interests, torch.tensor([[4]]), rows_of(TABLE))
    value.backward()
    assert torch.isfinite(value)
    # Item 4's one group goes to the interest most similar to it.
    best = int(torch.argmax(F.normalize(interests.detach()[0], dim=-1) @ TABLE[4]))
    trained = [k for k in range(3) if interests.grad[0, k].abs().sum() > 0]
    assert trained == [best]


def test_rows_without_targets_contribute_nothing():
    interests = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    loss = build_loss({"name": "dmil"}, N_ITEMS)
    both = loss(interests, torch.tensor([[1, 4, 7, 0], [0, 0, 0, 0]]), rows_of(TABLE))
    alone = loss(interests[:1], torch.tensor([[1, 4, 7, 0]]), rows_of(TABLE))
    torch.testing.assert_close(both, alone)
    both.backward()
    assert torch.count_nonzero(interests.grad[1]) == 0
    empty = loss(interests, torch.zeros(2, 4, dtype=torch.long), rows_of(TABLE))
    assert empty.item() == 0 and empty.grad_fn is not None


def test_loss_averages_targets_per_example_then_examples():
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    interests = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    loss = build_loss({"name": "dmil", "window": 2, "temperature": 1.0}, n_items=3)
    # Row 0: item 1 -> interest 0 (negative: item 3 only, item 2 is a known positive),
    # item 2 -> interest 1 (negative item 3, cos 0). Row 1: item 1 alone, negatives items 2 and 3.
    l_1 = -math.log(math.e / (math.e + math.exp(-1)))
    l_2 = -math.log(math.e / (math.e + 1))
    l_row1 = -math.log(math.e / (math.e + 1 + math.exp(-1)))
    expected = ((l_1 + l_2) / 2 + l_row1) / 2
    value = loss(interests, torch.tensor([[1, 2], [1, 0]]), rows_of(table))
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_one_interest_one_target_is_the_full_softmax():
    g = torch.Generator().manual_seed(2)
    table, queries = torch.randn(11, 6, generator=g), torch.randn(5, 6, generator=g)
    positives = torch.tensor([1, 4, 10, 4, 7])
    for threshold in (None, 0.5):
        settings = {"temperature": 0.2, "false_negative_threshold": threshold}
        full = build_loss({"name": "full_softmax", **settings}, n_items=10)
        dmil = build_loss({"name": "dmil", "window": 1, **settings}, n_items=10)
        assert isinstance(full, FullSoftmaxLoss)
        torch.testing.assert_close(
            dmil(queries.unsqueeze(1), positives.unsqueeze(1), rows_of(table)), full(queries, positives, rows_of(table))
        )


def test_max_matching_trains_each_targets_nearest_interest():
    interests = _interests()
    targets = TABLE[torch.tensor([[1, 4, 7, 2]])]
    assert nearest_interest(interests, targets).tolist() == [[0, 1, 2, 0]]
    valid = torch.ones(1, 4, dtype=torch.bool)
    assert match_targets(interests, targets, valid, "max", 10).tolist() == [[0, 1, 2, 0]]
    skewed = (interests + torch.tensor([0.0, 0.0, 0.3])).requires_grad_()  # every interest leans to z
    build_loss({"name": "dmil", "matching": "max"}, N_ITEMS)(skewed, torch.tensor([[1, 4, 0, 0]]), rows_of(TABLE)).backward()
    assert torch.count_nonzero(skewed.grad[0, 2]) == 0 and skewed.grad[0, :2].abs().sum(-1).gt(0).all()


def test_hungarian_gives_each_group_its_own_interest_where_max_would_share():
    # Both groups are nearest to interest 0; Hungarian still spreads them over two interests.
    interests = torch.stack([unit(1.0, 1.0, 0.0), unit(0.0, 0.0, 1.0), unit(0.0, 0.0, -1.0)]).unsqueeze(0)
    targets = TABLE[torch.tensor([[1, 4, 1, 4]])]
    valid = torch.ones(1, 4, dtype=torch.bool)
    assert match_targets(interests, targets, valid, "max", 10).tolist() == [[0, 0, 0, 0]]
    spread = match_targets(interests, targets, valid, "hungarian", 10)[0].tolist()
    assert spread[0] == spread[2] != spread[1] == spread[3] and 0 in spread


def test_item_vectors_are_requested_once_per_forward():
    calls = []

    def embed(ids):
        calls.append(ids.shape)
        return lookup(TABLE, ids)

    for settings, n_negatives in (({}, N_ITEMS), ({"negatives": 5}, 5)):
        calls.clear()
        build_loss({"name": "dmil", **settings}, N_ITEMS)(_interests(), torch.tensor([[1, 4, 0, 0]]), embed,
                                                          torch.Generator().manual_seed(0))
        assert calls == [torch.Size([4 + n_negatives])]


def test_sampled_negatives_are_reproducible_and_known_positives_masked():
    loss = build_loss({"name": "dmil", "negatives": 5, "temperature": 1.0}, n_items=3)
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    interests = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    targets = torch.tensor([[1, 0, 0, 0]])
    values = [loss(interests, targets, rows_of(table), torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
    assert values[0].item() == values[1].item()
    drawn = loss.negative_ids(torch.Generator().manual_seed(3), torch.device("cpu"))
    assert drawn.shape == (5,) and drawn.min() >= 1 and drawn.max() <= 3
    # Draws of item 1 (the positive) are dropped; item 2 scores cos 0, item 3 cos -1.
    expected = -math.log(math.e / (math.e + (drawn == 2).sum().item() + (drawn == 3).sum().item() * math.exp(-1)))
    assert values[0].item() == pytest.approx(expected, rel=1e-6)
    # Another known positive of the example is masked too: with items 1 and 2 both targets only
    # item 3 is a negative for either.
    two = loss(interests, torch.tensor([[1, 2, 0, 0]]), rows_of(table), torch.Generator().manual_seed(3))
    n_3 = (drawn == 3).sum().item()
    l_1 = -math.log(math.e / (math.e + n_3 * math.exp(-1)))  # item 1 -> interest 0, cos(r_0, item 3) = -1
    l_2 = -math.log(math.e / (math.e + n_3))  # item 2 -> interest 1, cos(r_1, item 3) = 0
    assert two.item() == pytest.approx((l_1 + l_2) / 2, rel=1e-6)


def test_false_negative_threshold_masks_near_duplicates():
    # Item 2 duplicates item 1's direction; item 3 is orthogonal.
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    interests = torch.tensor([[[1.0, 0.0]]])
    masked = build_loss({"name": "dmil", "temperature": 1.0, "false_negative_threshold": 0.99}, n_items=3)
    plain = build_loss({"name": "dmil", "temperature": 1.0}, n_items=3)
    targets = torch.tensor([[1, 0, 0, 0]])
    assert masked(interests, targets, rows_of(table)).item() == pytest.approx(-math.log(math.e / (math.e + 1)), rel=1e-6)
    assert plain(interests, targets, rows_of(table)).item() == pytest.approx(
        -math.log(math.e / (2 * math.e + 1)), rel=1e-6)


def test_learnable_temperature_gets_a_finite_gradient():
    loss = build_loss({"name": "dmil", "learnable_temperature": True, "negatives": 4}, N_ITEMS)
    interests = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(5), requires_grad=True)
    loss(interests, torch.tensor([[1, 1, 4, 0], [7, 8, 2, 3], [0, 0, 0, 0]]), rows_of(TABLE),
         torch.Generator().manual_seed(0)).backward()
    assert torch.isfinite(loss.log_scale.grad) and loss.log_scale.grad != 0
    assert torch.isfinite(interests.grad).all()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window": 0}, r"train\.loss \(dmil\): window must be >= 1, got 0"),
        ({"negatives": 0}, "negatives must be >= 1"),
        ({"cluster_iters": 0}, "cluster_iters must be >= 1"),
        ({"similarity": "dot"}, "similarity must be 'cosine'"),
        ({"matching": "greedy"}, r"matching: 'greedy' is not one of \['hungarian', 'max'\]"),
        ({"num_negatives": 5}, r"unknown key\(s\) \['num_negatives'\]; allowed keys"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        build_loss({"name": "dmil", **settings}, N_ITEMS)


def test_next_item_against_its_nearest_interest_adds_to_dmil_and_zero_is_the_paper():
    torch.manual_seed(0)
    interests = torch.randn(5, 2, 8, requires_grad=True)
    table = torch.randn(21, 8)
    targets = torch.randint(1, 21, (5, 3))
    embed = lambda ids: table[ids]  # noqa: E731
    paper = build_loss({"name": "dmil", "window": 3}, 20)(interests, targets, embed)
    zero = build_loss({"name": "dmil", "window": 3, "next_item_weight": 0.0}, 20)(interests, targets, embed)
    more = build_loss({"name": "dmil", "window": 3, "next_item_weight": 0.5}, 20)(interests, targets, embed)
    assert zero.item() == paper.item() and more.item() > paper.item()
    with pytest.raises(ConfigError, match="next_item_weight"):
        build_loss({"name": "dmil", "next_item_weight": -1}, 20)

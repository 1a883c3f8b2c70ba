import math

import numpy as np
import pytest
import torch

from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.metrics import metrics_by_history_length, metrics_from_ranks


def _items(scores):
    # Item vectors whose dot product with the user vector [1] is the given score; row 0 = padding.
    return torch.tensor([[0.0]] + [[s] for s in scores])


def test_known_ranks_and_ties_count_against_the_model():
    items = _items([0.9, 0.5, 0.5, 0.1])  # items 1..4
    users = torch.ones(3, 1)
    ev = Evaluator(ks=[1, 2, 3], mask_history=False)
    res = ev.evaluate(users, items, np.array([1, 2, 4]), [np.array([], int)] * 3)
    # item 2 ties with item 3 -> rank 3 (both others >= it: items 1 and 3), item 4 last.
    assert res.ranks.tolist() == [1, 3, 4]
    assert res.metrics["recall@1"] == pytest.approx(1 / 3)
    assert res.metrics["recall@3"] == pytest.approx(2 / 3)
    assert res.metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 3)


def test_all_equal_scores_get_the_worst_rank():
    items = _items([0.0] * 10)
    res = Evaluator(ks=[10]).evaluate(torch.ones(1, 1), items, np.array([4]), [np.array([], int)])
    assert res.ranks.tolist() == [10]


def test_history_masking_and_the_unmasked_option():
    items = _items([0.9, 0.8, 0.7, 0.1])
    hist = [np.array([1, 2])]
    masked = Evaluator(ks=[10], mask_history=True).evaluate(torch.ones(1, 1), items, np.array([3]), hist)
    unmasked = Evaluator(ks=[10], mask_history=False).evaluate(torch.ones(1, 1), items, np.array([3]), hist)
    assert masked.ranks.tolist() == [1]
    assert unmasked.ranks.tolist() == [3]


def test_reconsumed_target_is_not_masked():
    items = _items([0.9, 0.8, 0.7])
    res = Evaluator(ks=[10]).evaluate(torch.ones(1, 1), items, np.array([2]), [np.array([1, 2])])
    assert res.ranks.tolist() == [1]


def test_padding_item_is_never_ranked():
    items = torch.tensor([[100.0], [0.5], [0.4]])
    res = Evaluator(ks=[10], mask_history=False).evaluate(torch.ones(1, 1), items, np.array([1]), [np.array([], int)])
    assert res.ranks.tolist() == [1]


def test_multi_interest_scores_by_max_over_interests():
    items = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    users = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # two interests
    ev = Evaluator(ks=[10], mask_history=False)
    # Item 2 scores 1.0 through the second interest, item 3 scores 0.6: rank 2 (tie with item 1).
    assert ev.evaluate(users, items, np.array([2]), [np.array([], int)]).ranks.tolist() == [2]
    single = ev.evaluate(users[:, 0], items, np.array([2]), [np.array([], int)])
    assert single.ranks.tolist() == [3]


def test_batching_does_not_change_results():
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(50, 8, generator=g), torch.randn(101, 8, generator=g)
    targets = np.random.default_rng(0).integers(1, 101, 50)
    hist = [np.random.default_rng(i).integers(1, 101, 5) for i in range(50)]
    a = Evaluator(batch_size=7).evaluate(users, items, targets, hist)
    b = Evaluator(batch_size=1000).evaluate(users, items, targets, hist)
    assert np.array_equal(a.ranks, b.ranks)


def test_metrics_from_ranks_known_values():
    m = metrics_from_ranks(np.array([1, 2, 11, 300]), ks=[10, 200])
    assert m["recall@10"] == 0.5 and m["recall@200"] == 0.75
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 4)


@pytest.mark.parametrize(
    "users,items,targets,match",
    [
        (torch.ones(1, 2), torch.ones(3, 3), [1], "dimension"),
        (torch.ones(1, 1), torch.ones(3, 1), [3], "targets must be item ids"),
        (torch.ones(1, 1), torch.ones(3, 1), [0], "targets must be item ids"),
        (torch.full((1, 1), float("nan")), torch.ones(3, 1), [1], "NaN"),
        (torch.ones(2, 1), torch.ones(3, 1), [1], "targets"),
    ],
)
def test_bad_input_errors(users, items, targets, match):
    with pytest.raises(ValueError, match=match):
        Evaluator().evaluate(users, items, np.array(targets), [np.array([], int)] * len(targets))


def test_a_nan_in_any_item_chunk_is_refused():
    items = torch.ones(10, 2)
    items[7, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        Evaluator(item_chunk=3).evaluate(torch.ones(1, 2), items, np.array([1]), [np.array([], int)])


def _chunked_case():
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(60, 3, 8, generator=g), torch.randn(501, 8, generator=g)
    rng = np.random.default_rng(0)
    targets = rng.integers(1, 501, 60)
    hist = [rng.integers(1, 501, rng.integers(0, 40)) for _ in range(60)]
    return users, items, targets, hist


@pytest.mark.parametrize("chunk", [1, 7, 64, 500, 501])
def test_item_chunks_give_the_one_product_ranks_and_lists(chunk):
    users, items, targets, hist = _chunked_case()
    items[11] = items[targets[0]]  # an exact tie with a target still counts against the model
    whole, chunked = Evaluator(batch_size=16), Evaluator(batch_size=16, item_chunk=chunk)
    assert np.array_equal(whole.evaluate(users, items, targets, hist).ranks,
                          chunked.evaluate(users, items, targets, hist).ranks)
    items[11] += 1e-3  # no ties left: the lists hold the same items in the same order
    for merge in ("max", "round_robin"):
        a = whole.top_k(users, items, hist, 20, keep=targets[:, None], merge=merge)
        b = chunked.top_k(users, items, hist, 20, keep=targets[:, None], merge=merge)
        assert np.array_equal(a.items, b.items) and np.array_equal(a.interests, b.interests)
        # Products of other shapes may round the last bit differently.
        assert np.allclose(a.scores, b.scores, rtol=1e-6, atol=1e-6)


def test_a_chunk_never_holds_more_than_item_chunk_scores(monkeypatch):
    users, items, targets, hist = _chunked_case()
    widths = []
    real = Evaluator._chunk_scores

    def spy(self, u, vectors, lo):
        scores = real(self, u, vectors, lo)
        widths.append(scores.shape)
        return scores

    monkeypatch.setattr(Evaluator, "_chunk_scores", spy)
    Evaluator(batch_size=16, item_chunk=50).evaluate(users, items, targets, hist)
    assert max(w[0] for w in widths) == 16 and max(w[-1] for w in widths) == 50


def test_bad_batch_or_chunk_sizes_are_refused():
    with pytest.raises(ValueError, match="item_chunk"):
        Evaluator(item_chunk=0)
    from hymirec.evaluation.config import EvalConfig
    with pytest.raises(ValueError, match="eval.batch_size and eval.item_chunk"):
        EvalConfig(item_chunk=0)


def test_metrics_by_history_length_known_answer():
    ranks, lengths = np.array([1, 3, 20, 1, 2]), np.array([5, 20, 21, 700, 30])
    groups = metrics_by_history_length(ranks, lengths, [20, 50, 500], ks=[1, 10])
    assert [(g["history"], g["users"]) for g in groups] == [("1-20", 2), ("21-50", 2), ("501+", 1)]
    assert groups[0]["recall@1"] == 0.5 and groups[0]["recall@10"] == 1.0
    assert groups[1]["ndcg@10"] == pytest.approx(1 / math.log2(3) / 2)
    assert groups[2]["ndcg@1"] == 1.0
    with pytest.raises(ValueError, match="5 ranks but 4 history lengths"):
        metrics_by_history_length(ranks, lengths[:4], [20])


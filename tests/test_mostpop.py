import numpy as np
import pytest
import torch

from hymirec.data.split import ChronologicalSplit
from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.inference import evaluate_model
from hymirec.models import ModelInputs, MostPop, MostPopConfig
from helpers import make_dataset


def fit(split):
    return MostPop(MostPopConfig(), ModelInputs(split.n_items, 10, train_sequences=split.train_sequences()))


def test_popularity_counts_only_training_prefixes():
    # Item 9 is only ever a validation/test target: it must have zero popularity.
    rows = [(u, i, t) for u in range(1, 4) for t, i in enumerate([1, 2, 3, 9, 9])]
    split = ChronologicalSplit(make_dataset(rows, n_items=9))
    pop = fit(split)
    assert pop.counts[9] == 0
    assert pop.counts[1:4].tolist() == [3, 3, 3]


def test_mostpop_ranks_by_popularity():
    # A 30-item catalogue, so that a cut-off of 10 can miss. Training counts (prefixes s[:-2]):
    # item 1 four times, item 2 three times, items 3-8 once, the rest never.
    rows = [(1, i, t) for t, i in enumerate([1, 2, 3, 4, 5, 3, 30])]
    rows += [(2, i, t) for t, i in enumerate([1, 2, 6, 7, 8, 20, 2])]
    rows += [(3, i, t) for t, i in enumerate([1, 2, 1, 9, 1])]
    split = ChronologicalSplit(make_dataset(rows, n_items=30))
    pop = fit(split)
    assert pop.counts[[1, 2, 3, 9]].tolist() == [4, 3, 1, 0]
    test = split.examples("test")
    res = evaluate_model(pop, test, Evaluator(ks=[1, 2, 10], mask_history=False), max_len=10, cosine=False)
    # User 1's target 30 was never trained on: it ties with the other 21 unseen items (ties count
    # against the model) -> rank 30 of 30. User 2's target 2 has two items at least as popular (1, 2)
    # -> rank 2. User 3's target 1 is the most popular item -> rank 1.
    assert res.ranks.tolist() == [30, 2, 1]
    assert res.metrics["recall@1"] == pytest.approx(1 / 3)
    assert res.metrics["recall@10"] == pytest.approx(2 / 3)
    assert res.metrics["ndcg@2"] == pytest.approx((1 / np.log2(3) + 1) / 3)
    # With the history masked, user 2's own earlier item 1 no longer outranks its target.
    masked = evaluate_model(pop, test, Evaluator(ks=[1, 2, 10], mask_history=True), max_len=10, cosine=False)
    assert masked.ranks.tolist()[1] == 1


def test_mostpop_is_a_registry_model_with_nothing_to_train():
    rows = [(u, i, t) for u in range(1, 4) for t, i in enumerate([1, 2, 3, 9, 9])]
    split = ChronologicalSplit(make_dataset(rows, n_items=9))
    pop = fit(split)
    assert list(pop.parameters()) == [] and pop.similarity == "dot"
    assert pop.user_embeddings(torch.ones(2, 3, dtype=torch.long), None, torch.tensor([3, 3])).shape == (2, 1, 1)
    with pytest.raises(ValueError, match="needs them"):
        MostPop(MostPopConfig(), ModelInputs(9, 10))

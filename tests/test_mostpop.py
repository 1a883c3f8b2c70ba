import numpy as np

from hymirec.data.split import LeaveOneOutSplit
from hymirec.evaluation.evaluator import Evaluator
from hymirec.models.mostpop import MostPop
from hymirec.training.inference import evaluate_model
from helpers import make_dataset


def test_popularity_counts_only_training_prefixes():
    # Item 9 is only ever a validation/test target: it must have zero popularity.
    rows = [(u, i, t) for u in range(1, 4) for t, i in enumerate([1, 2, 3, 9, 9])]
    split = LeaveOneOutSplit(make_dataset(rows, n_items=9))
    pop = MostPop(split.n_items).fit(split.train_sequences())
    assert pop.counts[9] == 0
    assert pop.counts[1:4].tolist() == [3, 3, 3]


def test_mostpop_ranks_by_popularity():
    rows = [(1, 1, 0), (1, 2, 1), (1, 3, 2), (1, 4, 3), (1, 5, 4),
            (2, 1, 0), (2, 1, 1), (2, 2, 2), (2, 4, 3), (2, 3, 4)]
    split = LeaveOneOutSplit(make_dataset(rows, n_items=5))
    pop = MostPop(split.n_items).fit(split.train_sequences())
    test = split.examples("test")
    res = evaluate_model(pop, test, Evaluator(ks=[10], mask_history=False), max_len=10)
    # counts: item1=3, item2=2, item3=1 -> user 1's target 5 (count 0) ranks last (5), user 2's
    # target 3 ties with nothing above count 1 except items 1 and 2 -> rank 3.
    assert res.ranks.tolist() == [5, 3]
    assert np.isclose(res.metrics["recall@10"], 1.0)

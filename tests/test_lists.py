"""The list measures beyond next-item rank: window recall, intra-list diversity, interest coverage."""

import numpy as np
import pytest
import torch

from hymirec.data.split import ChronologicalSplit
from hymirec.evaluation.config import EvalConfig
from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.inference import evaluate_splits
from hymirec.evaluation.lists import interest_coverage, intra_list_diversity, window_recall
from hymirec.models import ModelInputs, build_model
from hymirec.training.config import load_experiment
from helpers import make_dataset


def test_window_recall_known_answer():
    top = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    windows = np.array([[2, 9, 4], [9, 9, 0]])  # user 2's window is one distinct item, 0 = padding
    out = window_recall(top, windows, [2, 4])
    assert out["window_recall@2"] == pytest.approx((1 / 3 + 0) / 2)
    assert out["window_recall@4"] == pytest.approx((2 / 3 + 0) / 2)
    with pytest.raises(ValueError, match="fewer than K = 10"):
        window_recall(top, windows, [10])


def test_intra_list_diversity_known_answer():
    vectors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [-1.0, 0.0]])
    assert intra_list_diversity(np.array([[1, 3]]), vectors) == pytest.approx(0.0)  # same direction
    assert intra_list_diversity(np.array([[1, 2]]), vectors) == pytest.approx(1.0)  # orthogonal
    assert intra_list_diversity(np.array([[1, 4]]), vectors) == pytest.approx(2.0)  # opposite
    # Three items: pairs (1,2)=1, (1,3)=0, (2,3)=1 -> mean 2/3; two users averaged.
    assert intra_list_diversity(np.array([[1, 2, 3], [1, 3, 1]]), vectors) == pytest.approx((2 / 3 + 0) / 2)
    with pytest.raises(ValueError, match="NaN"):
        intra_list_diversity(np.array([[1, 2]]), vectors.masked_fill(torch.eye(5, 2).bool(), float("nan")))


def test_interest_coverage_counts_distinct_interests():
    assert interest_coverage(np.array([[0, 0, 1], [2, 2, 2]])) == pytest.approx(1.5)


def test_top_k_masks_the_history_but_keeps_the_held_out_window_and_names_interests():
    items = torch.eye(6)[:, :4]  # item i (1..3) is axis i; items 4, 5 are zero vectors
    users = torch.stack([torch.stack([items[1] * 3 + items[2], items[3] * 2])])  # 2 interests
    histories = [np.array([1, 3])]
    top = Evaluator().top_k(users, items, histories, k=2)
    assert top.items[0, 0] == 2 and top.items[0, 1] in (4, 5)  # 1 and 3 masked; 2 best, then a zero item
    kept = Evaluator().top_k(users, items, histories, k=2, keep=np.array([[1, 2]]))
    assert kept.items.tolist() == [[1, 2]] and kept.interests.tolist() == [[0, 0]]
    unmasked = Evaluator(mask_history=False).top_k(users, items, histories, k=2)
    assert unmasked.items.tolist() == [[1, 3]] and unmasked.interests.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="k must be in 1..5"):
        Evaluator().top_k(users, items, histories, k=6)


def test_evaluate_splits_reports_window_cold_and_list_measures(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(u, int(rng.integers(1, 31)), t) for u in range(1, 25) for t in range(12)]
    dataset = make_dataset(rows, n_items=30)
    split = ChronologicalSplit(dataset, test_window=3, cold_items=0.5, cold_seed=1)
    config = load_experiment(None, ["model.name=sasrec", "model.dim=8", "model.num_layers=1", "data.max_len=8",
                                    f"out_dir={tmp_path}"])
    torch.manual_seed(0)
    model = build_model("sasrec", config.model_config,
                        ModelInputs(split.n_items, 8, dataset, split.train_sequences()))
    out = evaluate_splits(model, split, EvalConfig(ks=[5, 10]), 8, cosine=True)
    assert set(out["test_window"]) == {"window_recall@5", "window_recall@10"}
    assert 0 <= out["test_window"]["window_recall@5"] <= out["test_window"]["window_recall@10"] <= 1
    cold_targets = split.cold[split.examples("test").targets]
    assert out["test_cold"]["users"] == int(cold_targets.sum()) > 0
    assert out["test_lists"]["coverage@10"] == 1.0  # one vector per user
    assert 0 < out["test_lists"]["ild@10"] <= 2
    assert out["split"] == {"test_window": 3, "eval_users": 24, "too_short": 0, "cold_items": 15}
    assert "test_window" not in evaluate_splits(model, ChronologicalSplit(dataset), EvalConfig(ks=[5, 10]), 8, True)
    # Every test user's history is 9 items (12 - a test window of 3): one group of all of them.
    by_length = evaluate_splits(model, split, EvalConfig(ks=[5, 10], history_buckets=[5, 20]), 8, True)
    assert by_length["test_by_history_length"] == [{"history": "6-20", "users": 24, **by_length["test_masked"]}]


def _two_interests(a: list[float], b: list[float]):
    """Items 1..6 are one-hot, so each interest's scores are exactly its given row."""
    items = torch.cat([torch.zeros(1, 7), torch.eye(7)[1:]])
    users = torch.tensor([[0.0, *a], [0.0, *b]])[None]  # [1 user, 2 interests, 7]
    return users, items


def test_round_robin_merge_takes_each_interests_best_in_turn():
    users, items = _two_interests([0.9, 0.8, 0.7, 0, 0, 0], [0, 0, 0, 0.6, 0.5, 0])
    top = Evaluator().top_k(users, items, [np.array([], np.int64)], k=4, merge="max")
    assert top.items.tolist() == [[1, 2, 3, 4]] and top.interests.tolist() == [[0, 0, 0, 1]]
    rr = Evaluator().top_k(users, items, [np.array([], np.int64)], k=4, merge="round_robin")
    assert rr.items.tolist() == [[1, 4, 2, 5]] and rr.interests.tolist() == [[0, 1, 0, 1]]
    assert np.allclose(rr.scores, [[0.9, 0.6, 0.8, 0.5]])


def test_round_robin_merge_lists_an_item_once_where_it_first_appears_and_masks_history():
    # Both interests like item 1 best; B's is the stronger, so round 1 lists it for B only.
    users, items = _two_interests([0.9, 0.8, 0.7, 0, 0, 0], [0.95, 0, 0, 0.6, 0.5, 0])
    rr = Evaluator().top_k(users, items, [np.array([], np.int64)], k=4, merge="round_robin")
    assert rr.items.tolist() == [[1, 2, 4, 3]] and rr.interests.tolist() == [[1, 0, 1, 0]]
    masked = Evaluator().top_k(users, items, [np.array([1, 4])], k=3, merge="round_robin")
    assert masked.items.tolist() == [[2, 5, 3]]
    with pytest.raises(ValueError, match="merge must be one of"):
        Evaluator().top_k(users, items, [np.array([], np.int64)], k=2, merge="sum")


def test_eval_merge_setting_is_checked():
    with pytest.raises(Exception, match="eval.merge must be one of"):
        load_experiment(None, ["eval.merge=sum"])


def test_history_buckets_are_checked():
    with pytest.raises(Exception, match="eval.history_buckets must be increasing"):
        load_experiment(None, ["eval.history_buckets=[50, 20]"])


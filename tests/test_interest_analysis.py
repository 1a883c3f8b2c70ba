"""hymirec.analysis.interests: purity / alignment / coverage / distinct on hand-built vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hymirec.analysis import analyse_interests, interest_top_items


def _axis_catalogue() -> tuple[torch.Tensor, torch.Tensor]:
    """9 items, 3 per cluster, cluster c along axis c (different norms: cosine ignores them);
    row 0 padding (label -1)."""
    rows, labels = [torch.zeros(3)], [-1]
    for c in range(3):
        for scale in (1.0, 2.0, 3.0):
            rows.append(torch.eye(3)[c] * scale)
            labels.append(c)
    return torch.stack(rows), torch.tensor(labels)


def _angle_catalogue(degrees: list[float], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D unit items at the given angles (an interest at angle 0 ranks them by angle)."""
    rows = [torch.zeros(2)] + [torch.tensor([math.cos(math.radians(a)), math.sin(math.radians(a))]) for a in degrees]
    return torch.stack(rows), torch.tensor([-1, *labels])


def test_axis_aligned_interests_known_answers() -> None:
    items, clusters = _axis_catalogue()
    e = torch.eye(3)
    interests = torch.stack([
        torch.stack([e[0], e[1]]),  # both true interests found
        torch.stack([e[0], 5 * e[0]]),  # the same cluster twice: half of the truth
        torch.stack([e[2], e[1]]),  # neither learned interest is the true one
    ])
    result = analyse_interests(interests, items, clusters, [[0, 1], [0, 2], [0]], k=3)
    np.testing.assert_array_equal(result.alignment, [[0, 1], [0, 0], [2, 1]])
    np.testing.assert_allclose(result.purity, np.ones((3, 2)))
    np.testing.assert_allclose(result.coverage, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(result.distinct, [2, 1, 2])
    np.testing.assert_allclose(result.on_target, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(result.coverage_bound, [1.0, 1.0, 1.0])
    assert result.summary() == pytest.approx(
        {"purity": 1.0, "coverage": 0.5, "distinct": 5 / 3, "on_target": 2 / 3, "coverage_bound": 1.0}
    )
    assert result.k == 3


@pytest.mark.parametrize(
    ("k", "majority", "purity"),
    [(1, 0, 1.0), (2, 0, 0.5), (4, 0, 0.5), (5, 0, 0.6), (6, 0, 0.5)],
)
def test_purity_counts_the_majority_cluster_of_the_top_k(k: int, majority: int, purity: float) -> None:
    # By angle from the interest: clusters 0, 1, 0, 2, 0, 1. k = 2 is a tie (0 and 1): the
    # smaller id wins.
    items, clusters = _angle_catalogue([1, 2, 3, 4, 5, 6], [0, 1, 0, 2, 0, 1])
    interests = torch.tensor([[[1.0, 0.0]]])
    result = analyse_interests(interests, items, clusters, [[majority]], k=k)
    assert result.alignment.tolist() == [[majority]]
    assert result.purity[0, 0] == pytest.approx(purity)
    assert result.coverage.tolist() == [1.0]


def test_majority_can_be_a_later_cluster() -> None:
    items, clusters = _angle_catalogue([1, 2, 3, 4], [3, 1, 1, 1])
    result = analyse_interests(torch.tensor([[[1.0, 0.0]]]), items, clusters, [[3, 0]], k=4)
    assert result.alignment.tolist() == [[1]]
    assert result.purity[0, 0] == pytest.approx(0.75)
    assert result.coverage.tolist() == [0.0]
    assert result.on_target.tolist() == [0.0]
    assert result.coverage_bound.tolist() == [0.5]  # one interest, two true ones


def test_coverage_bound_is_min_s_t_over_t() -> None:
    items, clusters = _axis_catalogue()
    interests = torch.eye(3)[None, :2].repeat(3, 1, 1)  # s = 2
    result = analyse_interests(interests, items, clusters, [[0], [0, 1, 2], [2, 1, 0, 0]], k=3)
    # The third user's truth has a repeat: it counts once (3 distinct clusters).
    np.testing.assert_allclose(result.coverage_bound, [1.0, 2 / 3, 2 / 3])
    np.testing.assert_allclose(result.coverage, [1.0, 2 / 3, 2 / 3])


def test_top_items_skip_padding_and_rank_by_cosine() -> None:
    items, _ = _angle_catalogue([30, 10, 20], [0, 0, 0])
    items[0] = torch.tensor([1.0, 0.0])  # padding identical to the interest: never returned
    top = interest_top_items(torch.tensor([[[2.0, 0.0]]]), items, k=3)
    assert top.tolist() == [[[2, 3, 1]]]


def test_numpy_inputs_and_many_user_chunks_match_torch() -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(41, 8)).astype(np.float32)
    clusters = rng.integers(0, 5, size=41)
    interests = rng.normal(size=(7, 3, 8)).astype(np.float32)
    truth = [[int(c)] for c in rng.integers(0, 5, size=7)]
    a = analyse_interests(interests, items, clusters, truth, k=6)
    b = analyse_interests(torch.from_numpy(interests), torch.from_numpy(items), torch.from_numpy(clusters), truth, k=6)
    np.testing.assert_array_equal(a.alignment, b.alignment)
    np.testing.assert_allclose(a.purity, b.purity)
    small_chunks = interest_top_items(interests, items, 6, chunk=2)
    np.testing.assert_array_equal(small_chunks.numpy(), interest_top_items(interests, items, 6).numpy())
    assert ((a.distinct >= 1) & (a.distinct <= 3)).all()


def test_bad_inputs_are_clear_errors() -> None:
    items, clusters = _axis_catalogue()
    good = torch.eye(3)[None, :2]
    truth = [[0]]
    with pytest.raises(ValueError, match=r"interests must be \[U, s, D\]"):
        analyse_interests(torch.eye(3), items, clusters, truth)
    with pytest.raises(ValueError, match=r"items must be \[N \+ 1, D\]"):
        analyse_interests(good, items[None], clusters, truth)
    with pytest.raises(ValueError, match="dimension 3 but items have 2"):
        analyse_interests(good, items[:, :2], clusters, truth)
    with pytest.raises(ValueError, match=r"item_clusters must be \[N \+ 1\]"):
        analyse_interests(good, items, clusters[1:], truth, k=3)
    with pytest.raises(ValueError, match="integer cluster ids"):
        analyse_interests(good, items, clusters.float(), truth, k=3)
    negative = clusters.clone()
    negative[4] = -2
    with pytest.raises(ValueError, match=">= 0 for every item"):
        analyse_interests(good, items, negative, truth, k=3)
    bad = good.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="interest vectors contain NaN"):
        analyse_interests(bad, items, clusters, truth, k=3)
    bad_items = items.clone()
    bad_items[5, 0] = float("inf")
    with pytest.raises(ValueError, match="item vectors contain NaN"):
        analyse_interests(good, bad_items, clusters, truth, k=3)
    with pytest.raises(ValueError, match="all zeros"):
        analyse_interests(torch.zeros(1, 2, 3), items, clusters, truth, k=3)
    for k in (0, 10):
        with pytest.raises(ValueError, match=r"k must be in \[1, 9\]"):
            analyse_interests(good, items, clusters, truth, k=k)
    with pytest.raises(ValueError, match="2 users' true interests for 1 users"):
        analyse_interests(good, items, clusters, [[0], [1]], k=3)
    with pytest.raises(ValueError, match="has no true interests"):
        analyse_interests(good, items, clusters, [[]], k=3)
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        analyse_interests(good.tolist(), items, clusters, truth, k=3)


def test_padding_row_may_hold_anything() -> None:
    items, clusters = _axis_catalogue()
    items[0] = float("nan")  # row 0 is never read
    result = analyse_interests(torch.eye(3)[None, :1], items, clusters, [[0]], k=3)
    assert result.purity.tolist() == [[1.0]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_give_cpu_arrays() -> None:
    items, clusters = _axis_catalogue()
    interests = torch.eye(3)[None, :2]
    cpu = analyse_interests(interests, items, clusters, [[0, 1]], k=3)
    gpu = analyse_interests(interests.cuda(), items.cuda(), clusters.cuda(), [[0, 1]], k=3)
    np.testing.assert_array_equal(cpu.alignment, gpu.alignment)
    np.testing.assert_allclose(cpu.purity, gpu.purity)

import math

import pytest
import torch

from hymirec.training.loss import SampledSoftmaxLoss


def test_known_value_with_one_negative():
    # Query along x; positive along x (cos 1), every negative along y (cos 0).
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss_fn = SampledSoftmaxLoss(n_items=2, num_negatives=4, temperature=0.5)
    q = torch.tensor([[2.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    negatives = torch.randint(1, 3, (4,), generator=torch.Generator().manual_seed(0))
    n_real = int((negatives == 2).sum())  # negatives equal to the positive (item 1) are masked
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + n_real * math.exp(0.0)))
    assert loss_fn(q, table, torch.tensor([1]), g).item() == pytest.approx(expected, rel=1e-5)


def test_negative_equal_to_positive_is_masked():
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    loss_fn = SampledSoftmaxLoss(n_items=1, num_negatives=3, temperature=1.0)
    # Every negative is item 1 == the positive: all masked, the loss is exactly 0.
    assert loss_fn(torch.tensor([[1.0, 0.0]]), table, torch.tensor([1])).item() == pytest.approx(0.0, abs=1e-7)


def test_learnable_temperature_is_a_capped_parameter():
    loss_fn = SampledSoftmaxLoss(n_items=5, temperature=0.07, learnable_temperature=True, max_scale=10.0)
    assert any(p is loss_fn.log_scale for p in loss_fn.parameters())
    assert loss_fn.scale.item() == pytest.approx(10.0)
    assert list(SampledSoftmaxLoss(n_items=5).parameters()) == []


def test_bad_settings():
    with pytest.raises(ValueError, match="num_negatives"):
        SampledSoftmaxLoss(n_items=5, num_negatives=0)
    with pytest.raises(ValueError, match="temperature"):
        SampledSoftmaxLoss(n_items=5, temperature=0.0)

"""Run by ``torchrun`` from ``test_distributed.py``: checks that need several processes.

``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py CHECK OUT``
runs ``CHECK`` on every rank; rank 0 writes what it found to the JSON file ``OUT``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from hymirec.codebook.codebook import ResidualCodebook
from hymirec.codebook.config import CodebookConfig
from hymirec.distributed import join_world
from hymirec.runs.restored import evaluate_run
from hymirec.training.losses.sampled_softmax import SampledSoftmaxConfig, SampledSoftmaxLoss


def in_batch_gradients() -> dict:
    """Each rank trains its share of 9 positions against the in-batch negatives of all 9
    (gathered with gradients), weighted as the trainer weights it; the summed gradients must equal
    the gradient of one process's loss over the whole batch, for every rank's item vectors."""
    world = join_world("gloo", torch.device("cpu"))
    torch.manual_seed(0)
    table = torch.nn.Embedding(7, 5)
    queries = torch.randn(9, 5)
    positives = torch.tensor([1, 2, 3, 4, 5, 6, 1, 2, 3])
    loss = SampledSoftmaxLoss(SampledSoftmaxConfig(num_negatives=0, in_batch=True), n_items=6)
    whole = loss(queries, positives, table)
    expected = torch.autograd.grad(whole, table.weight)[0]

    loss.world = world
    share = world.share(len(queries))
    mine = loss(queries[share.start: share.stop], positives[share.start: share.stop], table)
    weight = len(share) * world.size / len(queries)
    table.zero_grad()
    (mine * weight).backward()
    grad = table.weight.grad.clone()
    torch.distributed.all_reduce(grad)
    grad /= world.size  # what DistributedDataParallel does
    local_only = torch.autograd.grad(
        SampledSoftmaxLoss(SampledSoftmaxConfig(num_negatives=0, in_batch=True), 6)(
            queries[share.start: share.stop], positives[share.start: share.stop], table), table.weight)[0]
    return {"max_error": float((grad - expected).abs().max()), "scale": float(expected.abs().max()),
            "loss": float(world.all_sum(mine.detach() * len(share))) / len(queries), "whole_loss": float(whole),
            "local_only_error": float((local_only - expected).abs().max())}


def evaluate(run: str) -> dict:
    """``evaluate_run`` of a finished run, its users (and catalogue) split over the ranks."""
    return evaluate_run(run)[1]


def codebook_encode() -> dict:
    """A cosine codebook's codes, scales and per-layer cosines of 1,000 vectors (3 batches of
    400), encoded with the batches split over the ranks, against one process's encoding; and in one
    batch of 1,000, which leaves one rank nothing to encode."""
    world = join_world("gloo", torch.device("cpu"))
    vectors = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
    book = ResidualCodebook(CodebookConfig(variant="cosine", layers=2, k=8, scale_dtype="float16")).fit(vectors)
    found = {}
    for batch in (400, 1000):  # 1,000: one batch, so one rank's share is empty
        one = book.encode_with_quality(vectors, batch_size=batch)
        shared = book.encode_with_quality(vectors, batch_size=batch, world=world)
        for name in ("codes", "scales", "cosines"):
            found[f"{name}_{batch}"] = bool(np.array_equal(getattr(one, name), getattr(shared, name))) and \
                getattr(one, name).dtype == getattr(shared, name).dtype
    return found


CHECKS = {"in_batch_gradients": in_batch_gradients, "evaluate": evaluate, "codebook_encode": codebook_encode}

if __name__ == "__main__":
    check, out, *args = sys.argv[1:]
    result = CHECKS[check](*args)
    if torch.distributed.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(result, f)
    torch.distributed.destroy_process_group()

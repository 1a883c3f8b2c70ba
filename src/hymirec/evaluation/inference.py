"""From a model to the evaluator's inputs: user vectors from histories, the catalogue's vectors.

Every model is evaluated through these functions: users are encoded from the last ``max_len``
items of their history (``[U, K, D]``), the whole catalogue is embedded once per evaluation in
chunks of ``model.item_batch_size`` ids (with a progress bar when that takes several chunks), and
the evaluator ranks every item. Vectors are L2-normalised when the run scores by cosine.

Under ``torchrun`` (a ``World`` of several processes) each rank encodes its share of the users,
in whole user batches and evaluator batches, and of the catalogue's chunks; per-user results
(ranks, top-K lists) and item vectors are gathered, so every rank holds the metrics one process
computes, exactly: the same batches meet the same kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hymirec.data.batching import pad_right
from hymirec.data.split import ChronologicalSplit, EvalExamples
from hymirec.encoders.export import exported_vectors
from hymirec.evaluation.config import EvalConfig
from hymirec.evaluation.evaluator import EvaluationResult, Evaluator, TopK
from hymirec.evaluation.lists import interest_coverage, intra_list_diversity, window_recall
from hymirec.evaluation.metrics import metrics_by_history_length, metrics_from_ranks
from hymirec.models.base import SequentialRecommender
from hymirec.distributed import WORLD_OF_ONE, World, shard_unit

USER_BATCH = 256  # users encoded per forward pass


def _device(model: torch.nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def encode_users(
    model: SequentialRecommender,
    examples: EvalExamples,
    max_len: int,
    batch_size: int = USER_BATCH,
    cosine: bool = True,
    span: range | None = None,
) -> torch.Tensor:
    """``[U, K, D]`` user vectors from the last ``max_len`` items of each example's history (of
    the examples in ``span``, all by default), ``batch_size`` examples per forward pass."""
    device = _device(model)
    span = range(len(examples)) if span is None else span
    out = []
    with _evaluating(model):
        for lo in range(span.start, span.stop, batch_size):
            hist = [examples.history(i) for i in range(lo, min(lo + batch_size, span.stop))]
            lengths = torch.tensor([min(len(h[0]), max_len) for h in hist])
            if (lengths == 0).any():
                raise ValueError("an evaluation example has an empty history")
            items = pad_right([h[0][-max_len:] for h in hist]).to(device)
            times = pad_right([h[1][-max_len:] for h in hist]).to(device)
            users = model.user_embeddings(items, times, lengths.to(device)).float()
            out.append((F.normalize(users, dim=-1) if cosine else users).cpu())
    return torch.cat(out) if out else torch.zeros(0, 1, 1)


@torch.no_grad()
def embed_catalogue(
    model: SequentialRecommender, cosine: bool = True, progress: bool = True, world: World = WORLD_OF_ONE
) -> torch.Tensor:
    """``[n_items + 1, D]`` vectors of every item (row 0: padding), in chunks of
    ``model.item_batch_size`` ids; across ``world``'s ranks, each embeds its share of the chunks
    and every rank gets them all."""
    ids = torch.arange(model.n_items + 1, device=_device(model))
    chunks = ids.split(model.item_batch_size)
    span = world.share(len(chunks))
    mine = chunks[span.start: span.stop]
    bar = tqdm(mine, desc="embedding items", unit="chunk", leave=False, disable=not progress or len(mine) < 2)
    with _evaluating(model):
        # A rank without a chunk embeds one item for the vectors' width and keeps none.
        vectors = torch.cat([model.embed_items(chunk).float().cpu() for chunk in bar]) if mine else \
            model.embed_items(ids[:1]).float().cpu()[:0]
    vectors = world.gather_shares(vectors, len(ids))
    return F.normalize(vectors, dim=-1) if cosine else vectors


def _user_batch(evaluator: Evaluator) -> int:
    """Users encoded per forward pass: ``USER_BATCH``, or the evaluator's batch when smaller."""
    return min(USER_BATCH, evaluator.batch_size)


def _users_share(world: World, examples: EvalExamples, evaluator: Evaluator) -> range:
    """This rank's users: whole encoding batches and evaluator batches, so each user is encoded
    and scored in the batch it has in one process."""
    return world.share(len(examples), shard_unit(_user_batch(evaluator), evaluator.batch_size))


def _gathered(world: World, n: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """Per-user arrays of every rank's share, whole and in order."""
    return [world.gather_array(a, n) for a in arrays]


def evaluate_model(
    model: SequentialRecommender,
    examples: EvalExamples,
    evaluator: Evaluator,
    max_len: int,
    cosine: bool = True,
    items: torch.Tensor | None = None,
    world: World = WORLD_OF_ONE,
) -> EvaluationResult:
    """Score every item for every example with ``model`` and rank the targets (by cosine when
    ``cosine``, else by dot product: the similarity the model was trained with). ``items``:
    the catalogue's vectors when already embedded. Across ``world``'s ranks, each ranks its share
    of the users and every rank gets every rank and the metrics."""
    if items is None:
        items = embed_catalogue(model, cosine, world=world)
    span = _users_share(world, examples, evaluator)
    histories = [examples.history(i)[0] for i in span]
    users = encode_users(model, examples, max_len, _user_batch(evaluator), cosine, span)
    result = evaluator.evaluate(users, items, examples.targets[span.start: span.stop], histories)
    if not world.distributed:
        return result
    (ranks,) = _gathered(world, len(examples), result.ranks)
    return EvaluationResult(metrics_from_ranks(ranks, evaluator.ks), ranks)


def evaluate_splits(
    model: SequentialRecommender,
    split: ChronologicalSplit,
    config: EvalConfig,
    max_len: int,
    cosine: bool,
    world: World = WORLD_OF_ONE,
) -> dict[str, Any]:
    """Validation (configured masking) and test metrics under both history conventions, the
    masked test metrics per history-length group (``eval.history_buckets``), and the test top-10
    lists' measures (``hymirec.evaluation.lists``): interest coverage and intra-list
    diversity always, window recall for a test window, cold-start recall and NDCG over the users
    whose target is a cold item. The catalogue and the test users are encoded once for all (each
    rank its share, under ``world``)."""
    items = embed_catalogue(model, cosine, world=world)
    valid = Evaluator.from_config(config)
    out = {"valid": evaluate_model(model, split.examples("valid"), valid, max_len, cosine, items, world).metrics}
    test = split.examples("test")
    masked = Evaluator.from_config(config, mask_history=True)
    unmasked = Evaluator.from_config(config, mask_history=False)
    span = _users_share(world, test, masked)
    histories = [test.history(i)[0] for i in span]
    users = encode_users(model, test, max_len, _user_batch(masked), cosine, span)
    targets = test.targets[span.start: span.stop]
    windows = None if test.windows is None else test.windows[span.start: span.stop]
    top = masked.top_k(users, items, histories, min(max(10, *config.ks), split.n_items), keep=windows,
                       merge=config.merge)
    masked_ranks, unmasked_ranks, *lists = _gathered(
        world, len(test), masked.evaluate(users, items, targets, histories).ranks,
        unmasked.evaluate(users, items, targets, histories).ranks, top.items, top.interests, top.scores)
    ranked = EvaluationResult(metrics_from_ranks(masked_ranks, config.ks), masked_ranks)
    top = TopK(*lists)
    out["test_masked"] = ranked.metrics
    out["test_unmasked"] = metrics_from_ranks(unmasked_ranks, config.ks)
    out["test_by_history_length"] = metrics_by_history_length(masked_ranks, np.diff(test.history_offsets),
                                                              config.history_buckets, config.ks)
    reference = items if config.diversity_vectors is None else exported_vectors(config.diversity_vectors,
                                                                                 split.dataset)
    out["test_lists"] = {"coverage@10": interest_coverage(top.interests[:, :10]),
                         "ild@10": intra_list_diversity(top.items[:, :10], reference),
                         "diversity_space": config.diversity_vectors or "the model's item vectors",
                         "merge": config.merge}
    if test.windows is not None:
        out["test_window"] = window_recall(top.items, test.windows, [k for k in config.ks if k <= top.items.shape[1]])
    cold = split.cold[test.targets]
    if cold.any():
        out["test_cold"] = {**metrics_from_ranks(ranked.ranks[cold], config.ks), "users": int(cold.sum())}
    out["split"] = split.split_summary()
    return out

"""From a model to the evaluator's inputs: user vectors from histories, the catalogue's vectors.

Every model is evaluated through these functions: users are encoded from the last ``max_len``
items of their history (``[U, K, D]``), the whole catalogue is embedded once per evaluation in
chunks of ``model.item_batch_size`` ids (with a progress bar when that takes several chunks), and
the evaluator ranks every item. Vectors are L2-normalised when the run scores by cosine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hymirec.data.batching import pad_right
from hymirec.data.split import ChronologicalSplit, EvalExamples
from hymirec.encoders.export import exported_vectors
from hymirec.evaluation.config import EvalConfig
from hymirec.evaluation.evaluator import EvaluationResult, Evaluator
from hymirec.evaluation.lists import interest_coverage, intra_list_diversity, window_recall
from hymirec.evaluation.metrics import metrics_from_ranks
from hymirec.models.base import SequentialRecommender


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
    batch_size: int = 256,
    cosine: bool = True,
) -> torch.Tensor:
    """``[U, K, D]`` user vectors from the last ``max_len`` items of each example's history."""
    device = _device(model)
    out = []
    with _evaluating(model):
        for lo in range(0, len(examples), batch_size):
            hist = [examples.history(i) for i in range(lo, min(lo + batch_size, len(examples)))]
            lengths = torch.tensor([min(len(h[0]), max_len) for h in hist])
            if (lengths == 0).any():
                raise ValueError("an evaluation example has an empty history")
            items = pad_right([h[0][-max_len:] for h in hist]).to(device)
            times = pad_right([h[1][-max_len:] for h in hist]).to(device)
            users = model.user_embeddings(items, times, lengths.to(device)).float()
            out.append((F.normalize(users, dim=-1) if cosine else users).cpu())
    return torch.cat(out) if out else torch.zeros(0, 1, 1)


@torch.no_grad()
def embed_catalogue(model: SequentialRecommender, cosine: bool = True, progress: bool = True) -> torch.Tensor:
    """``[n_items + 1, D]`` vectors of every item (row 0: padding), in chunks of
    ``model.item_batch_size`` ids."""
    ids = torch.arange(model.n_items + 1, device=_device(model))
    chunks = ids.split(model.item_batch_size)
    bar = tqdm(chunks, desc="embedding items", unit="chunk", leave=False, disable=not progress or len(chunks) < 2)
    with _evaluating(model):
        vectors = torch.cat([model.embed_items(chunk).float().cpu() for chunk in bar])
    return F.normalize(vectors, dim=-1) if cosine else vectors


def evaluate_model(
    model: SequentialRecommender,
    examples: EvalExamples,
    evaluator: Evaluator,
    max_len: int,
    cosine: bool = True,
    items: torch.Tensor | None = None,
) -> EvaluationResult:
    """Score every item for every example with ``model`` and rank the targets (by cosine when
    ``cosine``, else by dot product: the similarity the model was trained with). ``items``:
    the catalogue's vectors when already embedded."""
    histories = [examples.history(i)[0] for i in range(len(examples))]
    users = encode_users(model, examples, max_len, cosine=cosine)
    if items is None:
        items = embed_catalogue(model, cosine)
    return evaluator.evaluate(users, items, examples.targets, histories)


def evaluate_splits(
    model: SequentialRecommender, split: ChronologicalSplit, config: EvalConfig, max_len: int, cosine: bool
) -> dict[str, Any]:
    """Validation (configured masking) and test metrics under both history conventions, and the
    test top-10 lists' measures (``hymirec.evaluation.lists``): interest coverage and intra-list
    diversity always, window recall for a test window, cold-start recall and NDCG over the users
    whose target is a cold item. The catalogue and the test users are encoded once for all."""
    items = embed_catalogue(model, cosine)
    valid = Evaluator.from_config(config)
    out = {"valid": evaluate_model(model, split.examples("valid"), valid, max_len, cosine, items).metrics}
    test = split.examples("test")
    histories = [test.history(i)[0] for i in range(len(test))]
    users = encode_users(model, test, max_len, cosine=cosine)
    masked = Evaluator.from_config(config, mask_history=True)
    ranked = masked.evaluate(users, items, test.targets, histories)
    out["test_masked"] = ranked.metrics
    unmasked = Evaluator.from_config(config, mask_history=False)
    out["test_unmasked"] = unmasked.evaluate(users, items, test.targets, histories).metrics
    top = masked.top_k(users, items, histories, min(max(10, *config.ks), split.n_items), keep=test.windows,
                       merge=config.merge)
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

"""From a model to the evaluator's inputs: user vectors from histories, candidate item vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hymirec.data.split import EvalExamples, pad_right
from hymirec.evaluation.evaluator import EvaluationResult, Evaluator
from hymirec.models.base import SequentialRecommender
from hymirec.models.mostpop import MostPop


@torch.no_grad()
def encode_users(
    model: SequentialRecommender,
    examples: EvalExamples,
    max_len: int,
    batch_size: int = 256,
    normalize: bool = True,
) -> torch.Tensor:
    """User vectors from the last ``max_len`` items of each example's history, L2-normalised
    when the model is scored by cosine."""
    was_training = model.training
    model.eval()
    out = []
    for lo in range(0, len(examples), batch_size):
        hist = [examples.history(i) for i in range(lo, min(lo + batch_size, len(examples)))]
        items = pad_right([h[0][-max_len:] for h in hist])
        times = pad_right([h[1][-max_len:] for h in hist])
        lengths = torch.tensor([min(len(h[0]), max_len) for h in hist])
        if (lengths == 0).any():
            raise ValueError("an evaluation example has an empty history")
        users = model.user_embeddings(items, times, lengths)
        out.append(F.normalize(users, dim=-1) if normalize else users)
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 1)


def evaluate_model(
    model: SequentialRecommender | MostPop,
    examples: EvalExamples,
    evaluator: Evaluator,
    max_len: int,
    normalize: bool = True,
) -> EvaluationResult:
    """Score every item for every example with ``model`` and rank the targets (by cosine when
    ``normalize``, else by dot product: the similarity the model was trained with)."""
    histories = [examples.history(i)[0] for i in range(len(examples))]
    if isinstance(model, MostPop):
        users, items = model.user_vectors(len(examples)), model.item_vectors()
    else:
        users = encode_users(model, examples, max_len, normalize=normalize)
        with torch.no_grad():
            items = model.item_embeddings()
            items = F.normalize(items, dim=-1) if normalize else items
    return evaluator.evaluate(users, items, examples.targets, histories)

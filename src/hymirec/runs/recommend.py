"""Top-k recommendations for one user, shared by ``hymirec recommend`` and the run report.

The user is encoded exactly as the evaluator encodes one (``encode_users``: the last ``max_len``
items, ``[1, K, D]``, K interests), the items to leave out (the user's history, padding id 0) are
masked, and the evaluator's ``top_k`` makes the list (cosine scores when the run scores by
cosine; several interests merged as the run's ``eval.merge`` says: by each item's best interest,
or round-robin). Each recommendation says which interest (1..K) put it there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from hymirec.data.dataset import DataError, InteractionDataset
from hymirec.data.split import EvalExamples
from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.inference import embed_catalogue, encode_users
from hymirec.models.base import SequentialRecommender

if TYPE_CHECKING:  # restoring a run imports the trainer: only where a run is restored
    from hymirec.runs.restored import RestoredRun


class Recommendation(NamedTuple):
    """One recommended item: canonical id, score, and the interest (1..K) that scored it best."""

    item: int
    score: float
    interest: int


def user_vectors(
    model: SequentialRecommender, items: np.ndarray, timestamps: np.ndarray, max_len: int, cosine: bool
) -> torch.Tensor:
    """``[1, K, D]``: the user whose history is ``items``/``timestamps`` (chronological), encoded
    as the evaluator encodes one (its last ``max_len`` items)."""
    # One evaluation example whose history is the whole sequence: the evaluator's own encoding.
    example = EvalExamples(
        users=np.zeros(1, np.int64),
        targets=np.zeros(1, np.int64),
        history_items=np.asarray(items, np.int64),
        history_timestamps=np.asarray(timestamps, np.int64),
        history_offsets=np.array([0, len(items)], np.int64),
    )
    return encode_users(model, example, max_len, cosine=cosine)


def recommend(
    model: SequentialRecommender,
    items: np.ndarray,
    timestamps: np.ndarray,
    k: int,
    cosine: bool,
    max_len: int,
    exclude: np.ndarray | None = None,
    catalogue: torch.Tensor | None = None,
    merge: str = "max",
) -> list[Recommendation]:
    """The ``k`` best items for the history ``items``/``timestamps`` (chronological), never an
    id in ``exclude`` nor padding. ``catalogue``: the items' vectors when already embedded (with
    the same ``cosine``); ``merge``: how several interests make one list (``Evaluator.top_k``)."""
    user = user_vectors(model, items, timestamps, max_len, cosine)
    if catalogue is None:
        catalogue = embed_catalogue(model, cosine, progress=False)
    return top_items(user, catalogue, exclude, k, merge)


def top_items(
    user: torch.Tensor, catalogue: torch.Tensor, exclude: np.ndarray | None, k: int, merge: str = "max"
) -> list[Recommendation]:
    """The ``k`` best items of ``catalogue`` ``[N + 1, D]`` for one user's ``[1, K, D]`` vectors
    (fewer when fewer are left), never an id in ``exclude`` nor padding."""
    exclude = np.unique(np.asarray([] if exclude is None else exclude, np.int64))
    k = min(k, catalogue.shape[0] - 1 - int((exclude > 0).sum()))
    if k < 1:
        return []
    top = Evaluator(mask_history=True).top_k(user, catalogue, [exclude], k, merge=merge)
    return [Recommendation(int(i), float(s), int(c) + 1) for i, s, c in zip(top.items[0], top.scores[0], top.interests[0])]


def recommend_for_user(
    run: RestoredRun, user: int, k: int, keep_history: bool = False, merge: str | None = None
) -> list[Recommendation]:
    """``recommend`` for canonical ``user`` of a restored run: the user's whole sequence (train,
    valid and test items), scored and merged the way the run evaluates (``merge`` overrides its
    ``eval.merge``), history masked unless ``keep_history``."""
    items, timestamps = run.split.sequences.user(user)
    with run.autocast():
        return recommend(run.model, items, timestamps, k, run.cosine, run.max_len,
                         exclude=None if keep_history else items, catalogue=run.catalogue(),
                         merge=merge or run.merge)


def find_user(dataset: InteractionDataset, raw_id: str) -> int:
    """The canonical id of the user whose raw id is ``raw_id``; a ``DataError`` showing what the
    dataset's ids look like when there is none."""
    raw_ids = dataset.users["raw_id"].astype(str)
    hits = np.flatnonzero(raw_ids.to_numpy() == str(raw_id))
    if not len(hits):
        examples = ", ".join(f"'{r}'" for r in raw_ids.iloc[:2])
        raise DataError(
            f"user '{raw_id}' is not in dataset {dataset.name} ({dataset.n_users} users; ids look like {examples}, ...)"
        )
    return int(dataset.users["user"].iloc[hits[0]])


def item_titles(dataset: InteractionDataset) -> list[str]:
    """Each item's title (its ``title`` column, else its text fields), ``titles[i - 1]`` for item ``i``."""
    if "title" in dataset.items.columns:
        return dataset.items["title"].astype(str).tolist()
    return dataset.item_texts()


def recommendations_table(dataset: InteractionDataset, recommendations: list[Recommendation]) -> str:
    """A Markdown table: rank, raw item id, title, score, interest."""
    titles = item_titles(dataset)
    raw_ids = dataset.items["raw_id"].astype(str).tolist()
    lines = ["| rank | item | title | score | interest |", "|---|---|---|---|---|"]
    for rank, rec in enumerate(recommendations, start=1):
        title = titles[rec.item - 1].replace("|", "/")
        lines.append(f"| {rank} | {raw_ids[rec.item - 1]} | {title} | {rec.score:.4f} | {rec.interest} |")
    return "\n".join(lines)

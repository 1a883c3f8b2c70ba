"""The items the server recommends from: raw ids, titles, vectors, popularity; exact retrieval.

Built once from a restored run (every item's vector as the run scores it); retrieval is an exact
inner product over the whole catalogue through the evaluator's ``top_k`` (the same masking and
interest merge as offline evaluation), so served lists equal offline ones for the same vectors.

Leaving out every item a user has seen without reading their whole history: ``top_k_unseen``
asks the store only about each interest's best candidates, doubling them until every interest
keeps ``k`` unseen ones. Both merges then pick only among those candidates, so the list is the
one a full mask gives, at a cost set by ``k`` and how much of the top the user has seen, not by
the history's length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hymirec.evaluation.recommend import Recommendation, item_titles, top_items
from hymirec.evaluation.restored import RestoredRun

SeenLookup = Callable[[np.ndarray], np.ndarray]


class UnknownItem(LookupError):
    """A raw item id the catalogue does not hold."""


class Catalogue:
    """Items ``1..N`` (``raw_ids[i - 1]``, ``titles[i - 1]``), ``vectors`` ``[N + 1, D]`` and
    ``popularity`` ``[N + 1]`` (interaction counts; row 0 is padding)."""

    def __init__(self, raw_ids: list[str], titles: list[str], vectors: torch.Tensor, popularity: np.ndarray) -> None:
        self.raw_ids, self.titles = list(raw_ids), list(titles)
        self.vectors, self.popularity = vectors, popularity
        self._ids = {raw: i for i, raw in enumerate(self.raw_ids, start=1)}

    @classmethod
    def of_run(cls, run: RestoredRun) -> Catalogue:
        """The run's dataset items with the vectors its model scores them by."""
        dataset = run.split.dataset
        counts = np.bincount(dataset.interactions["item"].to_numpy(np.int64), minlength=dataset.n_items + 1)
        return cls(dataset.items["raw_id"].astype(str).tolist(), item_titles(dataset), run.catalogue(), counts)

    def __len__(self) -> int:
        return len(self.raw_ids)

    def item(self, raw_id: str) -> int:
        """The canonical id of ``raw_id``; ``UnknownItem`` naming it when there is none."""
        try:
            return self._ids[raw_id]
        except KeyError:
            raise UnknownItem(f"item '{raw_id}' is not in the catalogue ({len(self)} items)") from None

    def add(self, item: int, raw_id: str, title: str, vector: torch.Tensor) -> None:
        """Append item ``item`` (the next id) with its ``[D]`` vector as the model scores it."""
        if item != len(self) + 1:
            raise ValueError(f"the catalogue's next item is {len(self) + 1}, got {item}")
        # New objects, not in-place changes, and the vectors last: a request running meanwhile
        # sees the old catalogue or the new one, never an id without a raw id.
        self._ids = {**self._ids, raw_id: item}
        self.raw_ids, self.titles = [*self.raw_ids, raw_id], [*self.titles, title]
        self.popularity = np.append(self.popularity, 0)
        self.vectors = torch.cat([self.vectors, vector[None].to(self.vectors.dtype)])

    def __contains__(self, raw_id: str) -> bool:
        return raw_id in self._ids

    def top_k(self, users: torch.Tensor, exclude: np.ndarray, k: int, merge: str) -> list[Recommendation]:
        """The ``k`` best items for ``[1, K, D]`` user vectors, never one in ``exclude``."""
        return top_items(users, self.vectors, exclude, k, merge)

    def top_k_unseen(
        self, users: torch.Tensor, exclude: np.ndarray, k: int, merge: str, seen: SeenLookup
    ) -> tuple[list[Recommendation], int]:
        """``top_k`` leaving out ``exclude`` and every candidate ``seen(items)`` says the user
        has seen; also how many items the lookups returned."""
        scores = (users[0].float() @ self.vectors.T.float())  # [K, N + 1]
        scores[:, 0] = -torch.inf
        scores[:, torch.from_numpy(np.asarray(exclude, np.int64))] = -torch.inf
        n, found = k + len(exclude), []
        while True:
            candidates = scores.topk(min(n, len(self)), dim=1).indices.numpy()
            found = seen(np.unique(candidates))
            unseen = (~np.isin(candidates, found)).sum(axis=1)
            if (unseen >= k).all() or n >= len(self):
                break
            n *= 2
        return self.top_k(users, np.concatenate([exclude, found]), k, merge), len(found)

    def popular(self, k: int, exclude: np.ndarray) -> list[Recommendation]:
        """The ``k`` most consumed items not in ``exclude`` (score: the count; interest 0: none)."""
        counts = torch.from_numpy(self.popularity.astype(np.float32))
        # A one-dimensional "vector" per item whose score is its count: the same top-k path.
        top = top_items(torch.ones(1, 1, 1), counts[:, None], exclude, k, "max")
        return [rec._replace(interest=0) for rec in top]

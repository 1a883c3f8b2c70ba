"""The items the server recommends from: raw ids, titles, vectors, popularity; retrieval.

Built once from a restored run (every item's vector as the run scores it). A list is made in two
steps: an index (``retrieval``: exact by default) gives each interest's best candidates, then the
evaluator's ``top_k`` ranks and merges the candidates (the same interest merge as offline
evaluation). Leaving out every item a user has seen without reading their whole history: the
store is asked only about the candidates, which double until every interest keeps ``k`` unseen
ones. Both merges then pick among those candidates only, so with the exact index the list is the
one a full mask over the whole catalogue gives, at a cost set by ``k`` and how much of the top
the user has seen, not by the history's length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hymirec.runs.recommend import Recommendation, item_titles, top_items
from hymirec.runs.restored import RestoredRun
from hymirec.serving.retrieval import build_index

SeenLookup = Callable[[np.ndarray], np.ndarray]


class UnknownItem(LookupError):
    """A raw item id the catalogue does not hold."""


class Catalogue:
    """Items ``1..N`` (``raw_ids[i - 1]``, ``titles[i - 1]``), ``vectors`` ``[N + 1, D]`` and
    ``popularity`` ``[N + 1]`` (interaction counts; row 0 is padding)."""

    def __init__(self, raw_ids: list[str], titles: list[str], vectors: torch.Tensor, popularity: np.ndarray,
                 index: str = "exact") -> None:
        self.raw_ids, self.titles = list(raw_ids), list(titles)
        self.vectors, self.popularity = vectors, popularity
        self.index = build_index(index, vectors)
        self._ids = {raw: i for i, raw in enumerate(self.raw_ids, start=1)}

    @classmethod
    def of_run(cls, run: RestoredRun, index: str = "exact") -> Catalogue:
        """The run's dataset items with the vectors its model scores them by."""
        dataset = run.split.dataset
        counts = np.bincount(dataset.interactions["item"].to_numpy(np.int64), minlength=dataset.n_items + 1)
        return cls(dataset.items["raw_id"].astype(str).tolist(), item_titles(dataset), run.catalogue(), counts, index)

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
        self.index.add(vector)

    def __contains__(self, raw_id: str) -> bool:
        return raw_id in self._ids

    def top_k(
        self, users: torch.Tensor, exclude: np.ndarray, k: int, merge: str, seen: SeenLookup | None = None
    ) -> tuple[list[Recommendation], int]:
        """The ``k`` best items for ``[1, K, D]`` user vectors, never one in ``exclude`` nor one
        that ``seen(candidates)`` says the user has seen (None: ``exclude`` is all they have);
        also how many items those lookups returned."""
        vectors = self.vectors  # one read: an item added meanwhile is in the next request
        exclude = np.asarray(exclude, np.int64)
        n, found = k + len(exclude), np.zeros(0, np.int64)
        while True:
            candidates = self.index.search(users[0], n)  # [K, n]
            if seen is not None:
                found = seen(np.unique(candidates[candidates > 0]))
            unseen = (~np.isin(candidates, np.concatenate([exclude, found, [0]]))).sum(axis=1)
            if (unseen >= k).all() or n >= len(vectors) - 1:
                break
            n *= 2
        pool = np.unique(candidates[candidates > 0])
        # The candidates as a catalogue of their own (row 0: padding), then back to item ids.
        local = torch.cat([vectors[:1], vectors[torch.from_numpy(pool)]])
        left_out = np.flatnonzero(np.isin(pool, np.concatenate([exclude, found]))) + 1
        top = top_items(users, local, left_out, k, merge)
        return [rec._replace(item=int(pool[rec.item - 1])) for rec in top], len(found)

    def popular(self, k: int, exclude: np.ndarray) -> list[Recommendation]:
        """The ``k`` most consumed items not in ``exclude`` (score: the count; interest 0: none)."""
        counts = torch.from_numpy(self.popularity.astype(np.float32))
        # A one-dimensional "vector" per item whose score is its count: the same top-k path.
        top = top_items(torch.ones(1, 1, 1), counts[:, None], exclude, k, "max")
        return [rec._replace(interest=0) for rec in top]

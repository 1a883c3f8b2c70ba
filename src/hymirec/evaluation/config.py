"""Evaluation settings shared by every experiment."""

from __future__ import annotations

from dataclasses import dataclass, field

from hymirec.config import Settings
from hymirec.evaluation.evaluator import MERGES
from hymirec.evaluation.metrics import DEFAULT_KS


@dataclass
class EvalConfig(Settings):
    """Full-ranking evaluation settings (see ``hymirec.evaluation``). ``diversity_vectors``: an
    item-vector export (``hymirec embed``) whose space measures intra-list diversity, so that
    every model is measured on the same ruler (null: the model's own item vectors). ``merge``: how
    several interests make the top-K lists that window recall, coverage and diversity read
    (``max`` or ``round_robin``, ``Evaluator.top_k``); ranks and Recall/NDCG always use the max.
    ``batch_size`` users are scored at a time against ``item_chunk`` items at a time: memory holds
    ``batch_size x interests x item_chunk`` scores, whatever the catalogue's size.
    ``history_buckets``: the inclusive upper ends of the history-length groups whose test metrics
    (history masked) are also reported (``test_by_history_length``; a last group holds the longer
    histories)."""

    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    mask_history: bool = True
    batch_size: int = 1024
    item_chunk: int = 16384
    diversity_vectors: str | None = None
    merge: str = "max"
    history_buckets: list[int] = field(default_factory=lambda: [20, 50, 100, 200, 500])

    def validate(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"eval.ks must be positive cut-offs, got {self.ks}")
        if self.batch_size < 1 or self.item_chunk < 1:
            raise ValueError(f"eval.batch_size and eval.item_chunk must be >= 1, got {self.batch_size} and {self.item_chunk}")
        if self.merge not in MERGES:
            raise ValueError(f"eval.merge must be one of {MERGES}, got {self.merge!r}")
        edges = self.history_buckets
        if any(e < 1 for e in edges) or any(a >= b for a, b in zip(edges, edges[1:])):
            raise ValueError(f"eval.history_buckets must be increasing history lengths >= 1, got {edges}")

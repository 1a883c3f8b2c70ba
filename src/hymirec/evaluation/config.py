"""Evaluation settings shared by every experiment."""

from __future__ import annotations

from dataclasses import dataclass, field

from hymirec.evaluation.metrics import DEFAULT_KS


@dataclass
class EvalConfig:
    """Full-ranking evaluation settings (see ``hymirec.evaluation``). ``diversity_vectors``: an
    item-vector export (``hymirec embed``) whose space measures intra-list diversity, so that
    every model is measured on the same ruler (null: the model's own item vectors)."""

    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    mask_history: bool = True
    batch_size: int = 1024
    diversity_vectors: str | None = None

    def validate(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"eval.ks must be positive cut-offs, got {self.ks}")

"""From a user's stored events to their interests, for any model the server restores.

Two ways, one interface (``UserEncoder``):

* ``FullHistoryEncoder`` (every model: SASRec, HLLM, HyMiRec without its long-history branch, ...):
  the latest ``max_len`` events are read and encoded in one pass, exactly as the evaluator
  encodes a user; its cost grows with the history up to ``max_len``.
* ``CoarseSummaryEncoder`` (HyMiRec with its lightweight recommender): the paper's split. The
  long history's coarse interests (the lightweight recommender over everything before the recent
  window, projected to the LLM's width) are a *summary* computed near-line and kept in the store;
  a request reads only the last n events and the summary and runs the LLM recommender on
  ``[summary ; I ; last n ; queries]``, so its cost does not grow with the history. With a summary
  computed from the current events the interests are the evaluator's, to rounding; between
  refreshes the summary lags the events by at most the refresher's settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F

from hymirec.runs.recommend import user_vectors
from hymirec.runs.restored import RestoredRun


class UserEncoder(ABC):
    """Events -> ``[1, K, D]`` user vectors (normalised when the run scores by cosine)."""

    def __init__(self, run: RestoredRun) -> None:
        self.run = run

    @property
    @abstractmethod
    def reads(self) -> int:
        """How many of the latest events a request reads."""

    def needs_summary(self, events: int) -> bool:
        """Whether a user with ``events`` events has a long history to summarise."""
        return False

    def summarise(self, items: np.ndarray) -> bytes:
        """The summary of a user whose latest ``run.max_len`` items are ``items`` (oldest first)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no summary")

    def accepts(self, summary: bytes) -> bool:
        """Whether stored bytes are a summary of this model (not another run's)."""
        return False

    @abstractmethod
    def interests(self, items: np.ndarray, timestamps: np.ndarray, summary: bytes | None) -> torch.Tensor:
        """``[1, K, D]`` from the latest ``reads`` events and the user's summary (None: none needed)."""


class FullHistoryEncoder(UserEncoder):
    """The evaluator's own encoding of the latest ``max_len`` events."""

    @property
    def reads(self) -> int:
        return self.run.max_len

    def interests(self, items: np.ndarray, timestamps: np.ndarray, summary: bytes | None) -> torch.Tensor:
        with self.run.autocast():
            return user_vectors(self.run.model, items, timestamps, self.run.max_len, self.run.cosine)


class CoarseSummaryEncoder(UserEncoder):
    """HyMiRec served with its coarse interests summarised near-line (float32 bytes, ``[c, H]``)."""

    def __init__(self, run: RestoredRun) -> None:
        super().__init__(run)
        model = run.model
        self.recent = model.recent
        self.shape = (model.config.lightweight.coarse_queries, model.llm.hidden_size)

    @property
    def reads(self) -> int:
        return self.recent

    def needs_summary(self, events: int) -> bool:
        return events > self.recent

    @torch.no_grad()
    def summarise(self, items: np.ndarray) -> bytes:
        model = self.run.model
        row = np.asarray(items, np.int64)[-self.run.max_len:]
        start = len(row) - self.recent
        # The long history is the row before the recent window, at the same positions as in the
        # whole row: causal blocks give its states exactly, whatever follows it.
        long = torch.from_numpy(row[:start].copy()).to(self.run.device)[None]
        cuts = torch.tensor([[start]], device=self.run.device)
        with self.run.autocast():
            shared = None if model.shared_ids is None else model.shared_ids(model.embed_items(long))
            _, coarse = model.lightweight(long, model.history(long), cuts, shared)
            prefix = model.coarse_proj(coarse)[0, 0]
        return prefix.float().cpu().numpy().tobytes()

    def accepts(self, summary: bytes) -> bool:
        return len(summary) == 4 * self.shape[0] * self.shape[1]

    @torch.no_grad()
    def interests(self, items: np.ndarray, timestamps: np.ndarray, summary: bytes | None) -> torch.Tensor:
        model, device = self.run.model, self.run.device
        recent = torch.zeros(1, self.recent, dtype=torch.long, device=device)
        last = np.asarray(items, np.int64)[-self.recent:]
        recent[0, : len(last)] = torch.from_numpy(last.copy())
        # Without a long history the prefix is masked out: its values are never read.
        has_long = summary is not None
        prefix = np.frombuffer(summary, np.float32).reshape(self.shape) if has_long else np.zeros(self.shape, np.float32)
        prefix = torch.from_numpy(prefix.copy())[None].to(device)
        prefix_mask = torch.full((1, self.shape[0]), has_long, device=device)
        with self.run.autocast():
            out, _ = model.llm(prefix, prefix_mask, model.embed_items(recent), recent != 0, last_only=True)
        users = out[:, 0].float()
        return (F.normalize(users, dim=-1) if self.run.cosine else users).cpu()


def user_encoder(run: RestoredRun) -> UserEncoder:
    """The near-line split for a model with a long-history branch (HyMiRec's lightweight
    recommender), else the one-pass encoding."""
    if getattr(run.model, "lightweight", None) is not None:
        return CoarseSummaryEncoder(run)
    return FullHistoryEncoder(run)

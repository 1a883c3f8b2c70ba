"""Typed settings of the hybrid model: the compressed long history, the lightweight recommender,
the LLM recommender and the interests it emits. Each ablation of the paper's Table 4 is one key
here (or in the loss): ``lightweight.enabled``, ``history.codebook``, ``items.item_ids``,
``llm.indicator``, ``llm.interests`` with the loss's ``window`` / ``matching``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hymirec.codebook import CodebookConfig
from hymirec.config import Settings
from hymirec.encoders import BackboneConfig
from hymirec.models.item_side import ItemSideConfig
from hymirec.models.sasrec import SASRecConfig


@dataclass
class HistoryConfig(Settings):
    """How the long history is held: ``codebook`` ``cosine`` (the paper's) or ``euclidean``
    compresses every item to ``layers`` codes (+ scales) that are decoded on demand; ``none``
    reads the raw item vectors (the ablation that costs ``4 * dim`` bytes per item).

    ``codebook_path``: a codebook saved by ``hymirec codebook fit`` / ``hymirec run`` (its variant
    must be ``codebook``); without one, a codebook is fitted on the item vectors when the model
    is built, with ``layers`` / ``k`` / ``scale_dtype`` / ``seed``."""

    codebook: Literal["cosine", "euclidean", "none"] = "cosine"
    codebook_path: str | None = None
    layers: int = 3
    k: int = 64
    scale_dtype: Literal["float16", "float32", "uint8", "uint4"] = "float16"
    seed: int = 0

    def validate(self) -> None:
        if self.codebook not in ("cosine", "euclidean", "none"):
            raise ValueError(f"history.codebook must be cosine, euclidean or none, got {self.codebook!r}")
        if self.codebook != "none" and self.codebook_path is None:
            self.codebook_config()  # raises naming the bad setting

    def codebook_config(self) -> CodebookConfig:
        """The settings a codebook is fitted with when no ``codebook_path`` is given."""
        return CodebookConfig(variant=self.codebook, layers=self.layers, k=self.k,
                              scale_dtype=self.scale_dtype, seed=self.seed)


@dataclass
class LightweightConfig(SASRecConfig):
    """The lightweight recommender: SASRec-style causal blocks of their own width over the
    decoded long history, read out by ``coarse_queries`` (c) learnable queries.
    ``enabled: false`` is the "w/o lightweight recommender" ablation.

    Beyond the paper, so that the branch learns more than c tokens' worth of gradient:
    ``item_ids`` adds item identity to its input (``own``: a table of its own width; ``shared``:
    the model's item vectors, text + ID, projected; ``none``: the decoded text vectors alone, the
    paper's), and ``next_item_weight`` adds a next-item loss at each of its causal states
    (through a linear map to the item space; 0: the paper's)."""

    enabled: bool = True
    item_ids: Literal["none", "own", "shared"] = "none"
    next_item_weight: float = 0.0
    coarse_queries: int = 2
    dim: int = 64
    num_heads: int = 2
    ffn_dim: int = 128
    dropout: float = 0.1
    attention_dropout: float = 0.0
    layer_norm: Literal["query", "pre"] = "pre"

    def validate(self) -> None:
        super().validate()
        if self.coarse_queries < 1:
            raise ValueError(f"lightweight.coarse_queries (c) must be >= 1, got {self.coarse_queries}")
        if not self.next_item_weight >= 0:
            raise ValueError(f"lightweight.next_item_weight must be >= 0, got {self.next_item_weight}")


@dataclass
class LLMRecommenderConfig(Settings):
    """The LLM recommender: a causal LM (``backbone``) read through ``inputs_embeds``;
    ``recent`` (n) last items, ``interests`` (s) learnable refined queries, the ``indicator``
    embedding between the coarse interests and the items (``false``: the ablation), and whether
    the LM's weights train (``trainable``).

    ``query_offset``: each query token is its learnable vector plus the vector of the item it
    follows (the paper's queries are the learnable vectors alone). A randomly initialised LM
    attends almost uniformly at first, so plain queries start as a mean of the window and learn
    slowly which item came last; with the offset they start from it (measured in
    docs/hymirec.md). A pretrained LM does not need it.

    ``readout``: ``query`` reads the interests at the s query tokens (the paper's); ``item`` reads
    the single interest at the item token itself, as HLLM reads its user LM (no query tokens:
    n tokens per window instead of n (1 + s); needs ``interests: 1``). ``next_item_weight`` adds
    HLLM's next-item loss at the item tokens beside the query readout's loss (0: the paper's).
    ``query_init``: ``normal`` (the default, as before) draws the s queries i.i.d. with std
    ``query_scale``; ``orthogonal`` starts them on orthogonal directions, each entry of about
    ``query_scale``, so that Hungarian matching has distinct interests to match from the first
    step. ``dropout`` drops entries of the
    LM's input vectors, ``attention_dropout`` attention weights inside the LM (training only).
    ``head_init``: the linear head from the LM's hidden states to the item space starts
    ``random`` (PyTorch's default, as before) or as the ``identity``, so that at the first step a
    state scores items as the LM's residual stream carries them (HLLM reads that stream with no
    head at all: an untrained random head scrambles it)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    trainable: bool = True
    recent: int = 20
    interests: int = 2
    indicator: bool = True
    query_offset: bool = False
    readout: Literal["query", "item"] = "query"
    next_item_weight: float = 0.0
    query_init: Literal["normal", "orthogonal"] = "normal"
    query_scale: float = 0.02
    dropout: float = 0.0
    attention_dropout: float = 0.0
    head_init: Literal["random", "identity"] = "random"
    context: int = 0

    def validate(self) -> None:
        if self.interests < 1:
            raise ValueError(f"llm.interests (s) must be >= 1, got {self.interests}")
        if self.recent < 1:
            raise ValueError(f"llm.recent (n) must be >= 1, got {self.recent}")
        if self.readout == "item" and self.interests != 1:
            raise ValueError(f"llm.readout: item reads one interest at the item token; llm.interests is {self.interests}")
        if not self.next_item_weight >= 0:
            raise ValueError(f"llm.next_item_weight must be >= 0, got {self.next_item_weight}")
        if not 0 <= self.context < self.recent:
            raise ValueError(f"llm.context (m) must be in [0, llm.recent = {self.recent}), got {self.context}")
        if not self.query_scale > 0:
            raise ValueError(f"llm.query_scale must be > 0, got {self.query_scale}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"llm.{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass
class HyMiRecConfig(Settings):
    """The hybrid model. ``items``: the item vectors (the stage-1 export via ``items.vectors``,
    optionally + a learnable ID embedding); ``windows``: how a training sequence is cut into
    windows of n recent items (``tile``: every position once per epoch; ``sample``:
    ``train_windows`` windows drawn per row, the earlier scheme; see ``models.hymirec.cuts``).
    Each window trains the user states after its items: the long history before the window, the
    window up to the item, the next w items after it as targets."""

    items: ItemSideConfig = field(default_factory=ItemSideConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    lightweight: LightweightConfig = field(default_factory=LightweightConfig)
    llm: LLMRecommenderConfig = field(default_factory=LLMRecommenderConfig)
    windows: Literal["tile", "sample"] = "tile"
    train_windows: int = 1

    def validate(self) -> None:
        if self.items.trainable:
            raise ValueError("items.trainable: stage 2 reads fixed stage-1 vectors (its long history is "
                             "compressed from them); fine-tune the encoder in stage 1")
        check_windows(self.train_windows)


def check_windows(train_windows: int) -> None:
    """The window setting every cut-point model checks (HyMiRec, PatchRec)."""
    if train_windows < 1:
        raise ValueError(f"train_windows must be >= 1, got {train_windows}")

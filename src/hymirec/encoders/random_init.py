"""Randomly initialised backbones built in code: a byte-level tokenizer and Llama/BERT configs.

They need no files at all, so tests and smoke runs can encode text with a tiny model offline.
"""

from __future__ import annotations

from typing import Literal

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import BertConfig, LlamaConfig, PreTrainedConfig, PreTrainedTokenizerFast

from hymirec.encoders.config import BackboneConfig

RandomKind = Literal["random-llama", "random-bert"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
MAX_POSITIONS = 2048


def byte_tokenizer(style: Literal["bert", "llama"]) -> PreTrainedTokenizerFast:
    """A tokenizer with one token per UTF-8 byte plus ``[PAD] [UNK] [CLS] [SEP]`` (260 ids).

    ``bert`` wraps each text as ``[CLS] text [SEP]``; ``llama`` only prepends ``[CLS]`` (the
    begin-of-sequence token), as Llama tokenizers do.
    """
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    # The byte alphabet comes back in no fixed order; sorting keeps token ids stable across runs.
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    # A BPE model without merges emits every byte as its own token.
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    if style == "bert":
        single, pair = "[CLS] $A [SEP]", "[CLS] $A [SEP] $B [SEP]"
    else:
        single, pair = "[CLS] $A", "[CLS] $A $B"
    tokenizer.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        model_max_length=MAX_POSITIONS,
    )


def random_config(
    kind: RandomKind, config: BackboneConfig, tokenizer: PreTrainedTokenizerFast
) -> PreTrainedConfig:
    """The Hugging Face config of a random backbone with ``config``'s sizes and ``tokenizer``'s
    vocabulary and special ids."""
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )
    if kind == "random-bert":
        return BertConfig(**common)
    return LlamaConfig(
        **common,
        num_key_value_heads=config.num_heads,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )

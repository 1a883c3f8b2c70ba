"""Loaders from source file layouts into the canonical ``InteractionDataset``.

The id rule and the handling of bad input are shared by all of them: see ``build``.
"""

from hymirec.data.loaders.build import LoadOptions
from hymirec.data.loaders.hllm import load_hllm_csv
from hymirec.data.loaders.movielens import (
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
)
from hymirec.data.loaders.recbole import load_recbole

__all__ = [
    "LoadOptions",
    "load_hllm_csv",
    "load_movielens_100k",
    "load_movielens_1m",
    "load_movielens_latest",
    "load_recbole",
]

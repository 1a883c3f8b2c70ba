"""Analyses of trained models against known ground truth (e.g. the synthetic generator's labels)."""

from hymirec.analysis.interests import (
    InterestAnalysis,
    analyse_interests,
    interest_top_items,
)

__all__ = ["InterestAnalysis", "analyse_interests", "interest_top_items"]

"""hymirec: hybrid multi-interest LLM-based sequential recommendation (HyMiRec) and its baselines."""

__version__ = "0.1.0"

"""A finished run folder put to use: restored for inference (``RestoredRun``), asked for one user's
recommendations, or scoring every user in batch.

This package sits above ``training`` (which wrote the run and knows how to rebuild its model)
and ``evaluation`` (the evaluator and the glue from a model to user and item vectors); the
pipeline's report, ``hymirec recommend`` and the server build on it.
"""

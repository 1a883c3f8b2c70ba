"""``hymirec serve``: an HTTP recommender over a restored run.

The parts, each in its own module: ``config`` (the settings), ``store`` (the storage interface and
``open_store``) with ``sqlite_store`` (the embedded default), ``users`` (how a model turns stored
events into interests: in one pass, or with the long history's coarse interests summarised
near-line), ``catalogue`` (raw ids, titles, item vectors, popularity; exact retrieval),
``service`` (events in, recommendations out, whatever the transport), ``refresher`` (the
background worker that keeps the summaries fresh), ``metrics`` (Prometheus), ``app`` (the
FastAPI app) and ``cli`` (the command). Everything is built on ``RestoredRun``, never on a
trainer.
"""

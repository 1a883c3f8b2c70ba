"""``hymirec run``: HyMiRec's training recipe as six resumable stages in one run folder.

=========  ===========================================  ==============================================
stage      what it does                                 in the HyMiRec design
=========  ===========================================  ==============================================
data       fetch / load the dataset                     the interaction sequences and item texts
stage1     train the content encoder for                stage 1: the item LLM fine-tuned on the
           recommendation, export its item vectors      next-item task; its item embeddings feed
           (``item_embeddings.safetensors``)            both the codebook and stage 2
codebook   fit the cosine residual codebook on those    the compressed item representation that lets
           vectors (``codebook/``)                      the lightweight recommender read long
                                                        histories at a few bytes per item
stage2     train the HyMiRec model on the exported      stage 2: lightweight recommender over the
           vectors and the codebook                     long history + LLM recommender over the
                                                        recent items, K interests (DMIL)
evaluate   the stage-2 test metrics (``results.json``)  the leave-one-out full-ranking protocol
report     ``report.md``: settings, times, metrics      the comparison with the baselines (table 2)
           beside the baselines, plots, codebook        and per-user multi-interest recommendations
           bytes, top-k of a few users per interest
=========  ===========================================  ==============================================

``config`` holds the typed pipeline settings and the presets (``presets/*.yaml``), ``stages`` the
stage functions and the runner (``stages.json``), ``report`` the report, ``cli`` the ``run`` and
``recommend`` commands.
"""

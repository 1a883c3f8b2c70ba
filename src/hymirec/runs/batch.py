"""Batch scoring: every user's top-k from a restored run into one parquet file.

What offline users do instead of calling the server: users are encoded in chunks exactly as
``hymirec recommend`` encodes one (their whole sequence, the last ``max_len`` items read), the
seen items masked unless kept, interests merged as the run evaluates, and each chunk written as
it is done (a row group per chunk), so memory stays bounded whatever the number of users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from hymirec.data.split import EvalExamples
from hymirec.evaluation.evaluator import Evaluator
from hymirec.evaluation.inference import encode_users
from hymirec.runs.restored import RestoredRun

SCHEMA = pa.schema([("user", pa.string()), ("rank", pa.int32()), ("item", pa.string()),
                    ("score", pa.float32()), ("interest", pa.int32())])


def whole_sequences(run: RestoredRun, users: np.ndarray) -> EvalExamples:
    """The whole sequences of canonical ``users`` as evaluation examples (what a user is
    encoded from when recommending)."""
    sequences = run.split.sequences
    spans = [(sequences.offsets[u - 1], sequences.offsets[u]) for u in users]
    items = np.concatenate([sequences.items[lo:hi] for lo, hi in spans])
    times = np.concatenate([sequences.timestamps[lo:hi] for lo, hi in spans])
    offsets = np.concatenate([[0], np.cumsum([hi - lo for lo, hi in spans])]).astype(np.int64)
    return EvalExamples(users, np.zeros(len(users), np.int64), items, times, offsets)


def recommend_all(
    run: RestoredRun, k: int, out: str | Path, keep_history: bool = False, merge: str | None = None,
    chunk: int = 256, progress: bool = True,
) -> int:
    """Write every user's top ``k`` to the parquet file ``out`` (columns user, rank, item, score,
    interest; raw ids); returns how many rows."""
    dataset = run.split.dataset
    user_ids = dataset.users["raw_id"].astype(str).to_numpy()
    item_ids = np.asarray(dataset.items["raw_id"].astype(str).tolist() + [""])  # item i at i - 1
    catalogue = run.catalogue()
    k = min(k, run.split.n_items)
    evaluator = Evaluator(mask_history=not keep_history)
    users = np.arange(1, dataset.n_users + 1)
    rows = 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(out, SCHEMA) as writer:
        for lo in tqdm(range(0, len(users), chunk), desc="scoring users", unit="chunk", disable=not progress):
            examples = whole_sequences(run, users[lo: lo + chunk])
            with run.autocast():
                vectors = encode_users(run.model, examples, run.max_len, cosine=run.cosine)
            histories = [examples.history(i)[0] for i in range(len(examples))]
            top = evaluator.top_k(vectors, catalogue, histories, k, merge=merge or run.merge)
            # A user who has seen nearly everything has fewer than k unseen items: -inf rows go.
            keep = np.isfinite(top.scores)
            ranks = np.broadcast_to(np.arange(1, k + 1), top.items.shape)
            table = pa.table({"user": np.repeat(user_ids[examples.users - 1], k)[keep.ravel()],
                              "rank": ranks[keep].astype(np.int32), "item": item_ids[top.items[keep] - 1],
                              "score": top.scores[keep].astype(np.float32),
                              "interest": (top.interests[keep] + 1).astype(np.int32)}, schema=SCHEMA)
            writer.write_table(table)
            rows += len(table)
    return rows

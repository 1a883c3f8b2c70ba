"""Synthetic users with known latent interests, for tests and for scale runs.

The generative story:

* each item belongs to one of ``n_clusters`` clusters (sizes balanced to within one item) and its
  texts (``title``, ``tags``, ``description``) are drawn mostly from its cluster's own vocabulary
  of pseudo-words, partly from a shared one, so that text carries the cluster signal;
* each user has ``k`` distinct interests (clusters; ``k`` uniform in ``interests``) with
  Dirichlet(1) weights, and a sequence length drawn from a log-normal around ``mean_seq_len``;
* the user's sequence is a run of segments: at every step the active interest is re-drawn (from
  the weights) with probability ``switch_prob``, so the user switches between interests over
  time, and each step draws an item of the active cluster, popular items more often
  (``popularity_skew``); a fraction ``noise`` of steps draws any item instead;
* timestamps grow within each user by random gaps; with ``repeats=False`` a user's repeated
  items are dropped (first occurrence kept), as in MovieLens.

The labels travel with the dataset: ``items["cluster"]`` (0-based cluster of each item) and
``users["interests"]`` / ``users["interest_weights"]`` (each user's clusters, heaviest first).
Everything is vectorised over users, interactions and (in chunks) items, so 1M items / 100k users
take seconds, not minutes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from hymirec.data.dataset import InteractionDataset

TEXT_FIELDS = ("title", "tags", "description")
# (min words, max words, probability a word comes from the item's cluster vocabulary)
_FIELD_SHAPES = {"title": (2, 4, 0.8), "tags": (2, 4, 1.0), "description": (8, 20, 0.5)}
_SHARED_WORDS = 300
_ITEM_CHUNK = 100_000
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_START_TIME = 1_600_000_000
_MEAN_GAP_SECONDS = 3600.0
# Generation is shown with a progress bar from this many items + interactions on.
_PROGRESS_MIN_WORK = 2_000_000


def generate_synthetic(
    n_users: int = 1000,
    n_items: int = 5000,
    n_clusters: int = 20,
    *,
    interests: tuple[int, int] = (2, 4),
    mean_seq_len: float = 50.0,
    seq_len_sigma: float = 0.5,
    min_seq_len: int = 5,
    max_seq_len: int = 1000,
    switch_prob: float = 0.2,
    noise: float = 0.05,
    popularity_skew: float = 2.0,
    repeats: bool = False,
    words_per_cluster: int = 30,
    seed: int = 0,
    name: str = "synthetic",
    progress: bool | None = None,
) -> InteractionDataset:
    """Generate a dataset whose users draw items from a few latent interest clusters.

    ``interests`` is the inclusive range of interests per user; sequence lengths are log-normal
    with mean ``mean_seq_len`` and log-scale ``seq_len_sigma``, clipped to
    ``[min_seq_len, max_seq_len]`` (before repeats are dropped). ``popularity_skew`` >= 1 is the
    exponent ``a`` of the within-cluster rank ``floor(size * U**a)``: 1 is uniform, larger favours
    a few popular items. ``progress`` shows a bar (``None``: only for large runs on a terminal).
    The same arguments always give the same dataset.
    """
    k_min, k_max = interests
    _check(
        n_users >= 1 and n_items >= 1 and 1 <= n_clusters <= n_items,
        "need n_users >= 1 and 1 <= n_clusters <= n_items",
    )
    _check(1 <= k_min <= k_max <= n_clusters, "interests need 1 <= min <= max <= n_clusters")
    _check(1 <= min_seq_len <= max_seq_len and mean_seq_len > 0, "bad sequence length range")
    _check(0 <= switch_prob <= 1 and 0 <= noise <= 1, "switch_prob and noise must be in [0, 1]")
    _check(popularity_skew >= 1 and words_per_cluster >= 1, "need popularity_skew >= 1, words >= 1")

    rng = np.random.default_rng(seed)
    n_chunks = -(-n_items // _ITEM_CHUNK)
    if progress is None:
        # None lets tqdm decide (shown on a terminal only).
        disable = None if n_items + n_users * mean_seq_len >= _PROGRESS_MIN_WORK else True
    else:
        disable = not progress
    with tqdm(total=n_chunks + 2, desc=f"synthetic {name}", disable=disable) as bar:
        cluster = rng.permutation(np.arange(n_items) % n_clusters)
        vocabulary = _vocabulary(rng, n_clusters * words_per_cluster + _SHARED_WORDS)
        texts = _item_texts(rng, cluster, vocabulary, words_per_cluster, bar)
        user_interests, weights = _user_interests(rng, n_users, n_clusters, k_min, k_max)
        bar.update()
        user, item, timestamp = _sequences(
            rng, cluster, user_interests, weights, mean_seq_len, seq_len_sigma, min_seq_len,
            max_seq_len, switch_prob, noise, popularity_skew, repeats,
        )  # fmt: skip
        bar.update()

    return _dataset(name, user, item, timestamp, texts, cluster, user_interests, weights)


def _dataset(name: str, user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, texts: dict,
             cluster: np.ndarray, user_interests: np.ndarray, weights: np.ndarray) -> InteractionDataset:
    """The canonical dataset of generated interactions, item texts and clusters, and each user's
    interests with their weights (the ground truth the interest analyses compare with)."""
    valid = weights > 0
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
    n_items, n_users = len(cluster), len(weights)
    return InteractionDataset(
        name=name,
        interactions=pd.DataFrame({"user": user, "item": item, "timestamp": timestamp}),
        items=pd.DataFrame(
            {
                "item": np.arange(1, n_items + 1, dtype=np.int64),
                "raw_id": _str_ids(n_items),
                **texts,
                "cluster": cluster.astype(np.int64),
            }
        ),
        users=pd.DataFrame(
            {
                "user": np.arange(1, n_users + 1, dtype=np.int64),
                "raw_id": _str_ids(n_users),
                "interests": _list_column(offsets, user_interests[valid].astype(np.int64)),
                "interest_weights": _list_column(offsets, weights[valid]),
            }
        ),
        text_fields=list(TEXT_FIELDS),
    )


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """``size`` distinct pronounceable pseudo-words (consonant-vowel syllables)."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    length = 2
    while len(syllables) ** length < 4 * size:
        length += 1
    codes = rng.choice(len(syllables) ** length, size=size, replace=False)
    digits = (codes[:, None] // len(syllables) ** np.arange(length)) % len(syllables)
    return ["".join(syllables[d] for d in row) for row in digits.tolist()]


def _item_texts(
    rng: np.random.Generator,
    cluster: np.ndarray,
    vocabulary: list[str],
    per_cluster: int,
    bar: tqdm,
) -> dict[str, pd.Series]:
    """One string column per text field; built in chunks of items straight into Arrow buffers."""
    encoded = [w.encode() for w in vocabulary]
    word_len = np.array([len(w) for w in encoded], dtype=np.int64)
    word_start = np.concatenate([[0], np.cumsum(word_len)[:-1]])
    word_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    shared_start = len(vocabulary) - _SHARED_WORDS
    chunks: dict[str, list[pa.Array]] = {f: [] for f in TEXT_FIELDS}
    for lo in range(0, len(cluster), _ITEM_CHUNK):
        own = cluster[lo : lo + _ITEM_CHUNK]
        for field in TEXT_FIELDS:
            low, high, p_own = _FIELD_SHAPES[field]
            counts = rng.integers(low, high + 1, size=len(own))
            word_cluster = np.repeat(own, counts)
            from_own = rng.random(len(word_cluster)) < p_own
            words = np.where(
                from_own,
                word_cluster * per_cluster + rng.integers(per_cluster, size=len(word_cluster)),
                shared_start + rng.integers(_SHARED_WORDS, size=len(word_cluster)),
            )
            chunks[field].append(_join_words(word_bytes, word_start, word_len, words, counts))
        bar.update()
    dtype = pd.StringDtype("pyarrow", np.nan)  # pandas' default "str" dtype, Arrow-backed
    return {f: pd.Series(pa.chunked_array(c, pa.large_string()), dtype=dtype) for f, c in chunks.items()}


def _join_words(
    word_bytes: np.ndarray,
    word_start: np.ndarray,
    word_len: np.ndarray,
    words: np.ndarray,
    counts: np.ndarray,
) -> pa.Array:
    """Strings ``" ".join(vocabulary[w] for w in row)`` for consecutive rows of ``counts[i]``
    words, gathered byte-wise into one Arrow buffer (a Python join per item is ~2.5x slower)."""
    row_start = np.concatenate([[0], np.cumsum(counts)])
    first = np.zeros(len(words), dtype=bool)
    first[row_start[:-1][counts > 0]] = True
    space = (~first).astype(np.int64)
    length = word_len[words]
    out_end = np.cumsum(length + space)
    out = np.full(out_end[-1] if len(out_end) else 0, ord(" "), dtype=np.uint8)
    # Position of each byte inside its word, then one gather from the vocabulary bytes.
    within = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    source = np.repeat(word_start[words], length) + within
    out[np.repeat(out_end - length, length) + within] = word_bytes[source]
    offsets = np.concatenate([[0], out_end])[row_start]
    return pa.LargeStringArray.from_buffers(len(counts), pa.py_buffer(offsets), pa.py_buffer(out))


def _user_interests(
    rng: np.random.Generator, n_users: int, n_clusters: int, k_min: int, k_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """``[n_users, k_max]`` distinct clusters and their weights (0 beyond each user's ``k``),
    columns sorted by weight, heaviest first."""
    picks = rng.integers(n_clusters, size=(n_users, k_max))
    while True:
        # Re-draw every pick that repeats an earlier one in its row until rows are distinct.
        repeated = np.zeros(picks.shape, dtype=bool)
        for j in range(1, k_max):
            repeated[:, j] = (picks[:, :j] == picks[:, j : j + 1]).any(axis=1)
        if not repeated.any():
            break
        picks[repeated] = rng.integers(n_clusters, size=int(repeated.sum()))
    k = rng.integers(k_min, k_max + 1, size=n_users)
    weights = rng.gamma(1.0, size=(n_users, k_max)) * (np.arange(k_max) < k[:, None])
    weights /= weights.sum(axis=1, keepdims=True)
    order = np.argsort(-weights, axis=1, kind="stable")
    return np.take_along_axis(picks, order, axis=1), np.take_along_axis(weights, order, axis=1)


def _sequences(
    rng: np.random.Generator,
    cluster: np.ndarray,
    interests: np.ndarray,
    weights: np.ndarray,
    mean_len: float,
    sigma: float,
    min_len: int,
    max_len: int,
    switch_prob: float,
    noise: float,
    skew: float,
    repeats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user, item, timestamp)`` int64 arrays (1-based ids), grouped by user, time ascending."""
    n_users = len(interests)
    n_items = len(cluster)
    mu = np.log(mean_len) - sigma**2 / 2
    lengths = np.clip(np.rint(rng.lognormal(mu, sigma, n_users)), min_len, max_len).astype(np.int64)
    user = np.repeat(np.arange(n_users), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    segment_start = rng.random(len(user)) < switch_prob
    segment_start[starts] = True
    segment = np.cumsum(segment_start) - 1
    segment_user = user[segment_start]
    cumulative = np.cumsum(weights, axis=1)
    draw = rng.random(len(segment_user))
    slot = (cumulative[segment_user] <= draw[:, None]).sum(axis=1)
    # Rounding can push the draw past the last real interest; clamp to it.
    slot = np.minimum(slot, (weights[segment_user] > 0).sum(axis=1) - 1)
    active = interests[segment_user, slot][segment]

    by_cluster = np.argsort(cluster, kind="stable")
    size = np.bincount(cluster)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.floor(size[active] * rng.random(len(user)) ** skew).astype(np.int64)
    item = by_cluster[first[active] + rank]
    random_pick = rng.random(len(user)) < noise
    item[random_pick] = rng.integers(n_items, size=int(random_pick.sum()))

    gaps = 1 + np.floor(rng.exponential(_MEAN_GAP_SECONDS, len(user))).astype(np.int64)
    elapsed = np.cumsum(gaps)
    before = elapsed[starts] - gaps[starts]
    first_time = _START_TIME + rng.integers(0, 365 * 86400, size=n_users)
    timestamp = first_time[user] + elapsed - before[user]

    if not repeats:
        keep = ~pd.Series(user * n_items + item).duplicated().to_numpy()
        user, item, timestamp = user[keep], item[keep], timestamp[keep]
    return user + 1, item + 1, timestamp


def _str_ids(n: int) -> pd.Series:
    return pd.Series(np.arange(1, n + 1)).astype("str")


def _list_column(offsets: np.ndarray, values: np.ndarray) -> pd.Series:
    # An object column of arrays: it round-trips through parquet (as list<...>) and reads back
    # the same way, which Arrow list dtypes do not in this pandas version.
    return pd.Series(np.split(values, offsets[1:-1]), dtype=object)

import time

import numpy as np
import pandas as pd
import pytest

from hymirec.data.dataset import InteractionDataset
from hymirec.data.synthetic import generate_synthetic


def small(**kwargs):
    kwargs = {"n_users": 300, "n_items": 600, "n_clusters": 6, "mean_seq_len": 30.0, **kwargs}
    return generate_synthetic(**kwargs)


def test_deterministic_for_a_seed():
    a, b, c = small(seed=3), small(seed=3), small(seed=4)
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.interactions.equals(c.interactions)


def test_labels_and_canonical_form():
    ds = small(interests=(2, 3))
    assert ds.n_users == 300 and ds.n_items == 600
    assert ds.text_fields == ["title", "tags", "description"]
    assert np.bincount(ds.items["cluster"]).tolist() == [100] * 6  # balanced clusters
    assert set(ds.interactions["user"]) == set(range(1, 301))  # every user has a sequence
    for interests, weights in zip(ds.users["interests"], ds.users["interest_weights"]):
        assert 2 <= len(interests) <= 3
        assert len(set(interests.tolist())) == len(interests)
        assert np.isclose(weights.sum(), 1.0) and np.all(np.diff(weights) <= 0)


def test_users_draw_from_their_interests_and_switch_between_them():
    ds = small(noise=0.0, interests=(3, 3), switch_prob=0.3)
    cluster = ds.items["cluster"].to_numpy()[ds.interactions["item"].to_numpy() - 1]
    user = ds.interactions["user"].to_numpy()
    interests = ds.users["interests"].to_list()
    assert all(c in interests[u - 1] for u, c in zip(user, cluster))
    # Several interests show up in one sequence, in runs: consecutive steps mostly stay put.
    distinct = pd.Series(cluster).groupby(user).nunique()
    assert (distinct >= 2).mean() > 0.9
    same_user = user[1:] == user[:-1]
    stay = (cluster[1:] == cluster[:-1])[same_user].mean()
    assert 0.6 < stay < 0.95


def test_text_carries_the_cluster_signal():
    ds = small()
    # Tags come only from the item's cluster vocabulary: no tag word is shared across clusters.
    words = ds.items.assign(word=ds.items["tags"].str.split()).explode("word")
    assert (words.groupby("word")["cluster"].nunique() == 1).all()
    # Descriptions mix in shared words, yet their cluster words alone recover the cluster.
    word_cluster = words.drop_duplicates("word").set_index("word")["cluster"]
    desc = ds.items.assign(word=ds.items["description"].str.split()).explode("word")
    desc = desc.assign(vote=desc["word"].map(word_cluster)).dropna(subset=["vote"])
    votes = desc.groupby(["item", "vote"]).size().unstack(fill_value=0)
    guessed = votes.idxmax(axis=1).astype(int)
    assert (guessed == ds.items.set_index("item")["cluster"].loc[guessed.index]).mean() > 0.95


def test_time_increases_per_user_and_no_repeats_by_default():
    ds = small()
    inter = ds.interactions
    same_user = inter["user"].to_numpy()[1:] == inter["user"].to_numpy()[:-1]
    assert (np.diff(inter["timestamp"].to_numpy())[same_user] > 0).all()
    assert not inter.duplicated(["user", "item"]).any()
    assert small(repeats=True, n_items=60).interactions.duplicated(["user", "item"]).any()


def test_sequence_lengths_follow_the_settings():
    ds = small(mean_seq_len=20.0, min_seq_len=5, max_seq_len=40, repeats=True)
    lengths = ds.interactions.groupby("user").size()
    assert lengths.min() >= 5 and lengths.max() <= 40
    assert 15 < lengths.mean() < 25


def test_round_trip_keeps_labels(tmp_path):
    ds = small()
    loaded = InteractionDataset.load(ds.save(tmp_path / "syn"))
    pd.testing.assert_frame_equal(loaded.items, ds.items)
    assert [list(x) for x in loaded.users["interests"]] == [list(x) for x in ds.users["interests"]]


def test_invalid_settings():
    with pytest.raises(ValueError, match="interests"):
        small(interests=(3, 7))
    with pytest.raises(ValueError, match="n_clusters"):
        generate_synthetic(10, 5, 6)


def test_moderate_scale_is_fast():
    start = time.perf_counter()
    ds = generate_synthetic(10_000, 100_000, 50, seed=0)
    elapsed = time.perf_counter() - start
    assert ds.n_items == 100_000 and len(ds.interactions) > 400_000
    assert elapsed < 5.0, f"100k items / 10k users took {elapsed:.1f}s"

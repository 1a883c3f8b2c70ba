import pandas as pd
import pytest

from hymirec.data import paths
from hymirec.data.dataset import InteractionDataset
from hymirec.data.fetch import ML100K, cached_raw_files
from hymirec.data.loaders.movielens import load_movielens_100k
from hymirec.data.stats import dataset_stats, format_stats


def toy():
    return InteractionDataset(
        name="toy",
        interactions=pd.DataFrame(
            {"user": [1, 1, 1, 2], "item": [1, 2, 1, 2], "timestamp": [3, 1, 2, 5]}
        ),
        items=pd.DataFrame(
            {
                "item": [1, 2, 3],
                "raw_id": ["a", "b", "c"],
                "title": ["Red  shoe", "", "Hat"],
                "tag": ["x y", "z", ""],
            }
        ),
        users=pd.DataFrame({"user": [1, 2], "raw_id": ["u", "v"]}),
        text_fields=["title", "tag"],
        repairs={"duplicate_rows_dropped": 2},
    )


def test_stats_definitions():
    stats = dataset_stats(toy())
    assert stats["users"] == 2 and stats["items"] == 3 and stats["interactions"] == 4
    assert stats["avg_seq_len"] == 2.0
    assert (stats["min_seq_len"], stats["median_seq_len"], stats["max_seq_len"]) == (1, 2.0, 3)
    # Words of all text fields together: (2 + 2) + (0 + 1) + (1 + 0) = 6 over 3 items.
    assert stats["avg_text_words"] == 2.0
    assert stats["items_never_interacted"] == 1
    assert stats["repairs"] == {"duplicate_rows_dropped": 2}


def test_table_has_one_column_per_dataset():
    table = format_stats(
        [dataset_stats(toy()), {**dataset_stats(toy()), "name": "other", "repairs": {}}]
    )
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["statistic", "toy", "other"]
    assert [c.strip() for c in lines[4].split("|")[1:-1]] == ["interactions", "4", "4"]
    assert "duplicate_rows_dropped=2" in table and "none" in table
    assert len({len(line) for line in lines}) == 1  # aligned


def test_movielens_100k_stats(ml100k):
    """On the committed MovieLens-100K-format sample (see ``tests/data/ml-100k-sample``)."""
    stats = dataset_stats(ml100k)
    assert (stats["users"], stats["items"], stats["interactions"]) == (30, 40, 300)
    assert stats["repairs"] == {}
    assert stats["avg_seq_len"] == 10.0
    assert (stats["min_seq_len"], stats["median_seq_len"], stats["max_seq_len"]) == (6, 9.5, 14)
    assert stats["items_never_interacted"] == 2
    # As in the real file, most ratings share their second with another rating of the same user.
    shared = ml100k.interactions.duplicated(["user", "timestamp"], keep=False).sum()
    assert shared == 255


def test_movielens_100k_stats_real_data():
    """The real MovieLens-100K: runs only where ``hymirec data fetch movielens-100k`` has cached
    its raw files in the shared data directory (nothing is downloaded here)."""
    raw = paths.raw_path(ML100K)
    if not cached_raw_files(raw):
        pytest.skip(f"no verified MovieLens-100K files in {raw}")
    dataset = load_movielens_100k(raw)
    stats = dataset_stats(dataset)
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100_000)
    assert stats["repairs"] == {}
    assert round(stats["avg_seq_len"], 2) == 106.04
    shared = dataset.interactions.duplicated(["user", "timestamp"], keep=False).sum()
    assert shared == 75_772

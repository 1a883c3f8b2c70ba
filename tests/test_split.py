import pytest
import numpy as np

from hymirec.data.batching import pad_right, training_windows
from hymirec.data.split import ChronologicalSplit, build_sequences
from helpers import make_dataset


def test_stable_chronological_order_keeps_source_order_for_ties():
    # user 1: items 5, 3, 4 share timestamp 10 and must keep file order; item 2 is earlier.
    ds = make_dataset([(1, 5, 10), (1, 3, 10), (1, 2, 5), (1, 4, 10), (2, 1, 1), (2, 2, 2), (2, 3, 3)])
    seqs = build_sequences(ds)
    items, times = seqs.user(1)
    assert items.tolist() == [2, 5, 3, 4]
    assert times.tolist() == [5, 10, 10, 10]
    assert seqs.user(2)[0].tolist() == [1, 2, 3]


def test_leave_one_out_targets_and_histories():
    ds = make_dataset([(1, i, i) for i in range(1, 7)] + [(2, 3, 1), (2, 1, 2), (2, 2, 3)])
    split = ChronologicalSplit(ds)
    valid, test = split.examples("valid"), split.examples("test")
    assert valid.users.tolist() == [1, 2]
    assert valid.targets.tolist() == [5, 1]
    assert test.targets.tolist() == [6, 2]
    assert valid.history(0)[0].tolist() == [1, 2, 3, 4]
    assert test.history(0)[0].tolist() == [1, 2, 3, 4, 5]
    assert test.history(1)[0].tolist() == [3, 1]
    assert [s[0].tolist() for s in split.train_sequences()] == [[1, 2, 3, 4], [3]]


def test_short_users_train_only_and_are_not_evaluated():
    ds = make_dataset([(1, 1, 1), (1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 3, 3), (3, 4, 1)])
    split = ChronologicalSplit(ds)
    assert split.examples("test").users.tolist() == [2]
    assert [s[0].tolist() for s in split.train_sequences()] == [[1, 2], [1], [4]]


def test_no_valid_or_test_item_leaks_into_training():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, 40):
        for t in range(int(rng.integers(3, 30))):
            # Every interaction gets its own item id, so an item id names one position of one
            # user's sequence, and timestamps with many ties exercise the stable sort.
            rows.append((u, len(rows) + 1, int(rng.integers(0, 5))))
    ds = make_dataset(rows, n_items=len(rows))
    split = ChronologicalSplit(ds)
    seqs = split.sequences
    windows = training_windows(split.train_sequences(), max_len=7)
    # The items at each evaluated user's last two chronological positions are validation/test.
    held_out = set()
    for u in split.eval_users:
        end = seqs.offsets[u]
        held_out |= {int(seqs.items[end - 2]), int(seqs.items[end - 1])}
    assert len(held_out) == 2 * len(split.eval_users)
    assert held_out == set(split.examples("valid").targets) | set(split.examples("test").targets)
    seen_inputs, seen_targets = set(), set()
    for inputs, times, targets in windows:
        assert len(inputs) == len(targets) == len(times) <= 7
        seen_inputs |= set(inputs.tolist())
        seen_targets |= set(targets.tolist())
    # No window input or target is a validation/test position, and every other next-item pair
    # is trained on exactly once.
    assert not (seen_inputs | seen_targets) & held_out
    train_pairs = sum(max(len(items) - 1, 0) for items, _ in split.train_sequences())
    assert sum(len(w[2]) for w in windows) == train_pairs == len(seen_targets)


def test_training_windows_cut_long_sequences_into_max_len_chunks():
    seq = (np.arange(1, 12), np.arange(1, 12))  # 11 items -> 10 next-item pairs
    windows = training_windows([seq], max_len=4)
    assert [w[0].tolist() for w in windows] == [[7, 8, 9, 10], [3, 4, 5, 6], [1, 2]]
    assert [w[2].tolist() for w in windows] == [[8, 9, 10, 11], [4, 5, 6, 7], [2, 3]]


def test_a_phase_moves_the_boundaries_before_the_most_recent_window():
    seq = (np.arange(1, 12), np.arange(1, 12))  # 10 next-item pairs
    windows = training_windows([seq], max_len=4, phases=np.array([3]))
    assert [w[0].tolist() for w in windows] == [[7, 8, 9, 10], [4, 5, 6], [1, 2, 3]]
    assert [w[2].tolist() for w in windows] == [[8, 9, 10, 11], [5, 6, 7], [2, 3, 4]]
    assert training_windows([seq], 4, np.array([0]))[1][0].tolist() == [3, 4, 5, 6]
    short = (np.arange(1, 8), np.arange(1, 8))  # 6 pairs: a phase of 1 leaves windows of 1 and 1
    assert [w[0].tolist() for w in training_windows([short], 4, np.array([1]))] == [[3, 4, 5, 6], [2], [1]]
    for phase in range(4):  # every pair exactly once, whatever the phase
        targets = np.concatenate([w[2] for w in training_windows([seq], 4, np.array([phase]))])
        assert sorted(targets.tolist()) == list(range(2, 12))


def test_window_context_reads_earlier_items_without_training_them_twice():
    seq = (np.arange(1, 12), np.arange(1, 12))  # 10 next-item pairs
    windows = training_windows([seq], max_len=4, context=2)
    assert [w[0].tolist() for w in windows] == [[7, 8, 9, 10], [5, 6, 7, 8], [3, 4, 5, 6], [1, 2, 3, 4]]
    assert [w[2].tolist() for w in windows] == [[0, 0, 10, 11], [0, 0, 8, 9], [0, 0, 6, 7], [2, 3, 4, 5]]
    for phase in range(2):  # every pair exactly once; each sees >= 2 items before it, or all there are
        for inputs, _, targets in training_windows([seq], 4, np.array([phase]), context=2):
            assert len(inputs) <= 4
            assert all(i >= 2 or inputs[0] == 1 for i in np.flatnonzero(targets))
        targets = np.concatenate([w[2] for w in training_windows([seq], 4, np.array([phase]), context=2)])
        assert sorted(targets[targets > 0].tolist()) == list(range(2, 12))
    with pytest.raises(ValueError, match="window_context"):
        training_windows([seq], max_len=4, context=4)


def test_pad_right():
    out = pad_right([np.array([1, 2]), np.array([3])])
    assert out.tolist() == [[1, 2], [3, 0]]


def test_test_window_holds_out_the_last_w_items():
    # user 1 has 7 items, user 2 has 4 (< w + 2 = 5: trained on whole, not evaluated).
    ds = make_dataset([(1, i, i) for i in range(1, 8)] + [(2, i, i) for i in range(1, 5)], n_items=7)
    split = ChronologicalSplit(ds, test_window=3)
    valid, test = split.examples("valid"), split.examples("test")
    assert valid.users.tolist() == test.users.tolist() == [1]
    assert valid.targets.tolist() == [4] and valid.history(0)[0].tolist() == [1, 2, 3]
    assert test.targets.tolist() == [5] and test.history(0)[0].tolist() == [1, 2, 3, 4]
    assert test.windows.tolist() == [[5, 6, 7]] and valid.windows is None
    assert [s[0].tolist() for s in split.train_sequences()] == [[1, 2, 3], [1, 2, 3, 4]]
    assert split.split_summary() == {"test_window": 3, "eval_users": 1, "too_short": 1, "cold_items": 0}
    # w = 1 is leave-one-out exactly.
    assert ChronologicalSplit(ds, test_window=1).examples("test").targets.tolist() == [7, 4]


def test_no_window_item_leaks_into_training():
    rows = [(u, 10 * u + t, t) for u in range(1, 6) for t in range(1, 10)]
    split = ChronologicalSplit(make_dataset(rows, n_items=60), test_window=4)
    trained = {int(i) for s in split.train_sequences() for i in s[0]}
    test = split.examples("test")
    assert not trained & set(test.windows.ravel().tolist())
    assert not trained & set(split.examples("valid").targets.tolist())


@pytest.mark.parametrize("kwargs,match", [
    ({"test_window": 0}, "data.test_window must be >= 1"),
    ({"test_window": 9}, "data.test_window=9 leaves no user to evaluate"),
    ({"cold_items": 1.0}, r"data.cold_items must be a share in \(0, 1\)"),
    ({"cold_items": -0.1}, r"data.cold_items must be a share in \(0, 1\)"),
])
def test_split_options_out_of_range_name_the_setting(kwargs, match):
    ds = make_dataset([(1, i, i) for i in range(1, 8)])
    with pytest.raises(ValueError, match=match):
        ChronologicalSplit(ds, **kwargs)


def test_cold_items_never_appear_in_training_and_evaluation_is_untouched():
    rng = np.random.default_rng(1)
    rows = [(u, int(rng.integers(1, 51)), t) for u in range(1, 30) for t in range(20)]
    ds = make_dataset(rows, n_items=50)
    plain, cold = ChronologicalSplit(ds), ChronologicalSplit(ds, cold_items=0.3, cold_seed=7)
    assert cold.cold.sum() == 15 and not cold.cold[0]
    assert np.array_equal(cold.cold, ChronologicalSplit(ds, cold_items=0.3, cold_seed=7).cold)  # seeded
    trained = np.concatenate([s[0] for s in cold.train_sequences()])
    assert not cold.cold[trained].any()
    for stage in ("valid", "test"):
        a, b = plain.examples(stage), cold.examples(stage)
        assert np.array_equal(a.targets, b.targets) and np.array_equal(a.history_items, b.history_items)
    # Training keeps every warm item in order.
    for (p, _), (c, _) in zip(plain.train_sequences(), cold.train_sequences()):
        assert c.tolist() == [i for i in p.tolist() if not cold.cold[i]]


def test_without_the_whole_prefix_every_window_trains_at_most_max_len_minus_context_pairs():
    seq = (np.arange(1, 12), np.arange(1, 12))  # 10 next-item pairs
    windows = training_windows([seq], max_len=4, context=2, whole_prefix=False)
    assert [w[0].tolist() for w in windows] == [[7, 8, 9, 10], [5, 6, 7, 8], [3, 4, 5, 6], [1, 2, 3, 4], [1, 2]]
    assert [w[2].tolist() for w in windows] == [[0, 0, 10, 11], [0, 0, 8, 9], [0, 0, 6, 7], [0, 0, 4, 5], [2, 3]]
    for phase in range(2):
        cut = training_windows([seq], 4, np.array([phase]), context=2, whole_prefix=False)
        assert all(0 < (w[2] > 0).sum() <= 2 for w in cut)
        targets = np.concatenate([w[2] for w in cut])
        assert sorted(targets[targets > 0].tolist()) == list(range(2, 12))


import numpy as np

from hymirec.data.batching import pad_right, training_windows
from hymirec.data.split import LeaveOneOutSplit, build_sequences
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
    split = LeaveOneOutSplit(ds)
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
    split = LeaveOneOutSplit(ds)
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
    split = LeaveOneOutSplit(ds)
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


def test_pad_right():
    out = pad_right([np.array([1, 2]), np.array([3])])
    assert out.tolist() == [[1, 2], [3, 0]]

"""Task builders and splits: properties checked on random labels (hypothesis) and on real digits."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synapse.data import (Dataset, few_shot, load_dataset, permutations, permuted_tasks, split_tasks,
                          train_val_split)
from synapse.errors import ConfigError, DataError

SETTINGS = settings(max_examples=40, deadline=None)


def _toy(n_train=200, n_test=50, d=12, n_classes=10, seed=0, with_val=False):
    rng = np.random.default_rng(seed)
    x = lambda n: rng.random((n, d), dtype=np.float32)  # noqa: E731
    y = lambda n: np.arange(n, dtype=np.int64) % n_classes  # noqa: E731
    val = (x(30), y(30)) if with_val else (None, None)
    return Dataset("toy", "random toy data", x(n_train), y(n_train), x(n_test), y(n_test),
                   (1, 3, 4), n_classes, *val)


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn", reason="8x8 digits come with scikit-learn")
    return load_dataset("digits", log=lambda m: None)


# ------------------------------------------------------------------ permuted


@SETTINGS
@given(d=st.integers(1, 300), n_tasks=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_permutations_are_real_and_seeded(d, n_tasks, seed):
    perms = permutations(d, n_tasks, seed)
    assert perms.shape == (n_tasks, d)
    assert np.array_equal(perms[0], np.arange(d))
    for p in perms:
        assert np.array_equal(np.sort(p), np.arange(d))
    assert np.array_equal(perms, permutations(d, n_tasks, seed))


def test_permuted_tasks_same_permutation_for_every_split():
    ds = _toy(with_val=True)
    tasks = permuted_tasks(ds, 4, seed=5)
    assert [t.name for t in tasks] == [f"permutation {i}" for i in range(4)]
    assert np.array_equal(tasks[0].x_train, ds.x_train)  # task 0 unpermuted
    for t in tasks:
        p = t.permutation
        assert np.array_equal(t.x_train, ds.x_train[:, p])
        assert np.array_equal(t.x_test, ds.x_test[:, p])
        assert np.array_equal(t.x_val, ds.x_val[:, p])
        assert t.y_train is ds.y_train and t.classes is None
    assert not np.array_equal(tasks[1].permutation, tasks[2].permutation)
    again = permuted_tasks(ds, 4, seed=5)
    other = permuted_tasks(ds, 4, seed=6)
    assert all(np.array_equal(a.permutation, b.permutation) for a, b in zip(tasks, again))
    assert not np.array_equal(tasks[1].permutation, other[1].permutation)


def test_permuted_tasks_on_real_digits(digits):
    tasks = permuted_tasks(digits, 3)
    # a pixel permutation keeps every image's multiset of values
    assert np.array_equal(np.sort(tasks[2].x_test, axis=1), np.sort(digits.x_test, axis=1))


# ------------------------------------------------------------------ split


@SETTINGS
@given(groups=st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True),
                       min_size=1, max_size=5))
def test_split_tasks_hold_only_their_classes(groups):
    ds = _toy(with_val=True)
    for group, task in zip(groups, split_tasks(ds, groups)):
        assert task.classes == tuple(group)
        for y in (task.y_train, task.y_test, task.y_val):
            assert set(np.unique(y)) == set(group)
        assert len(task.y_train) == np.isin(ds.y_train, group).sum()


def test_split_mnist_default_groups(digits):
    tasks = split_tasks(digits)
    assert [t.name for t in tasks] == ["digits 0/1", "digits 2/3", "digits 4/5", "digits 6/7", "digits 8/9"]
    assert sum(len(t.y_train) for t in tasks) == len(digits.y_train)
    assert sum(len(t.y_test) for t in tasks) == len(digits.y_test)
    assert tasks[3].y_train.min() == 6 and tasks[3].y_train.max() == 7  # labels keep their values


def test_split_tasks_missing_class():
    with pytest.raises(DataError, match="toy.y_train: no training examples of class\\(es\\) \\[4, 5\\]"):
        split_tasks(_six_of_four(), ((2, 3), (4, 5)))
    with pytest.raises(ConfigError, match="groups: class\\(es\\) \\[12\\] of group \\(2, 12\\)"):
        split_tasks(_toy(), ((0, 1), (2, 12)))


def _six_of_four():
    """A six-class dataset whose examples use only classes 0..3."""
    ds = _toy(n_classes=4)
    return Dataset("toy", ds.source, ds.x_train, ds.y_train, ds.x_test, ds.y_test, (1, 3, 4), 6)


def test_split_tasks_never_drop_labels_outside_the_classes():
    """10 of 200 training labels set to 200: refused with the array and values, not skipped."""
    ds = _toy()
    y = ds.y_train.copy()
    y[:10] = 200
    with pytest.raises(DataError) as info:
        Dataset("toy", ds.source, ds.x_train, y, ds.x_test, ds.y_test, (1, 3, 4), 10)
    assert str(info.value) == ("toy.y_train: 10 of 200 labels are outside the 10 classes 0..9 "
                               "(values 200)")
    ds.y_train = y  # changed after construction: split_tasks checks again
    with pytest.raises(DataError, match="toy.y_train: 10 of 200 labels"):
        split_tasks(ds)


# ------------------------------------------------------------------ few-shot


@SETTINGS
@given(counts=st.lists(st.integers(3, 30), min_size=2, max_size=10), k=st.integers(1, 3),
       seed=st.integers(0, 1000))
def test_few_shot_exactly_k_per_class(counts, k, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    x = np.arange(len(y))[:, None]  # x remembers each row's index
    xs, ys = few_shot(x, y, k, seed)
    assert np.all(np.bincount(ys, minlength=len(counts)) == k)
    assert np.array_equal(y[xs[:, 0]], ys) and len(np.unique(xs)) == len(xs)
    xs2, ys2 = few_shot(x, y, k, seed)
    assert np.array_equal(xs, xs2) and np.array_equal(ys, ys2)


def test_few_shot_too_few(digits):
    x, y = few_shot(digits.x_train, digits.y_train, 10, seed=0)
    assert len(y) == 100 and np.all(np.bincount(y) == 10)
    with pytest.raises(ValueError, match="fewer than k=1000"):
        few_shot(digits.x_train, digits.y_train, 1000)


# ------------------------------------------------------------------ train/val


@SETTINGS
@given(counts=st.lists(st.integers(4, 40), min_size=2, max_size=6),
       frac=st.floats(0.2, 0.5), seed=st.integers(0, 1000))
def test_train_val_split_stratified_disjoint_seeded(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    x = np.arange(len(y))[:, None]
    x_tr, y_tr, x_val, y_val = train_val_split(x, y, frac, seed)
    assert sorted(np.concatenate([x_tr[:, 0], x_val[:, 0]]).tolist()) == list(range(len(y)))
    for c, n in enumerate(counts):
        assert (y_val == c).sum() == round(frac * n)
    assert np.array_equal(x_val, train_val_split(x, y, frac, seed)[2])


def test_train_val_split_rejects_bad_fraction():
    with pytest.raises(ValueError):
        train_val_split(np.zeros((10, 1)), np.zeros(10, int), 1.0)

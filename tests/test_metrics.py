import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from synapse.metrics import (average_accuracy, backward_transfer, forgetting, mean_seen_accuracy,
                             mean_sem, summarize)

nan = np.nan
# After task 0: 0.9 on task 0. After task 1: 0.8, 0.95. After task 2: 0.7, 0.85, 0.99.
R3 = np.array([[0.90, nan, nan],
               [0.80, 0.95, nan],
               [0.70, 0.85, 0.99]])


def test_hand_computed_matrix():
    assert average_accuracy(R3) == pytest.approx((0.70 + 0.85 + 0.99) / 3)
    assert backward_transfer(R3) == pytest.approx(((0.70 - 0.90) + (0.85 - 0.95)) / 2)
    f, mean_f = forgetting(R3)
    np.testing.assert_allclose(f, [0.20, 0.10])
    assert mean_f == pytest.approx(0.15)
    np.testing.assert_allclose(mean_seen_accuracy(R3), [0.90, (0.80 + 0.95) / 2,
                                                        (0.70 + 0.85 + 0.99) / 3])


def test_forgetting_uses_the_best_earlier_accuracy_not_the_diagonal():
    # Task 0 improves after task 1 (positive transfer), then drops: max is R[1, 0], not R[0, 0].
    R = np.array([[0.80, nan, nan],
                  [0.90, 0.95, nan],
                  [0.85, 0.95, 0.97]])
    f, _ = forgetting(R)
    np.testing.assert_allclose(f, [0.05, 0.0], atol=1e-12)
    assert backward_transfer(R) == pytest.approx(((0.85 - 0.80) + 0.0) / 2)  # BWT > 0 here


def test_single_task():
    R = np.array([[0.97]])
    assert average_accuracy(R) == pytest.approx(0.97)
    assert backward_transfer(R) == 0.0
    f, mean_f = forgetting(R)
    assert f.shape == (0,) and mean_f == 0.0
    np.testing.assert_allclose(mean_seen_accuracy(R), [0.97])


def test_summarize_is_json_ready():
    s = summarize(R3)
    assert set(s) == {"acc", "bwt", "forgetting", "mean_forgetting", "mean_seen_accuracy"}
    assert isinstance(s["acc"], float) and isinstance(s["forgetting"], list)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 3)), "square"),
    (np.zeros(3), "square"),
    (np.zeros((2, 2, 2)), "square"),
    (np.zeros((0, 0)), "T >= 1"),
    (np.array([[0.9, nan], [nan, 0.8]]), "R[1, 0]"),
])
def test_bad_matrices_get_clear_errors(bad, words):
    for metric in (average_accuracy, backward_transfer, forgetting, mean_seen_accuracy):
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            metric(bad)


def test_mean_sem():
    m, s = mean_sem([1.0, 2.0, 3.0, 4.0])
    assert m == pytest.approx(2.5)
    assert s == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    m, s = mean_sem([0.7])
    assert m == pytest.approx(0.7) and s == 0.0
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    m, s = mean_sem(x, axis=0)
    np.testing.assert_allclose(m, [3.0, 6.0])
    np.testing.assert_allclose(s, np.std(x, axis=0, ddof=1) / np.sqrt(3))
    m, s = mean_sem(x, axis=1)
    np.testing.assert_allclose(m, [1.5, 4.5, 7.5])
    # NaN entries (unseen tasks) are left out of n, and an all-NaN column is NaN, silently.
    m, s = mean_sem(np.array([[1.0, nan], [3.0, nan]]))
    np.testing.assert_allclose(m, [2.0, nan])
    assert np.isnan(s[1])
    with pytest.raises(ValueError):
        mean_sem(3.0)


def lower_triangular(T, fill):
    R = np.full((T, T), np.nan)
    for i in range(T):
        R[i, :i + 1] = fill[i, :i + 1]
    return R


# Square (T, T) matrices of accuracies in [0, 1], T = 1..6.
accs = arrays(np.float64, st.integers(1, 6).map(lambda T: (T, T)), elements=st.floats(0, 1))


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 8))
def test_perfect_learner(T):
    R = lower_triangular(T, np.ones((T, T)))
    assert average_accuracy(R) == 1.0
    assert backward_transfer(R) == 0.0
    assert forgetting(R)[1] == 0.0
    np.testing.assert_array_equal(mean_seen_accuracy(R), np.ones(T))


@settings(max_examples=80, deadline=None)
@given(A=accs)
def test_only_decreasing_accuracies(A):
    # Make every column non-increasing down the rows: the max is on the diagonal.
    T = A.shape[0]
    R = lower_triangular(T, np.minimum.accumulate(A, axis=0))
    f, mean_f = forgetting(R)
    assert (f >= 0).all()
    assert backward_transfer(R) == pytest.approx(-mean_f, abs=1e-12)
    np.testing.assert_allclose(f, np.diag(R)[:-1] - R[-1, :-1], atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(A=accs)
def test_general_properties(A):
    T = A.shape[0]
    R = lower_triangular(T, A)
    f, mean_f = forgetting(R)
    # The max runs over rows j..T-2, so it is at least the diagonal; f < 0 only when the last
    # task improved an earlier one (backward transfer beyond the best so far).
    np.testing.assert_array_less(np.diag(R)[:-1] - R[-1, :-1] - 1e-12, f)
    assert -mean_f <= backward_transfer(R) + 1e-12   # hence BWT >= -mean forgetting always
    assert 0.0 <= average_accuracy(R) <= 1.0
    seen = mean_seen_accuracy(R)
    assert seen.shape == (T,) and seen[-1] == pytest.approx(average_accuracy(R))
    # Values above the diagonal are never read.
    junk = R.copy()
    junk[np.triu_indices(T, 1)] = 123.0
    assert average_accuracy(junk) == average_accuracy(R)
    np.testing.assert_allclose(mean_seen_accuracy(junk), seen)
    np.testing.assert_allclose(forgetting(junk)[0], f)

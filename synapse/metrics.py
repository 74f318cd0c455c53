"""Continual-learning metrics on an accuracy matrix (Lopez-Paz & Ranzato, GEM 2017).

``R[i, j]`` is the test accuracy on task ``j`` after training on tasks ``0..i`` (``T`` tasks,
shape ``(T, T)``). Entries above the diagonal (tasks not yet seen) may be NaN; they are never read
except by :func:`average_accuracy`, which reads only the last row.

With 0-based indices (the GEM paper counts from 1):

.. math::

    \\mathrm{ACC} = \\frac{1}{T} \\sum_{j=0}^{T-1} R_{T-1, j}

    \\mathrm{BWT} = \\frac{1}{T-1} \\sum_{i=0}^{T-2} \\left(R_{T-1, i} - R_{i, i}\\right)

    f_j = \\max_{i < T-1} R_{i, j} - R_{T-1, j}, \\qquad j < T-1

Host-side NumPy only: these run once per experiment on a few dozen numbers.
"""
import numpy as np

__all__ = [
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "mean_seen_accuracy",
    "mean_seen_over_seeds",
    "mean_sem",
    "summarize",
]


def _check_matrix(R):
    """Return ``R`` as a float64 (T, T) array with T >= 1, or raise ValueError."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(
            f"accuracy matrix must be square (T, T) with R[i, j] = accuracy on task j after "
            f"training task i; got shape {R.shape}"
        )
    if R.shape[0] < 1:
        raise ValueError("accuracy matrix must hold at least one task (T >= 1); got T = 0")
    seen = np.tril(np.ones(R.shape, dtype=bool))
    if np.isnan(R[seen]).any():
        i, j = np.argwhere(np.isnan(R) & seen)[0]
        raise ValueError(
            f"accuracy matrix has NaN at R[{i}, {j}] on or below the diagonal; only tasks not yet "
            f"seen (j > i) may be NaN"
        )
    return R


def average_accuracy(R):
    """ACC: mean accuracy over all T tasks after training the last one, ``mean_j R[T-1, j]``."""
    R = _check_matrix(R)
    return float(R[-1].mean())


def backward_transfer(R):
    """BWT: mean change in accuracy on earlier tasks, ``1/(T-1) sum_{i<T-1} (R[T-1,i] - R[i,i])``.

    Negative BWT is forgetting. With a single task there is nothing earlier: returns 0.0.
    """
    R = _check_matrix(R)
    T = R.shape[0]
    if T == 1:
        return 0.0
    return float(np.mean(R[-1, :-1] - np.diag(R)[:-1]))


def forgetting(R):
    """Forgetting per earlier task and its mean.

    ``f[j] = max_{i<T-1} R[i, j] - R[T-1, j]`` for ``j < T-1`` (the maximum runs over rows
    ``j..T-2``, where task ``j`` has been seen). Returns ``(f, mean_f)`` with ``f`` of shape
    ``(T-1,)``; with a single task ``f`` is empty and the mean is 0.0.
    """
    R = _check_matrix(R)
    T = R.shape[0]
    f = np.empty(T - 1)
    for j in range(T - 1):
        f[j] = R[j:T - 1, j].max() - R[T - 1, j]
    return f, (float(f.mean()) if T > 1 else 0.0)


def mean_seen_accuracy(R):
    """After each task i, the mean accuracy over the tasks seen so far: ``mean(R[i, :i+1])``.

    The rightmost panel of the paper's Fig. 1 and the curve of its Fig. 2. Shape ``(T,)``.
    """
    R = _check_matrix(R)
    return np.array([R[i, :i + 1].mean() for i in range(R.shape[0])])


def mean_seen_over_seeds(Rs):
    """:func:`mean_seen_accuracy` of each seed's matrix in ``Rs`` (n_seeds, T, T), as its mean
    and SEM over seeds (:func:`mean_sem`): two arrays of shape ``(T,)``."""
    return mean_sem(np.stack([mean_seen_accuracy(R) for R in Rs]))


def mean_sem(values, axis=0):
    """Mean and standard error of the mean along ``axis``: ``(mean, std(ddof=1) / sqrt(n))``.

    With a single value (n = 1) the SEM is 0, not NaN. NaN entries are ignored (``n`` counts
    the finite ones); where every entry is NaN, mean and SEM are NaN. Returns NumPy arrays
    (0-d for a 1-D input).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        raise ValueError("mean_sem needs an array of values, got a scalar")
    ok = ~np.isnan(v)
    n = ok.sum(axis=axis)
    filled = np.where(ok, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=axis) / n
        dev = np.where(ok, v - np.expand_dims(mean, axis), 0.0)
        var = (dev ** 2).sum(axis=axis) / np.maximum(n - 1, 1)
        sem = np.sqrt(var / n)
    sem = np.where(n == 1, 0.0, sem)
    return mean, sem


def summarize(R):
    """All scalar metrics of one accuracy matrix as a plain dict (JSON-ready)."""
    f, mean_f = forgetting(R)
    return {
        "acc": average_accuracy(R),
        "bwt": backward_transfer(R),
        "forgetting": f.tolist(),
        "mean_forgetting": mean_f,
        "mean_seen_accuracy": mean_seen_accuracy(R).tolist(),
    }

"""Seeded, stratified splits: every class is cut in the same proportion."""
import numpy as np

from ..errors import ConfigError, DataError


def _stratified_indices(y, fraction, seed):
    """Indices ``(keep, held_out)``; each class gives ``round(fraction * n_c)`` to held_out."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError("fraction", f"must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_held = int(round(fraction * len(idx)))
        if n_held == 0 or n_held == len(idx):
            raise DataError(f"class {c} has {len(idx)} examples: too few to split with "
                            f"fraction {fraction}")
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    # Shuffle so that neither split is ordered by class.
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(held))


def train_val_split(x, y, val_fraction, seed=0):
    """``(x_tr, y_tr, x_val, y_val)``: a stratified, seeded split of a training set."""
    tr, val = _stratified_indices(np.asarray(y), val_fraction, seed)
    return x[tr], y[tr], x[val], y[val]


def train_test_split(x, y, test_fraction, seed=0):
    """``(x_tr, y_tr, x_te, y_te)`` for data that ships without a test split."""
    return train_val_split(x, y, test_fraction, seed)


def stratified_subset(x, y, n, seed=0):
    """Exactly ``n`` examples, each class in its share of ``y`` (largest remainders), seeded."""
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if not 0 < n <= len(y):
        raise ConfigError("n", f"must be in 1..{len(y)}, got {n}")
    exact = counts * n / len(y)
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[:n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k]
                           for c, k in zip(classes, take)])
    keep = rng.permutation(keep)
    return x[keep], y[keep]

"""Softmax cross-entropy, mean over the batch, with an optional set of active output units.

Multi-head split tasks (the authors' split MNIST) share one output layer; during a task only
its units are active and the other logits are excluded from the softmax, so they get no
gradient. ``active`` is a sequence of unit indices, or None for all units.
"""
import functools

import numpy as np

from .backend import asnumpy, get_array_module


def _check(logits, labels, active, check=True):
    """Validate shapes and labels; return (xp, active units on the host and on the device,
    each label's position among them, whether all units are active).

    With ``check=False`` the label range checks (a host sync each on CuPy) are skipped: the
    trainer validates a task's labels once, not every step.
    """
    xp = get_array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be (N, K), got {tuple(logits.shape)}")
    n, k = logits.shape
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"softmax_cross_entropy: expected {n} labels for logits "
                         f"{tuple(logits.shape)}, got labels of shape {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: labels must be integers, got {labels.dtype}")
    units, units_dev, lookup, full = _active_units(xp, active, k)
    if check and n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"softmax_cross_entropy: labels must be in [0, {k}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    pos = lookup[labels]
    if check and n and int(pos.min()) < 0:
        bad = sorted(set(asnumpy(labels).tolist()) - set(units.tolist()))
        raise ValueError(f"softmax_cross_entropy: labels {bad} are not among the active "
                         f"units {units.tolist()}")
    return xp, units, units_dev, pos, full


@functools.lru_cache(maxsize=64)
def _units_on(xp, active, k):
    """Validated active units, on the host and the device, each label's position among them
    (-1 where inactive), and whether they are all units in order. Cached: a training loop asks
    for the same few sets every step, and on CuPy this spares a host-to-device copy per step."""
    units = np.arange(k) if active is None else np.asarray(active, dtype=np.int64)
    if units.ndim != 1 or units.size == 0 or units.min() < 0 or units.max() >= k or \
            np.unique(units).size != units.size:
        raise ValueError(f"softmax_cross_entropy: active units {list(units)} must be distinct "
                         f"indices in [0, {k})")
    lookup = np.full(k, -1, dtype=np.int64)
    lookup[units] = np.arange(units.size)
    full = units.size == k and bool((units == np.arange(k)).all())
    return units, xp.asarray(units), xp.asarray(lookup), full


def _active_units(xp, active, k):
    key = None if active is None else tuple(int(u) for u in np.asarray(active).reshape(-1))
    return _units_on(xp, key, k)


def softmax_cross_entropy(logits, labels, active=None, check=True):
    """Return (loss, g_logits): mean_n -log softmax(z_n)[y_n] over the active units.

    .. math:: L = -\\frac{1}{N}\\sum_n \\log p_{n,y_n}, \\quad
              p = \\mathrm{softmax}(z_{:,A}), \\quad
              \\frac{\\partial L}{\\partial z_{:,A}} = \\frac{p - \\mathrm{onehot}(y)}{N}

    The gradient is zero on inactive units. loss is a 0-d array (no host sync on CuPy).
    """
    xp, units, units_dev, pos, full = _check(logits, labels, active, check)
    n = logits.shape[0]
    z = logits if full else logits[:, units_dev]                       # (N, A)
    z = z - z.max(axis=1, keepdims=True)                               # stable
    p = xp.exp(z)
    total = p.sum(axis=1)                                              # (N,)
    rows = xp.arange(n)
    loss = (xp.log(total) - z[rows, pos]).mean()                       # logsumexp - z_y
    p /= total[:, None]                                                # softmax, (N, A)
    p[rows, pos] -= 1.0
    p /= n
    if full:
        return loss, p
    g = xp.zeros_like(logits)
    g[:, units_dev] = p
    return loss, g


def predict_labels(logits, active=None):
    """Arg-max over the active units, as labels in the full output space."""
    xp = get_array_module(logits)
    if active is None:
        return logits.argmax(axis=1)
    units = xp.asarray(np.asarray(active, dtype=np.int64))
    return units[logits[:, units].argmax(axis=1)]

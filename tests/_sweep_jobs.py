"""Job functions for tests/test_sweep.py: module-level so worker processes can import them."""
import os

import numpy as np


def fake_run(seed, c, method="si"):
    """A stand-in for a training run: a deterministic accuracy matrix from (seed, c)."""
    rng = np.random.default_rng([seed, int(c * 1000)])
    T = 3
    R = np.full((T, T), np.nan)
    for i in range(T):
        R[i, :i + 1] = 0.9 + 0.05 * c - 0.1 * (i - np.arange(i + 1)) * (1 - c) \
            + 0.01 * rng.random(i + 1)
    return {"R": R, "seed": seed, "c": c, "method": method, "pid": os.getpid()}


def failing_run(seed, c):
    if seed == 1:
        raise RuntimeError("diverged")
    return {"seed": seed, "c": c}

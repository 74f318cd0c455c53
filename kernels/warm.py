"""Compile every fused CPU loop ahead of the first training step."""
import time

import numpy as np

from . import cpu, optim, si

_warm = {}     # dtype -> seconds the first warm-up took


def warm(dtype=np.float32):
    """Compile (or load from numba's disk cache) every loop for contiguous ``dtype`` arrays,
    so the first training step is not the one that pays. Returns the seconds it took (0 when
    already warm or when the NumPy twins run)."""
    dtype = np.dtype(dtype)
    if dtype in _warm or dtype not in (np.float32, np.float64) or not cpu.compiled():
        return 0.0
    start = time.perf_counter()
    a = [np.ones(2, dtype) for _ in range(8)]
    si.omega_accumulate(a[0], a[1], a[2])
    si.omega_accumulate_trapezoid(a[0], a[1], a[2], a[3])
    si.penalty_grad(a[0], a[1], a[2], a[3], 1.0, out=a[4])
    si.penalty_value(a[0], a[1], a[2], 1.0)
    si.consolidate(a[0], a[1], a[2], a[3], 1.0)
    optim.adam_step(a[0], a[1], a[2], a[3], a[4], 1e-3, 0.9, 0.999, 1e-8)
    optim.sgd_step(a[0], a[1], a[2], a[3], 0.1, 0.9)
    optim.adam_si_step(a[0], a[1], a[2], a[3], a[4], a[5], a[6], 1.0, 1e-3, 0.9, 0.999, 1e-8)
    optim.sgd_si_step(a[0], a[1], a[2], a[3], a[4], a[5], 1.0, 0.1, 0.9)
    seconds = _warm[dtype] = time.perf_counter() - start
    return seconds

"""Which path to take: the CUDA kernel for CuPy arrays, the NumPy twin otherwise."""
import numpy as np


def on_gpu(x):
    return type(x).__module__.split(".")[0] == "cupy"


def scratch(like, tmp):
    """A scratch buffer shaped like ``like``: the caller's, or a new one."""
    return np.empty_like(like) if tmp is None else tmp

"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU.

Array code never imports numpy or cupy directly for its math; it asks
``xp = get_array_module(x)`` and writes one body for both (the chainer idiom).
"""
import os

import numpy as np

from .errors import ConfigError

DEVICES = ("cpu", "cuda")
ENV_DEVICE = "SYNAPSE_DEVICE"

try:  # CuPy imports fine without a GPU; the first allocation is what fails.
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None


def cuda_unavailable_reason():
    """Why CUDA cannot be used here, or None when it can."""
    if _cupy is None:
        return "CuPy is not installed (pip install 'synapse-si[cuda]')"
    try:
        n = _cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError is a RuntimeError
        return f"CuPy is installed but no CUDA driver/GPU answered ({type(err).__name__}: {err})"
    if n < 1:
        return "CuPy is installed but no CUDA GPU was found"
    return None


def resolve_device(device=None):
    """``device`` or $SYNAPSE_DEVICE or 'cpu', validated; a ConfigError names where a bad or
    unusable device came from (the argument or the environment variable)."""
    option = "device" if device else f"${ENV_DEVICE}"
    device = device or os.environ.get(ENV_DEVICE) or "cpu"
    device = str(device).lower()
    if device == "gpu":
        device = "cuda"
    if device not in DEVICES:
        raise ConfigError(option, f"unknown device {device!r}: expected one of {DEVICES}")
    if device == "cuda":
        reason = cuda_unavailable_reason()
        if reason:
            raise ConfigError(option, f"device 'cuda' was requested but cannot be used: {reason}")
    return device


def xp_for(device):
    """The array module of a resolved device name (see :func:`resolve_device`): numpy for
    'cpu', cupy for 'cuda'."""
    assert device in DEVICES, f"xp_for takes a resolved device, got {device!r}"
    return _cupy if device == "cuda" else np


def get_array_module(*arrays):
    """numpy or cupy, whichever holds the arrays (cupy.get_array_module works without a GPU)."""
    if _cupy is not None:
        return _cupy.get_array_module(*arrays)
    return np


def to_device(x, device, dtype=None):
    """Copy (or pass through) an array to a resolved device, 'cpu' or 'cuda', as ``dtype`` if
    given; a CuPy array comes to the host explicitly (CuPy refuses ``np.asarray`` of a device
    array)."""
    xp = xp_for(device)
    if xp is np:
        return np.asarray(asnumpy(x), dtype=dtype)
    return xp.asarray(x, dtype=dtype)


def asnumpy(x):
    """A NumPy array from a NumPy or CuPy array (or anything array-like)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def to_float(x):
    """A Python float from a 0-d array on either backend (one host sync on CuPy)."""
    return float(asnumpy(x))


def check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ConfigError("dtype", f"must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ConfigError("dtype", f"must be float32 or float64, got {dtype}")
    return dtype

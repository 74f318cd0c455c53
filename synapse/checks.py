"""Input checks shared by the engine: each raises a one-line UserError naming what is wrong."""
import math
import numbers
import os

import numpy as np

from .backend import asnumpy, get_array_module
from .errors import ConfigError, DataError, UserError


def check_finite(x, what):
    """Raise if the array x holds NaN or Inf (one reduction; a host sync on CuPy), or is not
    numeric at all (object, strings)."""
    if x.dtype.kind in "iub":
        return
    if x.dtype.kind not in "fc":
        raise DataError(f"{what} must be a float array, got dtype {x.dtype}")
    xp = get_array_module(x)
    if not bool(xp.isfinite(x).all()):
        raise DataError(f"{what} contains NaN or Inf")


def check_nonnegative(owner, **values):
    """Reject hyper-parameters that are not numbers, or negative, NaN or infinite, by name."""
    for key, value in values.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{owner}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{owner}: {key} must be a finite number >= 0, got {value}")


def check_count(name, value, minimum=1):
    """``value`` as an int >= minimum; a whole float (2.0) is accepted, 2.5, NaN, "32" and
    True are not (a count is never rounded silently)."""
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(name, f"must be a whole number >= {minimum}, got {value!r}")
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        number = int(value)
    else:
        raise ConfigError(name, f"must be a whole number >= {minimum}, got {value!r}")
    if number < minimum:
        raise ConfigError(name, f"must be a whole number >= {minimum}, got {value!r}")
    return number


def check_representable(owner, dtype, **values):
    """Refuse hyper-parameters that the training dtype cannot hold: a non-zero value that
    underflows to 0 or to a subnormal (e.g. SI's xi = 1e-50 is 0 in float32, and then
    omega / (Delta^2 + xi) divides by zero), or one that overflows to Inf."""
    info = np.finfo(dtype)
    for key, value in values.items():
        value = float(value)
        if value != 0 and abs(value) < float(info.tiny):
            raise ConfigError(key, f"{value:g} ({owner}) underflows in {info.dtype.name} (smallest "
                                   f"normal number {info.tiny:.3g}); use a larger value or "
                                   f"dtype=float64")
        if abs(value) > float(info.max):
            raise ConfigError(key, f"{value:g} ({owner}) overflows in {info.dtype.name} "
                                   f"(largest {info.max:.3g})")


def check_task_fits(task, model):
    """Check a Task's arrays against the model, once, before training on it: finite float
    inputs of the width the model reads, labels and classes among its output units, in every
    split it holds (train, test and val)."""
    n_in, n_out = model.n_inputs, model.n_outputs
    for split in ("train", "test", "val"):
        x, y = getattr(task, "x_" + split, None), getattr(task, "y_" + split, None)
        if x is None:
            continue
        where = f"task {task.name!r} x_{split}"
        if x.dtype.kind != "f":
            raise DataError(f"{where}: expected a float array, got dtype {x.dtype}")
        width = int(np.prod(x.shape[1:]))
        if n_in is not None and width != n_in:
            raise DataError(f"{where}: examples of shape {tuple(x.shape[1:])} ({width} values), "
                            f"but the model reads {n_in} values per example")
        if model.input_shape is None and x.ndim != 2:
            raise DataError(f"{where}: examples of shape {tuple(x.shape[1:])}, but the model "
                            f"reads flat vectors; pass x.reshape(len(x), -1)")
        check_finite(x, where)
        if n_out is not None:
            units = set(range(n_out))
            wanted = set(task.classes) if task.classes is not None else set()
            wanted |= set(np.unique(asnumpy(y)).tolist())
            bad = sorted(wanted - units)
            if bad:
                raise DataError(f"task {task.name!r}: classes/labels {bad} are outside the "
                                f"model's {n_out} output units [0, {n_out})")


def available_memory(device="cpu"):
    """Bytes the machine can still give to a new allocation, or None where it cannot say.

    CPU: ``MemAvailable`` of /proc/meminfo (Linux: free memory plus reclaimable caches), else
    the free physical pages. CUDA: the free memory of the current GPU.
    """
    if device == "cuda":
        import cupy
        return int(cupy.cuda.runtime.memGetInfo()[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024           # the line is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n):
    """``n`` bytes as '27.9 GiB' (binary units)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def check_memory(what, nbytes, device="cpu", error=UserError):
    """Refuse, before allocating, what needs more memory than the machine has available: one
    ``error`` line saying how much ``what`` needs against what is available."""
    have = available_memory(device)
    if have is not None and nbytes > have:
        where = "this GPU has" if device == "cuda" else "this machine has"
        raise error(f"{what} needs {format_bytes(nbytes)} of memory but {where} "
                    f"{format_bytes(have)} available")

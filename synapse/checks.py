"""Input checks shared by the engine: each raises an error that names what is wrong."""
import math

from .backend import get_array_module


def check_finite(x, what):
    """Raise if the array x holds NaN or Inf (one reduction; a host sync on CuPy)."""
    xp = get_array_module(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or Inf")


def check_nonnegative(owner, **values):
    """Reject hyper-parameters that are not numbers, or negative, NaN or infinite, by name."""
    for key, value in values.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{owner}: {key} must be a finite number >= 0, got {value}")
